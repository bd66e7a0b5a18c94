"""Imported networks in the registry: a run of kind `import` holding the weights in edmctl's own format.

The run records the recipe recognised from the pickle (its `[precond]` and `[network]` above all), the source
file's path, sha256 and size, and what NVlabs's classes and constructor arguments were (`extra.nvlabs`). Its
`weights.pt` artifact (kind `checkpoint`) holds `ema` (F's state dict, float32), `img_shape` and `label_dim`,
read back with `torch.load(weights_only=True)` after its sha256 is checked; the pickle is never read again.
"""

import sys
from pathlib import Path

import torch

from edmctl.errors import UserError
from edmctl.paths import atomic_open, file_sha256, not_here, read_tensors

FORMAT = "edmctl.import/1"


def prepare_import(path: Path):
    """Read, recognise and check an NVlabs pickle: (recipe, recognised, the denoiser built from them)."""
    from edmctl.pretrained.recognise import recognise
    from edmctl.pretrained.unpickle import read_pickle
    from edmctl.recipe import validate

    found = recognise(read_pickle(path))
    recipe = validate(found.recipe, f"the recipe recognised in {path}")
    return recipe, found, build(recipe, found.state_dict, found.img_shape, found.label_dim, f"{path}", found.u)


def build(recipe, state_dict: dict, shape, label_dim: int, where: str, u=None):
    """D(x; σ) of the recipe around F with `state_dict` loaded strictly, in eval mode (iDDPM: with the pickle's
    table `u`)."""
    from edmctl.train.objective import build_denoiser, build_net

    net = build_net(recipe, tuple(shape), label_dim)
    expected = net.state_dict()
    missing, unexpected = sorted(set(expected) - set(state_dict)), sorted(set(state_dict) - set(expected))
    misshapen = sorted(k for k in set(expected) & set(state_dict) if expected[k].shape != state_dict[k].shape)
    if missing or unexpected or misshapen:
        detail = "; ".join(f"{what}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}" for what, names in
                           (("missing", missing), ("unexpected", unexpected), ("other shape", misshapen)) if names)
        raise UserError(f"the weights in {where} do not fit the network recognised from its constructor arguments ({detail}).")
    net.load_state_dict(state_dict, strict=True)
    return build_denoiser(recipe, net.eval().requires_grad_(False), tuple(shape), label_dim, u).eval()


def import_pickle(path: Path | str, name: str | None = None, argv=None):
    """Import an NVlabs network pickle as a registry run; returns (run id, recipe, recognised). Every check is
    made before the run is opened: a bad file leaves nothing behind."""
    from edmctl.registry import open_run

    path = Path(path)
    recipe, found, _ = prepare_import(path)
    sha256 = file_sha256(path)
    with open_run(kind="import", recipe=recipe.canonical(), recipe_hash=recipe.hash(), argv=argv or sys.argv,
                  name=name or path.stem) as run:
        weights = Path(run.dir) / "weights.pt"
        with atomic_open(weights) as f:
            torch.save({"format": FORMAT, "ema": found.state_dict, "img_shape": list(found.img_shape),
                        "label_dim": found.label_dim, **({"u": found.u} if found.u is not None else {})}, f)
        run.add_artifact(weights, kind="checkpoint")
        run.update(source=str(path.resolve()), source_sha256=sha256, source_bytes=path.stat().st_size,
                   nvlabs=found.summary, img_shape=list(found.img_shape), label_dim=found.label_dim,
                   parameters=sum(t.numel() for t in found.state_dict.values()))
        run_id = run.id
    return run_id, recipe, found


def import_once(path: Path | str) -> int:
    """The id of the finished import run of this file (same sha256), importing it first if there is none."""
    from edmctl.registry import Registry

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{str(path)!r} does not exist; pass the path of an NVlabs/edm network pickle (.pkl).")
    sha256 = file_sha256(path)
    imported = Registry().list(kind="import", status="done", where={"extra.source_sha256": sha256}, limit=1)
    return imported[0].id if imported else import_pickle(path)[0]


def load_imported_run(record):
    """The denoiser of import run `record`: its weights (sha256 checked) in the denoiser its recipe describes."""
    from edmctl.recipe import validate
    from edmctl.registry import Registry

    registry = Registry()
    artifacts = [a for a in registry.artifacts(record.id) if a.kind == "checkpoint"]
    if not artifacts:
        raise UserError(f"{record.label} has no weights artifact; import the pickle again.")
    path = registry.artifact_path(artifacts[0])
    if not path.is_file():
        raise UserError(f"{not_here(path)}; import the pickle again.")
    if file_sha256(path) != artifacts[0].sha256:
        raise UserError(f"{path} does not match the sha256 the registry recorded; import the pickle again.")
    state = read_tensors(path, "imported weights")
    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("u", torch.zeros(0)), torch.Tensor):
        raise UserError(f"{path} is not an edmctl imported-weights file ({FORMAT}).")
    recipe = validate(record.recipe, f"the recipe of {record.label}")
    return build(recipe, state["ema"], state["img_shape"], int(state["label_dim"]), str(path), state.get("u"))
