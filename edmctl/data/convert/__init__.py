"""Converters to the EDM dataset format (`edmctl dataset SRC DEST.zip`): from an image folder or zip, the
CIFAR-10 python tarball, MNIST idx files, digits, or an .npz. One reader per source, one writer."""

from collections.abc import Callable
from pathlib import Path

from edmctl.data.convert.cifar import is_tarball, read_cifar10
from edmctl.data.convert.files import read_files
from edmctl.data.convert.items import ConvertSource, array_items
from edmctl.data.convert.mnist import is_mnist_folder, read_mnist
from edmctl.data.convert.writer import write_edm_zip
from edmctl.data.digits import DIGITS
from edmctl.data.images import MAX_RESOLUTION
from edmctl.data.files import FolderStorage, ZipStorage
from edmctl.errors import UserError
from edmctl.paths import check_output


def _read_dataset(source: str) -> ConvertSource:
    """Digits or an .npz, through `open_dataset` (labels kept when the source has them)."""
    from edmctl.data.sources import open_dataset

    dataset = open_dataset(source)
    if dataset.has_labels:
        dataset = open_dataset(source, conditional=True)
    images = dataset.get_batch(range(len(dataset)))[0].permute(0, 2, 3, 1).numpy()
    labels = dataset.labels.numpy() if dataset.labels is not None else None
    return ConvertSource(source if source == DIGITS else "npz", len(dataset), dataset.channels,
                         array_items(dataset.source, images, labels))


# Which reader takes a source: (test, reader). The first whose test passes wins.
READERS: tuple[tuple[Callable[[Path], bool], Callable[[Path], ConvertSource]], ...] = (
    (lambda p: str(p) == DIGITS, lambda p: _read_dataset(DIGITS)),
    (is_tarball, read_cifar10),
    (is_mnist_folder, read_mnist),
    (lambda p: p.is_dir(), lambda p: read_files(FolderStorage(p))),
    (lambda p: p.is_file() and p.suffix.lower() == ".zip", lambda p: read_files(ZipStorage(p))),
    (lambda p: p.is_file() and p.suffix.lower() == ".npz", lambda p: _read_dataset(str(p))),
)


def open_convert_source(source: str) -> ConvertSource:
    """The reader for `source`: "digits", cifar-10-python.tar.gz, an MNIST idx folder, an image folder or zip,
    or an .npz."""
    path = Path(source)
    for test, reader in READERS:
        if test(path):
            return reader(path)
    if not path.exists():
        raise UserError(f"{source} does not exist (give \"digits\", an image folder, cifar-10-python.tar.gz, a "
                        f"folder with MNIST's train-*-idx*-ubyte files, a .zip or an .npz).")
    raise UserError(f"{source} is not a source edmctl can convert: give \"digits\", an image folder, "
                    f"cifar-10-python.tar.gz, a folder with MNIST's train-*-idx*-ubyte files, a .zip or an .npz.")


def convert_dataset(source: str, dest: str | Path, *, resolution: int | None = None, max_images: int | None = None,
                    progress: Callable[[int], Callable[[int], None]] | None = None) -> dict:
    """Convert `source` into the EDM zip `dest`; returns a summary (dest, images, resolution, channels, ...).

    `progress(total)` may return a callback advanced once per image written.
    """
    dest = Path(dest)
    if dest.suffix.lower() != ".zip":
        raise UserError(f"destination {dest} must be a .zip file (the EDM dataset format).")
    for name, value in (("resolution", resolution), ("max_images", max_images)):
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be a positive integer, got {value}.")
    if resolution is not None and resolution > MAX_RESOLUTION:
        raise UserError(f"--resolution {resolution} is more than {MAX_RESOLUTION} pixels a side; pick a smaller one.")
    check_output(dest, "destination")
    src = open_convert_source(source)
    total = src.count if max_images is None else min(src.count, max_images)
    advance = progress(total) if progress is not None else (lambda n: None)
    summary = write_edm_zip(src.items, dest, resolution=resolution, max_images=max_images, progress=advance)
    return {"source": str(source), "kind": src.kind, **summary}


__all__ = ["READERS", "ConvertSource", "convert_dataset", "open_convert_source", "write_edm_zip"]
