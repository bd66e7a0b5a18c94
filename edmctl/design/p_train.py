"""Training noise distributions p_train(σ) (EDM Table 1 "Noise distribution").

Each draws n noise levels with a torch.Generator; the constants it needs are keyword-only arguments named as
recipe fields (`precond.beta_d`, `training.p_mean`, …), so the recipe can tell which ones a choice needs.
"""

import torch

from edmctl.design.discretizations import iddpm_u
from edmctl.design.schedules import VPSchedule


def _rand(n, generator, device):
    return torch.rand(n, generator=generator, device=device, dtype=torch.float64)


def vp(n, generator, device="cpu", *, epsilon_t: float, beta_d: float, beta_min: float):
    """σ = σ_vp(t), t ~ U(ε_t, 1) (Table 1, VP)."""
    t = epsilon_t + _rand(n, generator, device) * (1 - epsilon_t)
    return VPSchedule(beta_d, beta_min).sigma(t).to(torch.float32)


def ve(n, generator, device="cpu", *, sigma_min: float, sigma_max: float):
    """ln σ ~ U(ln σ_min, ln σ_max) (Table 1, VE)."""
    return (sigma_min * (sigma_max / sigma_min) ** _rand(n, generator, device)).to(torch.float32)


def iddpm(n, generator, device="cpu", *, C_1: float, C_2: float, M: int):
    """σ = u_j, j ~ U{0, …, M − 1} (Table 1, iDDPM)."""
    j = torch.randint(M, (n,), generator=generator, device=device)
    return iddpm_u(M, C_1, C_2).to(device)[j].to(torch.float32)


def edm(n, generator, device="cpu", *, p_mean: float, p_std: float):
    """ln σ ~ N(P_mean, P_std²) (Table 1, EDM)."""
    return (p_mean + p_std * torch.randn(n, generator=generator, device=device)).exp()


P_TRAIN = {"vp": vp, "ve": ve, "iddpm": iddpm, "edm": edm}
