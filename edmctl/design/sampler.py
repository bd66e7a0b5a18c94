"""The sampler of EDM Algorithm 2 assembled from the recipe's `[sampler]` section (Table 1, sampling rows).

`run_sampler` resolves the noise range, builds σ(t), s(t) and the time steps {t_i}, and runs the chosen
solver on the probability-flow ODE. The state is float64; the model is called as D(x/s(t); σ(t)).
"""

import inspect
import math
from dataclasses import dataclass

import torch

from edmctl.design.discretizations import DISCRETIZATIONS, EPSILON_S, default_sigma_range
from edmctl.design.scalings import SCALINGS
from edmctl.design.schedules import SCHEDULES, VPSchedule, vp_betas_for_range
from edmctl.design.solvers import CHURN_SOLVERS, SOLVERS, STOCHASTIC_SOLVERS

GAMMA_MAX = math.sqrt(2) - 1  # Algorithm 2's cap on γ_i: σ̂ = (1 + γ_i)σ at most doubles the noise variance


@dataclass
class Churn:
    """Stochasticity settings of Algorithm 2: γ_i = min(S_churn/N, √2 − 1) for S_tmin ≤ σ(t_i) ≤ S_tmax."""

    s_churn: float
    s_tmin: float
    s_tmax: float
    s_noise: float
    steps: int

    def gamma(self, sigma) -> float:
        if self.s_churn > 0 and self.s_tmin <= float(sigma) <= self.s_tmax:
            return min(self.s_churn / self.steps, GAMMA_MAX)
        return 0.0

    @property
    def saturated(self) -> bool:
        """S_churn/N ≥ √2 − 1: every larger S_churn gives the same γ_i."""
        return self.s_churn / self.steps >= GAMMA_MAX


def inert_churn(sampler) -> dict:
    """The churn fields of a `[sampler]` that cannot change its samples, at the values that stand for them, so
    that samplers giving bit-identical samples compare equal once these are put in:

    - S_churn = ∞ for any saturated S_churn (S_churn/N ≥ √2 − 1: γ_i = √2 − 1 in the window either way);
    - with S_churn = 0, the window S_tmin, S_tmax at their defaults for every solver but restart (which restarts
      inside it), and S_noise at 1 for the deterministic churn solvers (euler, heun: their only noise is churn's)
      on σ(t) = t, where γ_i = 0 gives t̂_i = t_i exactly and so no noise at all.
    """
    churn = Churn(sampler.s_churn, sampler.s_tmin, sampler.s_tmax, sampler.s_noise, sampler.steps)
    if churn.s_churn > 0:
        return {"s_churn": math.inf} if churn.saturated else {}
    inert = {} if sampler.solver == "restart" else {"s_tmin": 0.0, "s_tmax": math.inf}
    if sampler.solver in CHURN_SOLVERS - STOCHASTIC_SOLVERS and sampler.schedule == "linear":
        inert["s_noise"] = 1.0
    return inert


class ProbabilityFlow:
    """dx/dt = (σ'/σ + s'/s)·x − (σ's/σ)·D(x/s; σ) (EDM Eq. 4 with the score (D − x)/σ²). Counts NFE."""

    def __init__(self, model, schedule, scaling, class_labels=None):
        self.model, self.schedule, self.scaling, self.class_labels = model, schedule, scaling, class_labels
        self.sigma, self.sigma_inv = schedule.sigma, schedule.sigma_inv
        self.s = scaling.s
        self.round_sigma = model.round_sigma
        self.nfe = 0

    def denoise(self, x, t):
        """D(x/s(t); σ(t)) in float64, one denoiser call."""
        self.nfe += 1
        return self.model(x / self.s(t), self.sigma(t), self.class_labels).to(torch.float64)

    def d(self, x, t):
        """dx/dt at (x, t): EDM Eq. 4."""
        sigma, sigma_deriv = self.schedule.sigma(t), self.schedule.sigma_deriv(t)
        s, s_deriv = self.scaling.s(t), self.scaling.s_deriv(t)
        return (sigma_deriv / sigma + s_deriv / s) * x - sigma_deriv * s / sigma * self.denoise(x, t)


def sigma_range(sampler, model) -> tuple[float, float]:
    """The sampler's σ range: its own, else its discretization's default, clamped to the model's range."""
    default_min, default_max = default_sigma_range(sampler.disc, sampler.sigmas)
    sigma_min = default_min if sampler.sigma_min is None else sampler.sigma_min
    sigma_max = default_max if sampler.sigma_max is None else sampler.sigma_max
    return max(sigma_min, model.sigma_min), min(sigma_max, model.sigma_max)


def build_schedule(name: str, sigma_min: float, sigma_max: float):
    """σ(t); the VP schedule takes β_d, β_min fitted to the σ range so that t runs over [ε_s, 1]."""
    if SCHEDULES[name] is VPSchedule:
        return VPSchedule(*vp_betas_for_range(sigma_min, sigma_max, EPSILON_S))
    return SCHEDULES[name]()


def time_steps(sampler, model, schedule, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """t_i = σ⁻¹(round_sigma(σ_i)) for i < N, then t_N = 0; float64."""
    disc = DISCRETIZATIONS[sampler.disc]
    sigma_steps = disc(sampler.steps, sigma_min, sigma_max, sampler.rho, **fields_of(disc, sampler))
    t_steps = schedule.sigma_inv(model.round_sigma(sigma_steps))
    return torch.cat([t_steps, torch.zeros_like(t_steps[:1])])


def fields_of(fn, sampler) -> dict:
    """The `[sampler]` fields a solver or discretization takes: its keyword-only parameters, by name."""
    params = inspect.signature(fn).parameters.values()
    return {p.name: getattr(sampler, p.name) for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def run_sampler(model, sampler, latents, class_labels, noise) -> tuple[torch.Tensor, int]:
    """Sample from `model` with the `[sampler]` settings, starting from standard-normal `latents` (N,C,H,W).

    `noise()` returns the next per-image float64 standard-normal draw (the solver's docstring says when it draws).
    Returns the samples (float64, unclipped) and the number of denoiser calls (NFE).
    """
    sigma_min, sigma_max = sigma_range(sampler, model)
    schedule = build_schedule(sampler.schedule, sigma_min, sigma_max)
    flow = ProbabilityFlow(model, schedule, SCALINGS[sampler.scaling](schedule), class_labels)
    t_steps = time_steps(sampler, model, schedule, sigma_min, sigma_max)
    x = latents.to(torch.float64) * (schedule.sigma(t_steps[0]) * flow.s(t_steps[0]))
    churn = Churn(sampler.s_churn, sampler.s_tmin, sampler.s_tmax, sampler.s_noise, sampler.steps)
    solver = SOLVERS[sampler.solver]
    x = solver(flow, x, t_steps, churn, noise, **fields_of(solver, sampler))
    return x, flow.nfe


class _CountingModel:
    """A denoiser that returns zeros: `run_sampler` on it counts a sampler's NFE without any real work."""

    sigma_min, sigma_max, label_dim, img_shape = 0.0, float("inf"), 0, (1, 1, 1)

    def round_sigma(self, sigma):
        return torch.as_tensor(sigma, dtype=torch.float64)

    def __call__(self, x, sigma, class_labels=None):
        return x * 0


def nfe_of(sampler) -> int:
    """Denoiser calls of `sampler` per image."""
    return run_sampler(_CountingModel(), sampler, torch.ones(1, 1, 1, 1), None, lambda: torch.zeros(1, 1, 1, 1))[1]
