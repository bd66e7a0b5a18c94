"""Exponential moving average of the weights with a half-life in images and EDM's ramp-up (EDM App. F.3,
training_loop.py): β = 0.5^(batch / h), h = min(ema_halflife_kimg · 1000, cur_nimg · ema_rampup_ratio)."""

import copy

import torch


def ema_halflife_nimg(cur_nimg: int, halflife_kimg: float, rampup_ratio: float | None) -> float:
    """The half-life in images at `cur_nimg`: the recipe's, shortened to cur_nimg · ratio early in training
    (a ratio of 0 or None: no ramp-up, as EDM's `ema_rampup_ratio=None`)."""
    halflife = halflife_kimg * 1000
    if rampup_ratio:
        halflife = min(halflife, cur_nimg * rampup_ratio)
    return halflife


def ema_beta(batch: int, cur_nimg: int, halflife_kimg: float, rampup_ratio: float | None) -> float:
    """β = 0.5^(batch / max(h, 1e-8)): after h images an old weight's share has halved."""
    return 0.5 ** (batch / max(ema_halflife_nimg(cur_nimg, halflife_kimg, rampup_ratio), 1e-8))


def make_ema(net: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of `net` in eval mode, to be updated by `update_ema`."""
    ema = copy.deepcopy(net).eval()
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: torch.nn.Module, net: torch.nn.Module, beta: float) -> None:
    """θ_ema ← β·θ_ema + (1 − β)·θ, EDM's θ.lerp(θ_ema, β) bit for bit; buffers are copied.

    Once β > ½ (after the first steps of the ramp-up) this runs in place, every parameter in one call:
    θ_ema.lerp_(θ, w) with w = 1 − β as float32 rounds β (exact, Sterbenz). torch's lerp evaluates EDM's form as
    θ_ema + (β − 1)·(θ_ema − θ) and this one as θ_ema + w·(θ − θ_ema): the same product and sum, so the same
    bits, without EDM's temporary copy of every parameter. For β ≤ ½ lerp takes other branches: EDM's form."""
    ema_params, net_params = list(ema.parameters()), list(net.parameters())
    beta32 = float(torch.tensor(beta, dtype=torch.float32))
    if beta32 > 0.5:
        torch._foreach_lerp_(ema_params, net_params, 1 - beta32)
    else:
        for p_ema, p_net in zip(ema_params, net_params):
            p_ema.copy_(p_net.detach().lerp(p_ema, beta))
    for b_ema, b_net in zip(ema.buffers(), net.buffers()):
        b_ema.copy_(b_net)
