"""Time-step discretizations: the noise levels σ_0 > … > σ_{N−1} (EDM Table 1, row "Time steps").

Every function has one signature, `(steps, sigma_min, sigma_max, rho, *, <its recipe fields>) -> float64
tensor (N,)`, and `DISCRETIZATIONS` maps the recipe's `sampler.disc` names to them. σ_N = 0 is appended by the
sampler.
"""

import math

import torch

from edmctl.design.schedules import VPSchedule, vp_betas_for_range, vp_sigma

EPSILON_S = 1e-3  # VP's smallest time step ε_s (Table 1, VP column)
IDDPM_M, IDDPM_C1, IDDPM_C2 = 1000, 0.001, 0.008  # iDDPM constants (Table 1, iDDPM column)


def _fraction(steps: int) -> torch.Tensor:
    """i/(N−1) for i = 0..N−1 in float64 (a single step sits at σ_max)."""
    i = torch.arange(steps, dtype=torch.float64)
    return i / (steps - 1) if steps > 1 else i


def edm(steps: int, sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """σ_i = (σ_max^(1/ρ) + i/(N−1)(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ (EDM Eq. 5)."""
    return (sigma_max ** (1 / rho) + _fraction(steps) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho


def vp(steps: int, sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """t_i = 1 + i/(N−1)(ε_s − 1), σ_i = σ_vp(t_i) with β_d, β_min fitted to the σ range (Table 1, VP)."""
    t = 1 + _fraction(steps) * (EPSILON_S - 1)
    return VPSchedule(*vp_betas_for_range(sigma_min, sigma_max, EPSILON_S)).sigma(t)


def ve(steps: int, sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """σ_i² = σ_max²(σ_min²/σ_max²)^(i/(N−1)): geometric in σ (Table 1, VE)."""
    t = sigma_max**2 * (sigma_min**2 / sigma_max**2) ** _fraction(steps)
    return t.sqrt()


def iddpm_u(M: int = IDDPM_M, C_1: float = IDDPM_C1, C_2: float = IDDPM_C2) -> torch.Tensor:
    """u_0 > … > u_M = 0: u_{j−1} = sqrt((u_j² + 1)/max(ᾱ_{j−1}/ᾱ_j, C_1) − 1), ᾱ_j = sin²(½π j/(M(C_2 + 1)))
    (Table 1, iDDPM), in float64. Since u_{j−1}² + 1 = (u_j² + 1)/r_j, it is a running product."""
    j = torch.arange(M + 1, dtype=torch.float64)
    alpha_bar = (0.5 * math.pi * j / (M * (C_2 + 1))).sin() ** 2
    ratio = (alpha_bar[:-1] / alpha_bar[1:]).clip(min=C_1)  # r_j = ᾱ_{j−1}/ᾱ_j for j = 1..M
    u_squared_plus_1 = torch.ones(M + 1, dtype=torch.float64)
    u_squared_plus_1[:-1] = (1 / ratio).flip(0).cumprod(0).flip(0)
    return (u_squared_plus_1 - 1).clip(min=0).sqrt()


def iddpm_u_float32(M: int = IDDPM_M, C_1: float = IDDPM_C1, C_2: float = IDDPM_C2) -> torch.Tensor:
    """The same u_j as NVlabs/edm's `iDDPMPrecond` tabulates them: the recurrence of `iddpm_u` evaluated one j at
    a time in float32, ᾱ_j = sin²(½π j / M / (C_2 + 1)) in that order of operations (float32 table)."""

    def alpha_bar(j: int) -> torch.Tensor:
        return (0.5 * math.pi * torch.tensor(j) / M / (C_2 + 1)).sin() ** 2

    u = torch.zeros(M + 1)
    for j in range(M, 0, -1):
        u[j - 1] = ((u[j] ** 2 + 1) / (alpha_bar(j - 1) / alpha_bar(j)).clip(min=C_1) - 1).sqrt()
    return u


def iddpm(steps: int, sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """The u_j inside [σ_min, σ_max], picked at indices round((len − 1)/(N − 1)·i) (Table 1, iDDPM)."""
    u = iddpm_u()
    u = u[(u >= sigma_min) & (u <= sigma_max)]
    i = torch.arange(steps, dtype=torch.float64)
    index = ((len(u) - 1) / max(steps - 1, 1) * i).round().to(torch.int64)
    return u[index]


def exponential(steps: int, sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """ln σ_i evenly spaced from ln σ_max to ln σ_min (k-diffusion's `get_sigmas_exponential`)."""
    return (math.log(sigma_max) + _fraction(steps) * (math.log(sigma_min) - math.log(sigma_max))).exp()


def polyexponential(steps: int, sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """ln σ_i = ln σ_min + (1 − i/(N−1))^ρ (ln σ_max − ln σ_min): polynomial in ln σ (k-diffusion's
    `get_sigmas_polyexponential`; ρ = 1 is `exponential`, larger ρ puts more steps at low σ)."""
    ramp = (1 - _fraction(steps)) ** rho
    return (ramp * (math.log(sigma_max) - math.log(sigma_min)) + math.log(sigma_min)).exp()


def table(steps: int, sigma_min: float, sigma_max: float, rho: float, *, sigmas: list[float]) -> torch.Tensor:
    """The recipe's own σ_0 > … > σ_{N−1} (`sampler.sigmas`), e.g. written by `edmctl steps optimize`."""
    return torch.tensor(sigmas, dtype=torch.float64)


DISCRETIZATIONS = {"edm": edm, "vp": vp, "ve": ve, "iddpm": iddpm, "exponential": exponential,
                   "polyexponential": polyexponential, "table": table}

DEFAULT_SIGMA_RANGE = {
    "vp": (vp_sigma(EPSILON_S), vp_sigma(1.0)),
    "ve": (0.02, 100.0),
    "iddpm": (0.002, 81.0),
    "edm": (0.002, 80.0),
    "exponential": (0.002, 80.0),
    "polyexponential": (0.002, 80.0),
}


def default_sigma_range(disc: str, sigmas: list[float] | None = None) -> tuple[float, float]:
    """The σ range a discretization spans by default; a table spans its own values."""
    if disc == "table":
        return min(sigmas), max(sigmas)
    return DEFAULT_SIGMA_RANGE[disc]
