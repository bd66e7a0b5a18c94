"""`ImageDataset`: what every source returns — uint8 images (C, H, W) with integer labels, plus a batch fast path.

Images stay uint8 until the training step converts them with `to_model_range` (EDM: x / 127.5 - 1, so pixel
values land in [-1, 1]).
"""

import abc
from collections.abc import Sequence

import torch

NO_LABEL = -1


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels [0, 255] -> float32 in [-1, 1], the range EDM's networks see (`x / 127.5 - 1`)."""
    return images.to(torch.float32) / 127.5 - 1


def _as_index_tensor(indices: Sequence[int] | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(indices, dtype=torch.int64).reshape(-1)


class ImageDataset(torch.utils.data.Dataset, abc.ABC):
    """A square image dataset: `ds[i] -> (uint8 tensor (C, H, W), int label or -1)`.

    `labels` is an int64 tensor of every item's class when the dataset was opened with `conditional=True`,
    else None (items then carry -1 and `num_classes` is 0). `has_labels` says whether the source has labels at
    all. `source_hash` is a cheap fingerprint of the source (file names and sizes, or the array file's bytes).
    Subclasses implement `_image(i)`; in-memory ones override `get_batch`.
    """

    def __init__(self, *, length: int, resolution: int, channels: int, labels: torch.Tensor | None,
                 num_classes: int, has_labels: bool, source_hash: str, source: str) -> None:
        self.length = length
        self.resolution = resolution
        self.channels = channels
        self.labels = labels
        self.has_labels = has_labels
        self.source_hash = source_hash
        self.source = source
        self.num_classes = num_classes

    def __len__(self) -> int:
        return self.length

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        return (self.channels, self.resolution, self.resolution)

    @property
    def nbytes(self) -> int:
        """Bytes the whole dataset takes in memory as uint8 (to decide whether `load_all` is worth it)."""
        return self.length * self.channels * self.resolution**2

    @abc.abstractmethod
    def _image(self, index: int) -> torch.Tensor:
        """Image `index` as uint8 (C, H, W): each source reads it its own way."""

    def _label(self, index: int) -> int:
        return NO_LABEL if self.labels is None else int(self.labels[index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        index = int(index)
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length} images")
        index %= self.length
        return self._image(index), self._label(index)

    def _batch_labels(self, idx: torch.Tensor) -> torch.Tensor:
        if self.labels is None:
            return torch.full((len(idx),), NO_LABEL, dtype=torch.int64)
        return self.labels.index_select(0, idx)

    def get_batch(self, indices: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (N, C, H, W) uint8 and labels (N,) int64 (-1 when unlabelled) for `indices`, in one call."""
        idx = _as_index_tensor(indices)
        images = torch.empty((len(idx), *self.shape), dtype=torch.uint8)
        for row, i in enumerate(idx.tolist()):
            images[row] = self[i][0]
        return images, self._batch_labels(idx % max(self.length, 1))

    def load_all(self) -> "ArrayDataset":
        """This dataset read fully into memory as one uint8 tensor (worth it for small datasets)."""
        images, _ = self.get_batch(torch.arange(self.length))
        return ArrayDataset(images, self.labels, num_classes=self.num_classes, has_labels=self.has_labels,
                            source_hash=self.source_hash, source=self.source)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.source!r}, n={self.length}, shape={self.shape}, "
                f"num_classes={self.num_classes})")


class ArrayDataset(ImageDataset):
    """A dataset held in memory as one uint8 tensor (N, C, H, W): indexing a batch is a single gather."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, *, num_classes: int, has_labels: bool,
                 source_hash: str, source: str) -> None:
        assert images.dtype == torch.uint8 and images.ndim == 4 and images.shape[2] == images.shape[3]
        super().__init__(length=images.shape[0], resolution=images.shape[2], channels=images.shape[1],
                         labels=labels, num_classes=num_classes, has_labels=has_labels, source_hash=source_hash,
                         source=source)
        self.images = images.contiguous()

    def _image(self, index: int) -> torch.Tensor:
        return self.images[index]

    def get_batch(self, indices: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = _as_index_tensor(indices)
        if len(idx) and not (-self.length <= int(idx.min()) and int(idx.max()) < self.length):
            raise IndexError(f"indices out of range for a dataset of {self.length} images")
        idx = idx % max(self.length, 1)
        # index_select, not images[idx]: advanced indexing is orders of magnitude slower on CPU for small rows
        return self.images.index_select(0, idx), self._batch_labels(idx)

    def load_all(self) -> "ArrayDataset":
        return self
