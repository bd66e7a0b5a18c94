"""TensorBoard event files of a training run (`training.tensorboard = true`, the extra `edmctl[tensorboard]`),
written by `torch.utils.tensorboard.SummaryWriter` into `run{id}/tensorboard/`: every tick metric and FID as
a scalar under its registry name, every sample grid as the image `grid`, each at its step in images trained on
(the registry's step).

A resumed run's folder starts with the series it continues, replayed from the registry (its parents' points up
to the snapshot it resumed from, `curves.continued`): one run's folder holds its whole history with no point
twice, whatever its parent's own event files lost to a kill -9.
"""

import shlex
from pathlib import Path

import numpy as np

from edmctl.errors import UserError

TENSORBOARD_DIR = "tensorboard"  # in the run's folder
GRID_TAG = "grid"


def require_tensorboard(needed_by: str) -> None:
    """UserError naming the extra when TensorBoard is not installed."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise UserError(f"{needed_by} needs TensorBoard, which is not installed; install the extra: "
                        f"pip install 'edmctl[tensorboard]'.") from None


def summary_writer_class(needed_by: str):
    """`torch.utils.tensorboard.SummaryWriter` (a thin layer over TensorBoard, which `require_tensorboard` checks)."""
    require_tensorboard(needed_by)
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter


def board_dir(run_dir: Path) -> Path:
    return Path(run_dir) / TENSORBOARD_DIR


class Board:
    """The event files of one run; `close` when training ends."""

    def __init__(self, run_dir: Path):
        self.writer = summary_writer_class("training.tensorboard = true")(log_dir=str(board_dir(run_dir)))

    def scalars(self, values: dict[str, float], nimg: int) -> None:
        """One point of every series in `values`, flushed (a tick is when a user looks)."""
        for key, value in values.items():
            self.writer.add_scalar(key, value, global_step=nimg)
        self.writer.flush()

    def grid(self, path: Path, nimg: int) -> None:
        """The sample grid PNG at `path` (greyscale or RGB) as the image `grid`."""
        from PIL import Image

        with Image.open(path) as image:
            pixels = np.asarray(image)
        self.writer.add_image(GRID_TAG, pixels, global_step=nimg, dataformats="HW" if pixels.ndim == 2 else "HWC")
        self.writer.flush()

    def replay(self, registry, record) -> None:
        """The points `record` continues (its parents', up to where it resumed; none for a fresh run)."""
        from edmctl.train.curves import grids, logged_keys, series

        for key in logged_keys(registry, record):
            for step, value in series(registry, record, key):
                self.writer.add_scalar(key, value, global_step=step)
        for step, path in grids(registry, record):
            if path.is_file():  # a grid deleted by hand is left out, not a failed training
                self.grid(path, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def tensorboard_command(registry, refs: list[str]) -> tuple[str, dict[str, str]]:
    """`tensorboard --logdir_spec run3:PATH,run5:PATH` for the runs `refs` and their event folders by run;
    UserError for a run that wrote none."""
    require_tensorboard("edmctl runs tensorboard")
    logdirs = {}
    for ref in refs:
        record = registry.get(ref, kind="train")
        folder = board_dir(registry.run_dir(record.id)).resolve()
        if not folder.is_dir():
            raise UserError(f"{record.label} wrote no TensorBoard events; train with --set training.tensorboard=true "
                            f"(a resumed run's folder holds its parents' series too).")
        if "," in str(folder):
            raise UserError(f"{folder} holds a comma, which tensorboard's --logdir_spec cannot take; move $EDMCTL_HOME.")
        logdirs[record.label] = str(folder)
    spec = ",".join(f"{label}:{folder}" for label, folder in logdirs.items())
    return f"tensorboard --logdir_spec {shlex.quote(spec)}", logdirs
