"""Optimised time steps: the N noise levels that bring a solver closest to a converged solve of the same ODE.

σ_0 stays at the sampler's σ_max (the noise the samples start from); ln σ_1 > … > ln σ_{N−1} are searched by
Nelder–Mead (scipy), starting from the sampler's own discretization, to minimise the median over seeds of each
sample's RMS distance to its converged reference (`median_rms`, as bench/solver_accuracy.py measures a solver).
The reference is a Heun solve with `REFERENCE_STEPS` edm steps from the same seeds, or a run's samples. Use search
seeds other than the ones the result is judged on, or the levels fit those seeds' noise.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from edmctl.design.discretizations import DISCRETIZATIONS
from edmctl.design.sampler import fields_of, sigma_range
from edmctl.errors import UserError
from edmctl.sampling.driver import sample

REFERENCE_STEPS = 512  # Heun steps of the converged solve (NFE 1023), as bench/solver_accuracy.py
SIMPLEX_SPREAD = 0.3  # the initial simplex: each ln σ_i moved by this much
INVALID = 1e3  # the objective of levels that are not strictly decreasing


def median_rms(samples: torch.Tensor, reference: torch.Tensor) -> float:
    """Median over seeds of each sample's RMS distance (over pixels) to its reference."""
    return (samples - reference).flatten(1).pow(2).mean(1).sqrt().median().item()


@dataclass
class StepSearch:
    """The result: the levels found, the error before and after, and how the search went."""

    sigmas: list[float]
    error: float
    start_sigmas: list[float]
    start_error: float
    start_disc: str
    seeds: list[int]
    nfe: int
    evaluations: int
    history: list[float] = field(default_factory=list)  # the best error after each evaluation


def start_levels(model, sampler) -> list[float]:
    """σ_0 > … > σ_{N−1} of the sampler's own discretization (its σ range clamped to the model's), σ_0 = σ_max."""
    sigma_min, sigma_max = sigma_range(sampler, model)
    disc = DISCRETIZATIONS[sampler.disc]
    levels = model.round_sigma(disc(sampler.steps, sigma_min, sigma_max, sampler.rho, **fields_of(disc, sampler))).tolist()
    return [float(model.round_sigma(sigma_max)), *levels[1:]]


def with_table(sampler, sigmas: list[float]):
    """The sampler with `disc = 'table'` over `sigmas` (validated as a recipe would be)."""
    fields = {**sampler.model_dump(), "disc": "table", "sigmas": list(sigmas), "steps": len(sigmas),
              "sigma_min": None, "sigma_max": None}
    return type(sampler).model_validate(fields)


def heun_reference(model, sampler, seeds: list[int], batch: int) -> torch.Tensor:
    """The converged solve: Heun over REFERENCE_STEPS edm(ρ = 7) levels spanning the sampler's σ range."""
    sigma_min, sigma_max = sigma_range(sampler, model)
    fields = {"solver": "heun", "disc": "edm", "rho": 7.0, "steps": REFERENCE_STEPS, "sigma_min": sigma_min,
              "sigma_max": sigma_max, "schedule": sampler.schedule, "scaling": sampler.scaling}
    return sample(model, type(sampler).model_validate(fields), seeds, batch).samples


def optimize_steps(model, sampler, seeds: list[int], reference: torch.Tensor, batch: int, max_evals: int = 600,
                   progress=None) -> StepSearch:
    """Search the levels of `sampler` (its solver and N = `steps`) that minimise `median_rms` to `reference`."""
    from scipy.optimize import minimize

    if sampler.steps < 2:
        raise UserError("sampler.steps must be at least 2 to optimise the time steps (σ_0 is fixed at σ_max).")
    start = start_levels(model, sampler)
    history: list[float] = []

    def levels(z: np.ndarray) -> list[float]:
        return [start[0], *np.exp(z).tolist()]

    def objective(z: np.ndarray) -> float:
        sigmas = levels(z)
        if not all(a > b for a, b in zip(sigmas, sigmas[1:])) or not all(map(math.isfinite, sigmas)):
            error = INVALID
        else:
            samples = sample(model, with_table(sampler, sigmas), seeds, batch).samples
            error = median_rms(samples, reference) if torch.isfinite(samples).all() else INVALID
        history.append(min(error, history[-1]) if history else error)
        if progress is not None:
            progress(len(history), history[-1])
        return error

    z0 = np.log(np.asarray(start[1:], dtype=np.float64))
    simplex = np.vstack([z0, z0 + SIMPLEX_SPREAD * np.eye(len(z0))])
    result = minimize(objective, z0, method="Nelder-Mead",
                      options={"initial_simplex": simplex, "maxfev": max_evals, "xatol": 1e-3, "fatol": 1e-7})
    start_error = history[0]
    best = [float(s) for s in (levels(result.x) if result.fun < start_error else start)]
    nfe = sample(model, with_table(sampler, best), seeds[:1], 1).nfe
    return StepSearch(best, float(min(result.fun, start_error)), start, start_error, sampler.disc, list(seeds), nfe,
                      len(history), history)
