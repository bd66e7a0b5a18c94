"""scikit-learn's bundled handwritten digits: 1797 grayscale 8x8 images with labels 0..9 (no download)."""

import hashlib

import numpy as np
import torch

from edmctl.data.dataset import ArrayDataset
from edmctl.data.request import Request

DIGITS = "digits"


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Images (1797, 8, 8, 1) uint8 and labels (1797,) int64. Intensities 0..16 map to round(v * 255 / 16)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255 / 16)).astype(np.uint8)[:, :, :, None]
    return images, bunch.target.astype(np.int64)


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
