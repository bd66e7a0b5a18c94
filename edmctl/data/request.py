"""What the caller asked of a source (`open_dataset`'s keywords) and the checks every source applies."""

from dataclasses import dataclass

import torch

from edmctl.errors import UserError

SUPPORTED_CHANNELS = (1, 3)


@dataclass(frozen=True)
class Request:
    """The caller's expectations: resolution and channels to check, how many images to keep, labels or not."""

    resolution: int | None = None
    channels: int | None = None
    max_images: int | None = None
    conditional: bool = False

    def __post_init__(self) -> None:
        for name in ("resolution", "channels", "max_images"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"{name} must be a positive integer, got {value}.")

    def keep(self, count: int) -> int:
        """How many of `count` images to use: the first `max_images` (all when None)."""
        return count if self.max_images is None else min(count, self.max_images)

    def check_shape(self, where: str, height: int, width: int, channels: int) -> None:
        """Square, 1 or 3 channels, and matching the requested resolution and channels."""
        if height != width:
            raise UserError(f"{where}: images must be square, got {width}x{height} (convert with "
                            f"`edmctl dataset SRC DEST.zip --resolution R` to center-crop and resize).")
        if channels not in SUPPORTED_CHANNELS:
            raise UserError(f"{where}: images must have 1 or 3 channels, got {channels}.")
        if self.resolution is not None and height != self.resolution:
            raise UserError(f"{where}: images are {height}x{width} but resolution {self.resolution} was requested "
                            f"(convert with `edmctl dataset SRC DEST.zip --resolution {self.resolution}`).")
        if self.channels is not None and channels != self.channels:
            raise UserError(f"{where}: images have {channels} channel(s) but {self.channels} were requested.")

    def labels(self, where: str, labels: torch.Tensor | None, keep: int) -> tuple[torch.Tensor | None, int]:
        """(labels of the first `keep` items, number of classes) when conditional, else (None, 0).

        The class count comes from every label of the source, so `max_images` never shrinks the label space."""
        if not self.conditional:
            return None, 0
        if labels is None:
            raise UserError(f"{where} has no labels, so it cannot train a class-conditional model (add "
                            f"{{\"labels\": [[file, class], ...]}} in dataset.json, or train unconditionally).")
        if len(labels) and int(labels.min()) < 0:
            raise UserError(f"{where}: labels must be non-negative class indices, found {int(labels.min())}.")
        return labels[:keep], int(labels.max()) + 1 if len(labels) else 0
