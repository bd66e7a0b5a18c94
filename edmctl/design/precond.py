"""Preconditioning D(x; σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x; c_noise(σ)) (EDM Eq. 7, Table 1 "Network and
preconditioning"). Each kind is a small class; `PRECONDS` maps the recipe's `precond.kind` to them. The
constants each kind needs are its constructor's keyword arguments, named as the recipe's `[precond]` fields.
"""

import math

import torch

from edmctl.design.discretizations import iddpm_u
from edmctl.design.schedules import VPSchedule


class VPPrecond:
    """c_skip = 1, c_out = −σ, c_in = 1/sqrt(σ² + 1), c_noise = (M − 1)σ_vp⁻¹(σ) (Table 1, VP)."""

    def __init__(self, *, beta_d: float, beta_min: float, epsilon_t: float, M: int):
        self.schedule, self.M = VPSchedule(beta_d, beta_min), M
        self.sigma_min = float(self.schedule.sigma(epsilon_t))
        self.sigma_max = float(self.schedule.sigma(1.0))

    def coefficients(self, sigma):
        # σ_vp⁻¹ needs ln(1 + σ²), which float32 rounds badly at small σ (1% off at σ = 0.002): use float64.
        t = self.schedule.sigma_inv(sigma.to(torch.float64)).to(sigma.dtype)
        return torch.ones_like(sigma), -sigma, 1 / (sigma**2 + 1).sqrt(), (self.M - 1) * t

    def round_sigma(self, sigma):
        return torch.as_tensor(sigma)


class VEPrecond:
    """c_skip = 1, c_out = σ, c_in = 1, c_noise = ln(½σ) (Table 1, VE)."""

    def __init__(self, *, sigma_min: float, sigma_max: float):
        self.sigma_min, self.sigma_max = sigma_min, sigma_max

    def coefficients(self, sigma):
        return torch.ones_like(sigma), sigma, torch.ones_like(sigma), (0.5 * sigma).log()

    def round_sigma(self, sigma):
        return torch.as_tensor(sigma)


class IDDPMPrecond:
    """c_skip = 1, c_out = −σ, c_in = 1/sqrt(σ² + 1), c_noise = M − 1 − argmin_j |u_j − σ| (Table 1, iDDPM);
    round_sigma snaps σ to the nearest u_j."""

    def __init__(self, *, C_1: float, C_2: float, M: int):
        self.u, self.M = iddpm_u(M, C_1, C_2), M
        self.sigma_min, self.sigma_max = float(self.u[M - 1]), float(self.u[0])

    def _index(self, sigma):
        sigma = torch.as_tensor(sigma)
        u = self.u.to(sigma.device)
        return (sigma.to(torch.float64).reshape(-1, 1) - u).abs().argmin(1).reshape(sigma.shape)

    def coefficients(self, sigma):
        c_noise = (self.M - 1 - self._index(sigma)).to(sigma.dtype)
        return torch.ones_like(sigma), -sigma, 1 / (sigma**2 + 1).sqrt(), c_noise

    def round_sigma(self, sigma):
        sigma = torch.as_tensor(sigma)
        return self.u.to(sigma.device)[self._index(sigma)].to(sigma.dtype)


class EDMPrecond:
    """c_skip = σ_d²/(σ² + σ_d²), c_out = σσ_d/sqrt(σ² + σ_d²), c_in = 1/sqrt(σ² + σ_d²), c_noise = ¼ ln σ
    (Table 1, EDM; App. B.6)."""

    sigma_min, sigma_max = 0.0, math.inf

    def __init__(self, *, sigma_data: float):
        self.sigma_data = sigma_data

    def coefficients(self, sigma):
        sd2 = self.sigma_data**2
        return sd2 / (sigma**2 + sd2), sigma * self.sigma_data / (sigma**2 + sd2).sqrt(), 1 / (sigma**2 + sd2).sqrt(), sigma.log() / 4

    def round_sigma(self, sigma):
        return torch.as_tensor(sigma)


PRECONDS = {"vp": VPPrecond, "ve": VEPrecond, "iddpm": IDDPMPrecond, "edm": EDMPrecond}


class Denoiser(torch.nn.Module):
    """D(x; σ) = c_skip·x + c_out·F(c_in·x; c_noise) around a raw network F (EDM Eq. 7).

    The network runs in float32; x and σ may come in float64 from the sampler. Exposes `sigma_min`,
    `sigma_max` and `round_sigma` as the sampler expects.
    """

    def __init__(self, net: torch.nn.Module, precond, label_dim: int = 0):
        super().__init__()
        self.net, self.precond, self.label_dim = net, precond, label_dim
        self.sigma_min, self.sigma_max = precond.sigma_min, precond.sigma_max

    def round_sigma(self, sigma):
        return self.precond.round_sigma(sigma)

    def forward(self, x, sigma, class_labels=None, augment_labels=None):
        x = x.to(torch.float32)
        sigma = torch.as_tensor(sigma, device=x.device).to(torch.float32).reshape(-1, 1, 1, 1)
        c_skip, c_out, c_in, c_noise = self.precond.coefficients(sigma)
        F_x = self.net(c_in * x, c_noise.flatten().expand(x.shape[0]), class_labels, augment_labels)
        return c_skip * x + c_out * F_x.to(torch.float32)
