"""`open_dataset(source)`: one function in front of every source, picked by what `source` names."""

from collections.abc import Callable
from pathlib import Path

from edmctl.data.dataset import ImageDataset
from edmctl.data.digits import DIGITS, open_digits
from edmctl.data.files import open_folder, open_zip
from edmctl.data.npz import open_npz
from edmctl.data.request import Request
from edmctl.errors import UserError

# Which opener reads a path: (test, opener, description). The first whose test passes wins.
PATH_SOURCES: tuple[tuple[Callable[[Path], bool], Callable[[Path, Request], ImageDataset], str], ...] = (
    (lambda p: p.is_dir(), open_folder, "a folder of images (EDM format or plain)"),
    (lambda p: p.suffix.lower() == ".zip", open_zip, "an EDM-format .zip"),
    (lambda p: p.suffix.lower() == ".npz", open_npz, "an .npz with `images`"),
)


def open_dataset(source: str, *, resolution: int | None = None, channels: int | None = None,
                 max_images: int | None = None, conditional: bool = False) -> ImageDataset:
    """The dataset `source` names: "digits", an EDM-format .zip or folder, a plain image folder, or an .npz.

    `resolution` and `channels` are checked (never resized: convert with `edmctl dataset`); `max_images`
    keeps the first N; `conditional` returns labels (and requires them), else every label is -1.
    """
    request = Request(resolution=resolution, channels=channels, max_images=max_images, conditional=conditional)
    if str(source) == DIGITS:
        return open_digits(request)
    path = Path(source)
    if not path.exists():
        raise UserError(f"dataset {source} does not exist (give \"digits\", a folder, a .zip or an .npz).")
    for test, opener, _ in PATH_SOURCES:
        if test(path):
            return opener(path, request)
    kinds = ", ".join(description for _, _, description in PATH_SOURCES)
    raise UserError(f"{source} is not a dataset edmctl can read: give \"digits\", {kinds}.")
