"""Noise schedules σ(t) with σ'(t) and σ⁻¹(σ) (EDM Table 1, row "Schedule").

Each schedule is a small class; `SCHEDULES` maps the recipe's `sampler.schedule` names to them.
"""

import math

import torch


def as_f64(t) -> torch.Tensor:
    """A Python number becomes a float64 tensor; a tensor keeps its dtype (the sampler's are float64)."""
    return t if isinstance(t, torch.Tensor) else torch.tensor(t, dtype=torch.float64)


class VPSchedule:
    """σ(t) = sqrt(exp(½β_d t² + β_min t) − 1) (Table 1, VP column). `dtype` is the precision of a Python
    number given as t or σ (float64; NVlabs/edm's VPPrecond computes in float32)."""

    def __init__(self, beta_d: float = 19.9, beta_min: float = 0.1, dtype: torch.dtype = torch.float64):
        self.beta_d, self.beta_min, self.dtype = beta_d, beta_min, dtype

    def sigma(self, t):
        t = t if isinstance(t, torch.Tensor) else torch.tensor(t, dtype=self.dtype)
        return ((0.5 * self.beta_d * t**2 + self.beta_min * t).exp() - 1).sqrt()

    def sigma_deriv(self, t):
        t = as_f64(t)
        sigma = self.sigma(t)
        return 0.5 * (self.beta_min + self.beta_d * t) * (sigma + 1 / sigma)

    def sigma_inv(self, sigma):
        sigma = as_f64(sigma)
        return ((self.beta_min**2 + 2 * self.beta_d * (sigma**2 + 1).log()).sqrt() - self.beta_min) / self.beta_d


class VESchedule:
    """σ(t) = sqrt(t) (Table 1, VE column)."""

    def sigma(self, t):
        return as_f64(t).sqrt()

    def sigma_deriv(self, t):
        return 0.5 / as_f64(t).sqrt()

    def sigma_inv(self, sigma):
        return as_f64(sigma) ** 2


class LinearSchedule:
    """σ(t) = t (Table 1, iDDPM and EDM columns)."""

    def sigma(self, t):
        return as_f64(t)

    def sigma_deriv(self, t):
        return torch.ones_like(as_f64(t))

    def sigma_inv(self, sigma):
        return as_f64(sigma)


SCHEDULES = {"vp": VPSchedule, "ve": VESchedule, "linear": LinearSchedule}


def vp_sigma(t: float, beta_d: float = 19.9, beta_min: float = 0.1) -> float:
    """σ_vp(t) as a plain float, for default ranges and constants."""
    return math.sqrt(math.exp(0.5 * beta_d * t**2 + beta_min * t) - 1)


def vp_betas_for_range(sigma_min: float, sigma_max: float, epsilon_s: float = 1e-3) -> tuple[float, float]:
    """β_d, β_min that make σ_vp(ε_s) = σ_min and σ_vp(1) = σ_max (EDM App. D.1, as in `ablation_sampler`)."""
    beta_d = 2 * (math.log(sigma_min**2 + 1) / epsilon_s - math.log(sigma_max**2 + 1)) / (epsilon_s - 1)
    beta_min = math.log(sigma_max**2 + 1) - 0.5 * beta_d
    return beta_d, beta_min
