"""Preconditioning D(x; σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x; c_noise(σ)) (EDM Eq. 7, Table 1 "Network and
preconditioning"). Each kind is a small class; `PRECONDS` maps the recipe's `precond.kind` to them. The
constants each kind needs are its constructor's keyword arguments, named as the recipe's `[precond]` fields.

`precision` (VP and iDDPM, whose c_noise and σ range come from a schedule or a table): "float64", edmctl's own,
or "float32", exactly as NVlabs/edm's `VPPrecond` / `iDDPMPrecond` compute them (recorded for imported
networks, so that they denoise as they did where they were trained). Every kind's `output_factor` is the
number of output channels F has per image channel: iDDPM's ADM also predicts the variance (2C channels, of
which D uses the first C, as NVlabs builds it).
"""

import math

import torch

from edmctl.design.discretizations import iddpm_u, iddpm_u_float32
from edmctl.design.schedules import VPSchedule
from edmctl.errors import UserError

PRECISIONS = {"float64": torch.float64, "float32": torch.float32}


class VPPrecond:
    """c_skip = 1, c_out = −σ, c_in = 1/sqrt(σ² + 1), c_noise = (M − 1)σ_vp⁻¹(σ) (Table 1, VP)."""

    output_factor = 1

    def __init__(self, *, beta_d: float, beta_min: float, epsilon_t: float, M: int, precision: str = "float64"):
        self.dtype = PRECISIONS[precision]
        self.schedule, self.M = VPSchedule(beta_d, beta_min, self.dtype), M
        self.sigma_min = float(self.schedule.sigma(epsilon_t))
        self.sigma_max = float(self.schedule.sigma(1.0))

    def coefficients(self, sigma):
        # σ_vp⁻¹ needs ln(1 + σ²), which float32 rounds badly at small σ (1% off at σ = 0.002): float64 unless
        # the recipe asks for NVlabs's float32.
        t = self.schedule.sigma_inv(sigma.to(self.dtype)).to(sigma.dtype)
        return torch.ones_like(sigma), -sigma, 1 / (sigma**2 + 1).sqrt(), (self.M - 1) * t

    def round_sigma(self, sigma):
        return torch.as_tensor(sigma)


class VEPrecond:
    """c_skip = 1, c_out = σ, c_in = 1, c_noise = ln(½σ) (Table 1, VE)."""

    output_factor = 1

    def __init__(self, *, sigma_min: float, sigma_max: float):
        self.sigma_min, self.sigma_max = sigma_min, sigma_max

    def coefficients(self, sigma):
        return torch.ones_like(sigma), sigma, torch.ones_like(sigma), (0.5 * sigma).log()

    def round_sigma(self, sigma):
        return torch.as_tensor(sigma)


def nearest_index(sigma, u):
    """argmin_j |u_j − σ| per σ, in float64."""
    return (sigma.to(torch.float64).reshape(-1, 1) - u).abs().argmin(1).reshape(sigma.shape)


def nearest_index_cdist(sigma, u):
    """argmin_j |u_j − σ| as NVlabs's `iDDPMPrecond.round_sigma` finds it: `torch.cdist` in float32."""
    distances = torch.cdist(sigma.to(torch.float32).reshape(1, -1, 1), u.reshape(1, -1, 1))
    return distances.argmin(2).reshape(sigma.shape)


IDDPM_TABLES = {"float64": (iddpm_u, nearest_index), "float32": (iddpm_u_float32, nearest_index_cdist)}


class IDDPMPrecond:
    """c_skip = 1, c_out = −σ, c_in = 1/sqrt(σ² + 1), c_noise = M − 1 − argmin_j |u_j − σ| (Table 1, iDDPM);
    round_sigma snaps σ to the nearest u_j. F has 2C output channels (ε and the learned variance of iDDPM's
    ADM); D uses the first C."""

    output_factor = 2

    def __init__(self, *, C_1: float, C_2: float, M: int, precision: str = "float64"):
        table, self._nearest = IDDPM_TABLES[precision]
        self.u, self.M = table(M, C_1, C_2), M
        self.sigma_min, self.sigma_max = float(self.u[M - 1]), float(self.u[0])

    def use_table(self, u: torch.Tensor):
        """Take u_j from a network pickle (NVlabs's iDDPMPrecond carries its own `u` buffer and uses it, not one
        recomputed on the loading machine: float32 sin differs by an ulp between CPUs)."""
        if u.shape != self.u.shape or not torch.isfinite(u).all() or not (u[:-1] > u[1:]).all():
            raise UserError(f"the pickled iDDPM table u has shape {tuple(u.shape)} or values that are not "
                            f"{self.M + 1} finite decreasing σ; the pickle is damaged.")
        self.u = u.to(self.u.dtype)
        self.sigma_min, self.sigma_max = float(self.u[self.M - 1]), float(self.u[0])

    def _index(self, sigma):
        sigma = torch.as_tensor(sigma)
        return self._nearest(sigma, self.u.to(sigma.device))

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
    output_factor = 1

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
    `sigma_max` and `round_sigma` as the sampler expects. Of F's `precond.output_factor`·C output channels,
    the first C are F(x).
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
        return c_skip * x + c_out * F_x[:, : x.shape[1]].to(torch.float32)
