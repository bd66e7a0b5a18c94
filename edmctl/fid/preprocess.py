"""Image preprocessing exactly as clean-fid 0.1.35 does it per mode, from uint8 NCHW batches.

clean-fid's `ResizeDataset.__getitem__` decodes an image to RGB uint8 HWC, applies `build_resizer(mode)` and
`torchvision.transforms.ToTensor()` (times 255 when the resized image is still uint8). Here the same steps
run on a batch that is already decoded, so images that never touch the disk (the RUN path) and images read
from PNGs give the same tensors.
"""

from functools import lru_cache

import numpy as np
import torch

# edmctl protocol -> clean-fid mode. `edm`: the TF-compatible Inception FID the EDM paper reports.
PROTOCOLS = {"edm": "legacy_tensorflow", "clean": "clean"}


def check_protocol(protocol: str) -> str:
    """The clean-fid mode of `protocol`; `UserError` naming the allowed values otherwise."""
    from edmctl.errors import UserError

    if protocol not in PROTOCOLS:
        raise UserError(f"Unknown FID protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}.")
    return PROTOCOLS[protocol]


def to_rgb(batch: torch.Tensor) -> torch.Tensor:
    """Grayscale (N,1,H,W) -> (N,3,H,W) by replication, as PIL's `convert('RGB')` does; RGB passes through."""
    if batch.ndim != 4 or batch.dtype != torch.uint8 or batch.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 NCHW images with 1 or 3 channels, got {tuple(batch.shape)} {batch.dtype}")
    return batch.expand(-1, 3, -1, -1) if batch.shape[1] == 1 else batch


@lru_cache(maxsize=None)
def _resizer(mode: str):
    from cleanfid.resize import build_resizer

    return build_resizer(mode)  # clean: PIL bicubic on float32 per channel to 299x299, clipped to [0, 255]


def preprocess(batch: torch.Tensor, mode: str) -> torch.Tensor:
    """uint8 NCHW -> float32 NCHW in [0, 255], the tensor clean-fid feeds its Inception in `mode`."""
    batch = to_rgb(batch.cpu())
    if mode == "legacy_tensorflow":  # no resize outside the network; ToTensor(uint8) * 255
        return batch.to(torch.float32).div(255) * 255
    if mode == "clean":
        images = batch.permute(0, 2, 3, 1).numpy()
        resized = [torch.from_numpy(np.ascontiguousarray(_resizer(mode)(im).transpose(2, 0, 1))) for im in images]
        return torch.stack(resized)
    raise ValueError(f"unsupported clean-fid mode {mode!r}")
