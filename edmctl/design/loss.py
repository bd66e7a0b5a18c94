"""The training objective E_{σ, y, n}[λ(σ)·‖D(y + n; σ) − y‖²] (EDM Eq. 2 and Eq. 8), any precond × p_train × λ."""

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class DenoisingLoss:
    """`p_train(n, generator, device) -> σ (n,)` and `loss_weight(σ) -> λ(σ)` come bound to their constants
    (`Recipe.bind`); `augment` is an `AugmentPipe` or None."""

    p_train: Callable
    loss_weight: Callable
    augment: Callable | None = None

    def __call__(self, denoiser, images, labels=None, generator=None):
        """Per-element weighted loss λ(σ)(D(y + n; σ) − y)² (N,C,H,W) and the σ drawn for each image (N,)."""
        sigma = self.p_train(images.shape[0], generator, images.device)
        weight = self.loss_weight(sigma).reshape(-1, 1, 1, 1)
        y, augment_labels = self.augment(images, generator) if self.augment is not None else (images, None)
        n = torch.randn(y.shape, generator=generator, device=y.device) * sigma.reshape(-1, 1, 1, 1)
        denoised = denoiser(y + n, sigma, labels, augment_labels)
        return weight * (denoised - y) ** 2, sigma
