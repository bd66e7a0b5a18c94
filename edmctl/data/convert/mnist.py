"""MNIST's idx files in a folder: `train-images-idx3-ubyte[.gz]` (magic 2051, N x 28 x 28 uint8) and
`train-labels-idx1-ubyte[.gz]` (magic 2049, N uint8), big-endian headers (LeCun's format)."""

import gzip
from pathlib import Path

import numpy as np

from edmctl.data.convert.items import ConvertSource, array_items
from edmctl.errors import UserError

IMAGES, LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def is_mnist_folder(path: Path) -> bool:
    return path.is_dir() and _find(path, IMAGES) is not None


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array an idx file holds, shaped by its header."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise UserError(f"{path} could not be read ({e}).") from None
    ndim = magic & 0xFF
    header = 4 * (1 + ndim)
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        raise UserError(f"{path} is not an MNIST idx file (expected magic number {magic}).")
    shape = tuple(int.from_bytes(data[4 * (1 + i):4 * (2 + i)], "big") for i in range(ndim))
    if len(data) != header + int(np.prod(shape)):
        raise UserError(f"{path} holds {len(data) - header} bytes of data but its header says {shape}.")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_mnist(folder: Path) -> ConvertSource:
    """MNIST's training images (N, 28, 28, 1) with labels 0..9."""
    labels_path = _find(folder, LABELS)
    if labels_path is None:
        raise UserError(f"{folder} has {IMAGES} but no {LABELS}[.gz] beside it.")
    images = _read_idx(_find(folder, IMAGES), IMAGES_MAGIC)
    labels = _read_idx(labels_path, LABELS_MAGIC)
    if len(labels) != len(images):
        raise UserError(f"{labels_path} has {len(labels)} labels but there are {len(images)} images.")
    return ConvertSource("mnist", len(images), 1, array_items(str(folder), images[:, :, :, None], labels))
