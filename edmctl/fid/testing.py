"""A small offline TorchScript detector (fixed random convolution + pooling) for tests and benchmarks.

It maps uint8 NCHW images to features like Inception does, so the whole pipeline runs without any download.
"""

import warnings
from pathlib import Path

import torch


class RandomConvDetector(torch.nn.Module):
    """uint8 NCHW -> float32 (N, dim): x/127.5 - 1, a fixed random 3x3 conv, ReLU, global average pooling."""

    def __init__(self, in_channels: int = 3, dim: int = 64, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv = torch.nn.Conv2d(in_channels, dim, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=gen) / (3 * in_channels) ** 0.5)
            self.conv.bias.copy_(torch.randn(dim, generator=gen) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x.to(torch.float32) / 127.5 - 1))
        return h.mean(dim=(2, 3))


def save_random_conv_detector(path: str | Path, in_channels: int = 3, dim: int = 64, seed: int = 0) -> Path:
    """Script `RandomConvDetector` and save it with `torch.jit.save`; returns `path`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.9+ deprecates TorchScript; it still works
        module = torch.jit.script(RandomConvDetector(in_channels, dim, seed).eval())
        torch.jit.save(module, str(path))
    return Path(path)
