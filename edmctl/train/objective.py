"""The training objective assembled from a recipe: the network F, the denoiser D (EDM Eq. 7) around it and the
loss E[λ(σ)‖D(y + n; σ) − y‖²] (EDM Eq. 2, 8) with the recipe's p_train, λ(σ) and augmentation."""

import torch

from edmctl.design.augment import AUGMENT_DIM, AugmentPipe
from edmctl.design.loss import DenoisingLoss
from edmctl.design.loss_weights import LOSS_WEIGHTS
from edmctl.design.p_train import P_TRAIN
from edmctl.design.precond import PRECONDS, Denoiser
from edmctl.networks import build_network


def uses_augment(recipe) -> bool:
    return recipe.augment.p > 0


def build_net(recipe, shape: tuple[int, int, int], label_dim: int) -> torch.nn.Module:
    """F for images of `shape` (C, H, W) with the recipe's `[network]`, dropout and label dropout; C·output_factor
    output channels (2C for iDDPM, as NVlabs builds it, so its checkpoints load both ways)."""
    fields = recipe.network.model_dump()
    arch = fields.pop("arch")
    channels, resolution, _ = shape
    out_channels = channels * PRECONDS[recipe.precond.kind].output_factor
    return build_network(arch, img_resolution=resolution, in_channels=channels, out_channels=out_channels,
                         label_dim=label_dim, augment_dim=AUGMENT_DIM if uses_augment(recipe) else 0,
                         dropout=recipe.training.dropout, label_dropout=recipe.training.label_dropout, **fields)


def build_denoiser(recipe, net: torch.nn.Module, shape: tuple[int, int, int], label_dim: int,
                   u: torch.Tensor | None = None) -> Denoiser:
    """D(x; σ) with the recipe's preconditioning; carries `img_shape` and `label_dim` for the sampler. `u`: an
    iDDPM table carried by an imported pickle, used instead of one computed here."""
    precond = recipe.bind(PRECONDS[recipe.precond.kind])
    if u is not None:
        precond.use_table(u)
    denoiser = Denoiser(net, precond, label_dim)
    denoiser.img_shape = tuple(shape)
    return denoiser


def build_augment(recipe):
    """EDM's non-leaky augmentation pipe (App. B.4) with the recipe's `[augment]`, or None when p = 0."""
    if not uses_augment(recipe):
        return None
    return AugmentPipe(**recipe.augment.model_dump())


def build_loss(recipe) -> DenoisingLoss:
    """λ(σ)(D(y + n; σ) − y)² with σ ~ p_train, both bound to the recipe's constants."""
    training = recipe.training
    return DenoisingLoss(p_train=recipe.bind(P_TRAIN[training.p_train]),
                         loss_weight=recipe.bind(LOSS_WEIGHTS[training.loss_weight]), augment=build_augment(recipe))


def one_hot(labels: torch.Tensor, label_dim: int) -> torch.Tensor | None:
    """Class labels as the one-hot rows the networks take (None for an unconditional model)."""
    if label_dim == 0:
        return None
    return torch.nn.functional.one_hot(labels, label_dim).to(torch.float32)
