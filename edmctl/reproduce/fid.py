"""Reproducing a fid run: measure again what it measured and compare FID per seed block.

- A fid run of a training run (parent = the training run, recipe = its full recipe, `extra` = protocol,
  detector, num_images, repeats, seed_blocks, batch): regenerate every seed block from the training run's EMA
  weights and re-measure.
- A fid run of a folder or zip (recipe `{"fid": {target, ref, num, batch, detector, ...}}`): re-measure the
  folder; its re-measured statistics must equal the recorded `stats.npz` bit for bit, so a folder whose images
  changed is caught even when the FID happens to land close.

On the same device kind sampling and detector features are deterministic, so FID must match bitwise. On
another kind the float32 network and detector round differently and, after quantisation to uint8, some pixels
move by one level; `FID_RTOL_OTHER_DEVICE` (2%) is a chosen bound for that, not measured across devices (no GPU
was at hand), while other weights, another sampler or other images move FID far more.
"""

from pathlib import Path

from edmctl.errors import UserError
from edmctl.reproduce.checks import check, current_device_kind, device_kind, file_unchanged, values_agree

FID_RTOL_OTHER_DEVICE = 0.02


def fid_rtol(record) -> float:
    """0 (bitwise) on the device kind the original ran on, else `FID_RTOL_OTHER_DEVICE`."""
    return 0.0 if device_kind(record.devices) == current_device_kind() else FID_RTOL_OTHER_DEVICE


def detector_unchanged(detector, recorded_sha256: str | None) -> dict:
    """The detector's weights file is the one the original measured with (pixels has none)."""
    return check("detector weights", detector.sha256 == recorded_sha256,
                 f"sha256 {str(detector.sha256)[:12]} vs recorded {str(recorded_sha256)[:12]}", "sha256")


def reproduce_run_fid(record, run, registry) -> list[dict]:
    """Regenerate the recorded seed blocks from the training run's EMA weights, measure, compare per block."""
    from edmctl.fid.runs import prepare_run_fid
    from edmctl.recipe import validate

    extra = record.extra
    recipe = validate(record.recipe, f"{record.label}'s recorded recipe")
    plan = prepare_run_fid(record.parent_id, recipe, Path(extra["ref"]), extra["num_images"], extra["repeats"],
                           extra.get("batch"), extra["detector"], extra["protocol"], current_device_kind())
    blocks = [[b.start, b.stop - 1] for b in plan.blocks]
    results = plan.measure()
    run.log_metrics({"fid": min(r.fid for r in results), "nfe": plan.nfe, **{f"fid_{i}": r.fid for i, r in enumerate(results)}})
    run.update(seed_blocks=blocks, **plan.detector.describe())

    recorded = registry.metrics(record.id)
    rtol = fid_rtol(record)
    per_block = [values_agree(f"FID seeds {first}-{last}", r.fid, recorded[f"fid_{i}"].value if f"fid_{i}" in recorded else None, rtol)
                 for i, (r, (first, last)) in enumerate(zip(results, blocks))]
    return [file_unchanged(f"reference {Path(extra['ref']).name}", Path(extra["ref"]), extra.get("ref_sha256")),
            detector_unchanged(plan.detector, extra.get("detector_sha256")),
            check("seed blocks", blocks == extra.get("seed_blocks"), f"{blocks} vs recorded {extra.get('seed_blocks')}", "equal"),
            *per_block,
            values_agree("NFE", plan.nfe, recorded["nfe"].value if "nfe" in recorded else None)]


def recorded_stats(record, registry):
    """The original's `stats` artifact and its path, or (None, None)."""
    for artifact in registry.artifacts(record.id):
        if artifact.kind == "stats":
            return artifact, registry.artifact_path(artifact)
    return None, None


def stats_equal(measured, path: Path | None) -> dict:
    """The re-measured statistics (mu, sigma) equal the recorded ones bit for bit: the same images."""
    import numpy as np

    from edmctl.fid import load_stats

    if path is None or not path.exists():
        return check("image statistics (mu, sigma)", False, "the original stats.npz is missing")
    original = load_stats(path)
    same_shape = original.mu.shape == measured.mu.shape
    ok = same_shape and np.array_equal(original.mu, measured.mu) and np.array_equal(original.sigma, measured.sigma)
    worst = float(np.abs(original.mu - measured.mu).max()) if same_shape else float("inf")
    return check("image statistics (mu, sigma)", ok, f"max |Δmu| {worst:.3g}, {measured.num_images} vs {original.num_images} images")


def reproduce_folder_fid(record, run, registry) -> list[dict]:
    """Re-measure the recorded folder or zip (the same first `num` images, batch, detector) against the same
    reference statistics; the statistics and the FID are compared."""
    from edmctl.fid import batches, compare, compute_stats, load_detector, load_stats, save_stats, take
    from edmctl.fid.runs import open_source

    spec = record.recipe["fid"]
    ref = Path(spec["ref"])
    images = take(open_source(spec["target"]), spec["num"])
    detector = load_detector(spec["detector"], spec["protocol"], current_device_kind())
    measured = compute_stats(batches(images, spec["batch"]), detector)
    result = compare(measured, load_stats(ref))
    run.log_metrics({"fid": result.fid, **({"kid": result.kid} if result.kid is not None else {})})
    run.add_artifact(save_stats(Path(run.dir) / "stats.npz", measured.stats), kind="stats")

    artifact, path = recorded_stats(record, registry)
    recorded_fid = registry.metrics(record.id).get("fid")
    same_device = fid_rtol(record) == 0
    return [file_unchanged(f"reference {ref.name}", ref, record.extra.get("ref_sha256")),
            file_unchanged("recorded stats.npz", path, artifact.sha256 if artifact else None),
            detector_unchanged(detector, spec.get("detector_sha256")),
            *([stats_equal(measured.stats, path)] if same_device else []),
            values_agree("FID", result.fid, recorded_fid.value if recorded_fid else None, fid_rtol(record))]


def reproduce_fid(record, run, registry) -> list[dict]:
    """A fid run of a folder or zip (recipe `{"fid": ...}`) or of a training run (parent set)."""
    if "fid" in record.recipe and "target" in record.recipe["fid"]:
        return reproduce_folder_fid(record, run, registry)
    if record.parent_id is None or "seed_blocks" not in record.extra:
        raise UserError(f"{record.label} records neither a measured folder nor a training run with seed blocks; it cannot be re-measured.")
    return reproduce_run_fid(record, run, registry)
