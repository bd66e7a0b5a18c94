"""Noise-level embeddings: sinusoidal positions (DDPM++, ADM; Vaswani et al. 2017) and random Fourier
features (NCSN++; Tancik et al. 2020), both mapping c_noise (N,) to (N, num_channels) as [cos, sin]; and
the class-label input with its dropout."""

import math

import torch


class PositionalEmbedding(torch.nn.Module):
    """[cos(c_noise·ω_i), sin(c_noise·ω_i)] with ω_i = (1/max_positions)^(i/(n/2 − endpoint)), i < n/2."""

    def __init__(self, num_channels: int, max_positions: int = 10000, endpoint: bool = False):
        super().__init__()
        self.num_channels = num_channels
        self.max_positions = max_positions
        self.endpoint = endpoint

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        half = self.num_channels // 2
        freqs = torch.arange(half, dtype=torch.float32, device=c_noise.device) / (half - int(self.endpoint))
        freqs = (1 / self.max_positions) ** freqs
        x = c_noise.outer(freqs.to(c_noise.dtype))
        return torch.cat([x.cos(), x.sin()], dim=1)


class FourierEmbedding(torch.nn.Module):
    """[cos(2π c_noise·ω_i), sin(2π c_noise·ω_i)], fixed random ω_i ~ N(0, scale²): a buffer, not trained,
    drawn on the CPU whatever the default device (`module.to(device)` moves it)."""

    def __init__(self, num_channels: int, scale: float = 16):
        super().__init__()
        self.register_buffer("freqs", torch.randn(num_channels // 2, device="cpu") * scale)

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        x = c_noise.outer((2 * math.pi * self.freqs).to(c_noise.dtype))
        return torch.cat([x.cos(), x.sin()], dim=1)


def dropped_class_labels(class_labels: torch.Tensor | None, like: torch.Tensor, label_dim: int,
                         label_dropout: float, training: bool) -> torch.Tensor:
    """Class labels (zeros when None), each row zeroed with probability `label_dropout` in training mode only
    (classifier-free guidance, Ho & Salimans 2022)."""
    if class_labels is None:
        return torch.zeros(like.shape[0], label_dim, dtype=like.dtype, device=like.device)
    labels = class_labels.to(like.dtype).reshape(-1, label_dim)
    if training and label_dropout:
        keep = torch.rand([labels.shape[0], 1], device=labels.device) >= label_dropout
        labels = labels * keep.to(labels.dtype)
    return labels
