"""Image files in a folder or zip as converter input: any size or PIL mode (alpha dropped), labels from a
dataset.json beside them. Grayscale stays one channel when every image is grayscale, else all become RGB."""

from collections.abc import Iterator

import numpy as np
import PIL.Image

from edmctl.data import images as img
from edmctl.data.convert.items import ConvertSource, Item
from edmctl.data.files import Storage
from edmctl.data.labels import LABELS_FILE, parse_labels
from edmctl.errors import UserError

GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def _mode(storage: Storage, name: str) -> str:
    try:
        with storage.open(name) as f, PIL.Image.open(f) as image:
            return image.mode
    except img.UNREADABLE as e:
        raise UserError(f"{storage.where(name)} is not a readable image ({e}).") from None


def _items(storage: Storage, names: list[str], labels: list[int] | None, channels: int) -> Iterator[Item]:
    for i, name in enumerate(names):
        where = storage.where(name)
        with storage.open(name) as f:
            data = f.read()
        with img.open_image(data, where) as image:
            try:
                array = np.asarray(img.to_mode(image, channels), dtype=np.uint8)
            except img.UNREADABLE as e:
                raise UserError(f"{where} could not be decoded ({e}).") from None
        yield where, array[:, :, None] if array.ndim == 2 else array, None if labels is None else labels[i]


def read_files(storage: Storage) -> ConvertSource:
    """Every image under `storage` (sorted by path), with labels when a dataset.json gives them."""
    all_names = storage.names()
    extensions = img.image_extensions()
    names = [n for n in all_names if img.is_image_name(n, extensions)]
    if not names:
        raise UserError(f"{storage.location} contains no images (looked recursively for .png, .jpg, ...).")
    labels = None
    if LABELS_FILE in all_names:
        with storage.open(LABELS_FILE) as f:
            parsed = parse_labels(f.read(), storage.where(LABELS_FILE), names)
        labels = None if parsed is None else parsed.tolist()
    channels = 1 if all(_mode(storage, n) in GRAYSCALE_MODES for n in names) else 3
    return ConvertSource("images", len(names), channels, _items(storage, names, labels, channels))
