"""Arrays in an .npz: `images` as uint8 (N, C, H, W) or (N, H, W, C) (or (N, H, W) grayscale), or floats in
[-1, 1] (the model range), which become uint8 as round((x + 1) * 127.5); optional integer `labels` (N,)."""

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import torch

from edmctl.data.dataset import ArrayDataset
from edmctl.data.labels import MAX_CLASSES
from edmctl.data.request import SUPPORTED_CHANNELS, Request
from edmctl.errors import UserError
from edmctl.paths import file_sha256

FLOAT_TOLERANCE = 1e-3  # floats may overshoot [-1, 1] by this much (rounding in whatever wrote them)


def _to_nchw(images: np.ndarray, where: str) -> np.ndarray:
    """(N, C, H, W) from (N, C, H, W), (N, H, W, C) or (N, H, W); C is 1 or 3 and H == W."""
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4:
        n, a, b, c = images.shape
        if a in SUPPORTED_CHANNELS and b == c:
            return images
        if c in SUPPORTED_CHANNELS and a == b:
            return images.transpose(0, 3, 1, 2)
        raise UserError(f"{where}: images of shape {images.shape} are neither (N, C, H, W) nor (N, H, W, C) with "
                        f"square H x W and 1 or 3 channels.")
    raise UserError(f"{where}: images must be a 4-D array (N, C, H, W) or (N, H, W, C), got shape {images.shape}.")


def _to_uint8(images: np.ndarray, where: str) -> np.ndarray:
    """uint8 as is; floats in [-1, 1] as round((x + 1) * 127.5), the inverse of `to_model_range`."""
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise UserError(f"{where}: images must be uint8 or float in [-1, 1], got dtype {images.dtype}.")
    if images.size and not np.isfinite(images).all():
        raise UserError(f"{where}: float images must lie in [-1, 1], found {np.count_nonzero(~np.isfinite(images)):,} "
                        f"values that are not finite (NaN or infinite).")
    if images.size and np.abs(images).max() > 1 + FLOAT_TOLERANCE:
        raise UserError(f"{where}: float images must lie in [-1, 1], found values in "
                        f"[{images.min():.3g}, {images.max():.3g}].")
    return np.clip(np.rint((images.astype(np.float64) + 1) * 127.5), 0, 255).astype(np.uint8)


def _labels(arrays: np.lib.npyio.NpzFile, count: int, where: str) -> torch.Tensor | None:
    if "labels" not in arrays.files:
        return None
    labels = arrays["labels"]
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"{where}: labels must be integers of shape ({count},), got {labels.dtype} {labels.shape}.")
    if labels.size and not (0 <= labels.min() and labels.max() < MAX_CLASSES):
        raise UserError(f"{where}: every label must be a class index in 0..{MAX_CLASSES - 1}, found "
                        f"{labels.min()}..{labels.max()}.")
    return torch.from_numpy(labels.astype(np.int64))


def open_npz(path: Path, request: Request) -> ArrayDataset:
    """An .npz of `images` (and optional `labels`), held in memory."""
    where = str(path)
    try:
        arrays = np.load(path, allow_pickle=False)
        with arrays:
            if "images" not in arrays.files:
                raise UserError(f"{where} has no `images` array (found: {', '.join(arrays.files) or 'nothing'}).")
            images = arrays["images"]
            labels = _labels(arrays, len(images), where)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{where} is not a readable .npz file ({e or type(e).__name__}).") from None
    images = _to_nchw(images, where)
    if images.shape[2] == 0:
        raise UserError(f"{where}: images of shape {images.shape} have no pixels.")
    request.check_shape(where, images.shape[2], images.shape[3], images.shape[1])
    total = len(images)
    keep = request.keep(total)
    if keep == 0:
        raise UserError(f"{where} contains no images.")
    images = torch.from_numpy(np.ascontiguousarray(_to_uint8(images[:keep], where)))
    kept_labels, num_classes = request.labels(where, labels, keep)
    digest = file_sha256(path)
    if keep < total:  # a prefix of the file is a different dataset
        digest = hashlib.sha256(f"{digest}:first {keep}".encode()).hexdigest()
    return ArrayDataset(images, kept_labels, num_classes=num_classes, has_labels=labels is not None,
                        source_hash=digest, source=where)
