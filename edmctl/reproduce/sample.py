"""Reproducing a sample run: the same model, sampler and seeds must give bitwise-equal `samples` (same device)."""

import zipfile

import numpy as np

from edmctl.errors import UserError
from edmctl.reproduce.checks import file_unchanged


def _recorded_samples(record, registry):
    for artifact in registry.artifacts(record.id):
        if artifact.kind == "samples":
            return artifact, registry.artifact_path(artifact)
    return None, None


def _read_samples(path, record) -> np.ndarray:
    """The `samples` array of a recorded samples.npz; a damaged file is a UserError (nothing to compare with)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return npz["samples"]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise UserError(f"{record.label}'s recorded {path} cannot be read ({type(e).__name__}: {e}); it is damaged, "
                        f"so there is nothing to compare a reproduction with.") from None


def reproduce_sample(record, run, registry) -> list[dict]:
    """Re-sample the recorded seeds into the new run's folder and compare with the recorded samples.npz."""
    from edmctl.models import load_model
    from edmctl.recipe import validate
    from edmctl.sampling import sample, write_samples

    artifact, path = _recorded_samples(record, registry)
    if artifact is None:
        raise UserError(f"{record.label} recorded no samples.npz (a sweep's trials keep their metrics only), so there is "
                        f"nothing to compare a reproduction with.")
    original = _read_samples(path, record) if path.exists() else None  # before any work
    recipe = validate(record.recipe, f"{record.label}'s recorded recipe")
    model = load_model(record.extra["model"])
    # The same batch size too: BLAS rounding differs between batch sizes (~1e-14), and the check is bitwise.
    batch = record.extra.get("batch", 64)
    result = sample(model, recipe.sampler, record.seeds, batch=batch, class_label=record.extra.get("class_label"))
    write_samples(run.dir, result.samples, result.seeds)
    run.add_artifact(run.dir / "samples.npz", kind="samples")
    run.log_metric("nfe", result.nfe)

    if original is None:
        return [dict(name="recorded samples.npz", ok=False, detail="missing from the original run's folder")]
    unchanged = file_unchanged("recorded samples.npz", path, artifact.sha256)
    reproduced = result.samples.numpy()
    same_shape = original.shape == reproduced.shape
    max_diff = float(np.abs(original - reproduced).max()) if same_shape else float("inf")
    equal = dict(name=f"samples of {len(record.seeds)} seeds", ok=same_shape and np.array_equal(original, reproduced),
                 detail=f"max |difference| {max_diff:.3g}")
    recorded_nfe = registry.metrics(record.id).get("nfe")
    nfe = dict(name="NFE", ok=recorded_nfe is not None and recorded_nfe.value == result.nfe,
               detail=f"{result.nfe} vs recorded {recorded_nfe.value if recorded_nfe else 'none'}", tolerance="equal")
    return [unchanged, equal, nfe]
