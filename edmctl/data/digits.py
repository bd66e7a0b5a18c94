"""scikit-learn's bundled handwritten digits: 1797 grayscale 8x8 images with labels 0..9 (no download).

Importing scikit-learn costs about a second (scipy.stats comes with it), on every `ideal:digits` and digits
training run. The raw arrays are therefore kept in `$EDMCTL_CACHE/digits.npz` after the first load and read from
there (no pickle), checked against the sha256 of scikit-learn's data; a missing, damaged or unwritable cache
falls back to scikit-learn.
"""

import hashlib
import io

import numpy as np
import torch

from edmctl.data.dataset import ArrayDataset
from edmctl.data.request import Request
from edmctl.paths import atomic_write_bytes, cache_dir

DIGITS = "digits"
RAW_SHA256 = "65e5b4619795efb40c1082f4c350c049e4ad552200d369b6ae99e21eef5e72c5"  # raw images, then labels


def digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as stored there: intensities 0..16 (1797, 8, 8) uint8 and labels (1797,) int64."""
    cached = _read_cache()
    if cached is not None:
        return cached
    from sklearn.datasets import load_digits

    bunch = load_digits()
    raw, labels = bunch.images.astype(np.uint8), bunch.target.astype(np.int64)
    _write_cache(raw, labels)
    return raw, labels


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Images (1797, 8, 8, 1) uint8 and labels (1797,) int64. Intensities 0..16 map to round(v * 255 / 16)."""
    raw, labels = digits_raw()
    return np.rint(raw * (255 / 16)).astype(np.uint8)[:, :, :, None], labels


def _digest(raw: np.ndarray, labels: np.ndarray) -> str:
    return hashlib.sha256(raw.tobytes() + labels.tobytes()).hexdigest()


def _read_cache() -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(cache_dir() / "digits.npz", allow_pickle=False) as npz:
            raw, labels = npz["raw"], npz["labels"]
    except (OSError, ValueError, KeyError):
        return None
    if raw.dtype != np.uint8 or labels.dtype != np.int64 or _digest(raw, labels) != RAW_SHA256:
        return None
    return raw, labels


def _write_cache(raw: np.ndarray, labels: np.ndarray) -> None:
    if _digest(raw, labels) != RAW_SHA256:  # another scikit-learn's data: use it, but do not cache it
        return
    buffer = io.BytesIO()
    np.savez(buffer, raw=raw, labels=labels)
    try:
        atomic_write_bytes(cache_dir() / "digits.npz", buffer.getvalue())
    except OSError:  # a read-only cache: scikit-learn again next time
        pass


def open_digits(request: Request) -> ArrayDataset:
    """The digits as an in-memory dataset (N, 1, 8, 8)."""
    images, labels = digits_arrays()
    request.check_shape(DIGITS, images.shape[1], images.shape[2], images.shape[3])
    keep = request.keep(len(images))
    kept_labels, num_classes = request.labels(DIGITS, torch.from_numpy(labels), keep)
    images = images[:keep]
    digest = hashlib.sha256(images.tobytes() + labels[:keep].tobytes()).hexdigest()
    return ArrayDataset(torch.from_numpy(images).permute(0, 3, 1, 2), kept_labels, num_classes=num_classes,
                        has_labels=True, source_hash=digest, source=DIGITS)
