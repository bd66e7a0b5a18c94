"""What a converter reads: a count, the channels, and a stream of named images (H, W, C) uint8 with labels."""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

Item = tuple[str, np.ndarray, int | None]  # (where, pixels (H, W, C) uint8, label or None)


@dataclass
class ConvertSource:
    """A converter's input: `count` images with `channels` channels, yielded lazily by `items`."""

    kind: str
    count: int
    channels: int
    items: Iterator[Item]


def array_items(where: str, images: np.ndarray, labels: np.ndarray | None) -> Iterator[Item]:
    """Items from an (N, H, W, C) uint8 array and optional (N,) labels."""
    for i, image in enumerate(images):
        yield f"{where}[{i}]", image, None if labels is None else int(labels[i])
