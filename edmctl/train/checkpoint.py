"""Training snapshots: plain data only (tensors, dicts, lists, numbers, strings), written through a temporary
file and a rename, read back with `torch.load(weights_only=True)` — never an arbitrary pickle.

A snapshot holds `net`, `ema` and `optimizer` state dicts, `nimg` (images trained on), `step`, `data_position`,
`world_size`, `recipe_hash`, `img_shape` (C, H, W), `label_dim` and `rng`: every rank's torch CPU state, CUDA state (when on a GPU) and loss
generator state, in rank order.
"""

from pathlib import Path

import torch

from edmctl.errors import UserError
from edmctl.paths import atomic_open, file_sha256, not_here, read_tensors

FORMAT = "edmctl.train/1"
KEYS = ("format", "nimg", "step", "net", "ema", "optimizer", "rng", "data_position", "world_size", "recipe_hash",
        "img_shape", "label_dim")


def snapshot_name(nimg: int) -> str:
    """`snapshot-000128.pt`: named by the images trained on, so names sort in training order."""
    return f"snapshot-{nimg:09d}.pt"


def save_snapshot(path: Path, state: dict) -> None:
    """Write `state` to `path` atomically (temporary name in the same folder, fsync, rename)."""
    with atomic_open(path) as f:
        torch.save({"format": FORMAT, **state}, f)


def load_snapshot(path: Path, sha256: str | None = None) -> dict:
    """A snapshot read with `weights_only=True`; its sha256 is checked against the registry's when given."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"snapshot {not_here(path)}.")
    if sha256 is not None and file_sha256(path) != sha256:
        raise UserError(f"snapshot {path} does not match the sha256 the registry recorded; it was modified or is damaged.")
    state = read_tensors(path, "snapshot")
    if not isinstance(state, dict) or state.get("format") != FORMAT or any(key not in state for key in KEYS):
        raise UserError(f"{path} is not an edmctl training snapshot ({FORMAT}).")
    return state


def latest_snapshot(registry, record) -> tuple[Path, str]:
    """The newest snapshot of training run `record`, else of its parents (a resumed run killed before its first
    snapshot): its path and recorded sha256. UserError when there is none or the run is not a training run.
    Only training parents are followed: the sweep or ablation a trial belongs to holds no snapshot of it."""
    if record.kind != "train":
        raise UserError(f"{record.label} is a {record.kind} run, not a training run; pass a run listed by `edmctl runs --kind train`.")
    current = record
    while current is not None and current.kind == "train":
        snapshots = [a for a in registry.artifacts(current.id) if a.kind == "checkpoint"]
        if snapshots:
            newest = max(snapshots, key=lambda a: (a.step or 0, a.id))
            return registry.artifact_path(newest), newest.sha256
        current = registry.get(current.parent_id) if current.parent_id is not None else None
    raise UserError(f"{record.label} has no snapshot yet; it stopped before training.snapshot_kimg was reached, start it anew.")
