"""How far a sampler lands from the probability-flow ODE's solution, on an analytic model (whose distribution is
known): four named measures, `SAMPLER_ERRORS`, each one function of (model, samples, reference).

The reference is the converged solution from the same initial noise: deterministic Heun with `REFERENCE_STEPS`
EDM time steps (Eq. 5) over the sampler's own σ range, σ(t) = t, s(t) = 1 (`reference_sampler`).

    rms_median  median over seeds of the per-seed RMS distance sqrt(mean_pixels (x − x_ref)²)
    rms_p90     its 90th percentile over seeds: the tail
    flips       the fraction of seeds whose sample lies in a different mixture component than its reference
    fd_exact    the Fréchet distance of the samples (pixels) to the model's exact distribution (closed-form mean
                and covariance: what infinitely many exact draws give), the distributional score of Figure 2

Why a mode flip is its own event: near the end of the ODE the trajectories of a mixture split between
components, and a seed that a coarse sampler sends to another component lands a whole image away (per-seed RMS
≈ 0.2–0.5 on the digits) while the truncation error of the others is ≈ 0.01. An RMS over all pixels of all
images is dominated by the few flipped seeds; the median ignores them while fewer than half the seeds flip,
the 90th percentile while fewer than 10% do, and `flips` counts them.
"""

import weakref
from typing import Callable

import torch

REFERENCE_STEPS = 256  # Heun steps of the converged reference (per-seed RMS to 512 steps < 1e-5 on the digits)
TAIL_QUANTILE = 0.9


def reference_sampler(sampler, model):
    """The converged reference of `sampler`: deterministic Heun, EDM steps, σ(t) = t, s(t) = 1, same σ range."""
    from edmctl.design.sampler import sigma_range

    sigma_min, sigma_max = sigma_range(sampler, model)
    return type(sampler)(solver="heun", disc="edm", schedule="linear", scaling="none", steps=REFERENCE_STEPS,
                         rho=7.0, sigma_min=sigma_min, sigma_max=sigma_max)


_REFERENCES: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


def reference_solution(model, sampler, seeds: list[int], batch: int, device="cpu") -> torch.Tensor:
    """Samples of `reference_sampler` from the same seeds, cached per model by σ range, seeds and device."""
    from edmctl.sampling import sample

    reference = reference_sampler(sampler, model)
    cache = _REFERENCES.setdefault(model, {})
    key = (reference.sigma_min, reference.sigma_max, tuple(seeds), str(device))
    if key not in cache:
        cache[key] = sample(model, reference, seeds, batch, device=device).samples
    return cache[key]


def per_seed_rms(samples: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """sqrt(mean over pixels (x − x_ref)²) of each seed: shape (N,)."""
    return (samples - reference).flatten(1).pow(2).mean(dim=1).sqrt()


def mode_flips(model, samples: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """True for each seed whose sample's most likely component (`model.components`) is not its reference's."""
    return model.components(samples) != model.components(reference)


def fd_exact(model, samples: torch.Tensor) -> float:
    """Fréchet distance of the samples' pixels (mean μ_s, unbiased covariance Σ_s) to the model's exact
    `moments()` (μ, Σ): d² = ‖μ_s − μ‖² + Tr Σ_s + Tr Σ − 2 Tr((Σ_s Σ)^½), the FID formula (Heusel et al. 2017),
    with Tr((Σ_s Σ)^½) = Σ_i √λ_i(Σ^½ Σ_s Σ^½): a symmetric eigenproblem, real and exact even when Σ_s is
    singular (fewer seeds than pixels), where a matrix square root of Σ_s Σ turns complex."""
    flat = samples.flatten(1)
    mean_s, covariance_s = flat.mean(dim=0), torch.cov(flat.T)
    mean, covariance = model.moments()
    eigenvalues, vectors = torch.linalg.eigh(covariance)
    root = (vectors * eigenvalues.clamp_min(0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root @ covariance_s @ root).clamp_min(0).sqrt().sum()
    return float((mean_s - mean).pow(2).sum() + covariance_s.trace() + covariance.trace() - 2 * cross)


SAMPLER_ERRORS: dict[str, Callable[[object, torch.Tensor, torch.Tensor], float]] = {
    "rms_median": lambda model, x, ref: float(per_seed_rms(x, ref).quantile(0.5)),
    "rms_p90": lambda model, x, ref: float(per_seed_rms(x, ref).quantile(TAIL_QUANTILE)),
    "flips": lambda model, x, ref: float(mode_flips(model, x, ref).double().mean()),
    "fd_exact": lambda model, x, ref: fd_exact(model, x),
}


def sampler_error(model, samples: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """Every measure of `SAMPLER_ERRORS`, by name, of `samples` against the `reference` from the same seeds."""
    samples, reference = samples.to(torch.float64).cpu(), reference.to(torch.float64).cpu()
    if samples.shape != reference.shape:
        raise ValueError(f"samples {tuple(samples.shape)} and reference {tuple(reference.shape)} differ in shape")
    return {name: measure(model, samples, reference) for name, measure in SAMPLER_ERRORS.items()}
