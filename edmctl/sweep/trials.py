"""What a trial runs: a table `TRIALS` of `kind -> function(recipe, run, settings, device) -> metrics`.

- `sample`: one image per seed of `settings["seeds"]` from `settings["model"]` with the recipe's sampler.
  Metric `rms` (analytic models, the default there): the RMS distance to a converged reference solution from
  the same initial noise (Heun, `REFERENCE_STEPS` EDM steps over the same σ range, no churn). Metric `fd`
  (the default for trained models): the Fréchet distance of the samples' detector features (`[eval] detector`)
  to the reference statistics (`[eval] ref`, else the `[data] source` measured with the same detector).
- `fid`: FID by the recipe's `[eval]` protocol (`num` images per seed block, best of `repeats`).

Models, reference solutions and reference statistics are cached per process: a worker pays for them once.
"""

import functools
import time
from typing import Any, Callable

from edmctl.errors import UserError

REFERENCE_STEPS = 256  # Heun steps of the converged reference (RMS change from 512 steps < 1e-6 on digits)


@functools.lru_cache(maxsize=4)
def cached_model(spec: str):
    from edmctl.models import load_model

    return load_model(spec)


def is_analytic(model) -> bool:
    """Analytic models (ideal denoiser, Gaussian data) are plain objects; trained networks are torch modules."""
    import torch

    return not isinstance(model, torch.nn.Module)


def model_of(settings: dict) -> Any:
    if not settings.get("model"):
        raise UserError("the sweep file sets no model; add e.g. model = \"ideal:digits?std=0.2\" or \"run:12\".")
    return cached_model(settings["model"])


def parse_seed_list(settings: dict) -> list[int]:
    from edmctl.sampling import parse_seeds

    return parse_seeds(settings["seeds"])


def reference_sampler(sampler, model):
    """The converged reference of `sampler`: deterministic Heun, EDM steps, σ(t) = t, s(t) = 1, same σ range."""
    from edmctl.design.sampler import sigma_range

    sigma_min, sigma_max = sigma_range(sampler, model)
    return type(sampler)(solver="heun", disc="edm", schedule="linear", scaling="none", steps=REFERENCE_STEPS,
                         rho=7.0, sigma_min=sigma_min, sigma_max=sigma_max)


_REFERENCES: dict[tuple, Any] = {}


def reference_solution(model_spec: str, sampler, seeds: list[int], batch: int, device="cpu"):
    """Samples of the converged reference sampler from the same seeds (cached by model, σ range and seeds)."""
    from edmctl.sampling import sample

    model = cached_model(model_spec)
    reference = reference_sampler(sampler, model)
    key = (model_spec, reference.sigma_min, reference.sigma_max, tuple(seeds), str(device))
    if key not in _REFERENCES:
        _REFERENCES[key] = sample(model, reference, seeds, batch, device=device).samples
    return _REFERENCES[key]


def rms_to_reference(samples, model_spec: str, sampler, seeds: list[int], batch: int, device="cpu") -> float:
    """sqrt(mean((x − x_ref)²)) over every pixel of every image."""
    reference = reference_solution(model_spec, sampler, seeds, batch, device)
    return float(((samples - reference) ** 2).mean().sqrt())


_REFERENCE_STATS: dict[tuple, Any] = {}


def reference_stats(recipe, detector):
    """`[eval] ref` when set, else the statistics of `[data] source` under the same detector (cached)."""
    from edmctl.fid import batches, compute_stats, dataset_images, load_stats

    if recipe.eval.ref:
        return load_stats(recipe.eval.ref)
    key = (recipe.data.source, detector.name, detector.protocol)
    if key not in _REFERENCE_STATS:
        from edmctl.data import open_dataset

        images = dataset_images(open_dataset(recipe.data.source))
        _REFERENCE_STATS[key] = compute_stats(batches(images, recipe.eval.batch), detector).stats
    return _REFERENCE_STATS[key]


def frechet_to_reference(samples, recipe, device="cpu") -> float:
    """Fréchet distance of the samples' `[eval] detector` features to the reference statistics."""
    from edmctl.fid import compute_stats, frechet_distance, load_detector
    from edmctl.sampling import to_uint8

    detector = load_detector(recipe.eval.detector, recipe.eval.protocol, device)
    pixels = to_uint8(samples)
    chunks = [pixels[i : i + recipe.eval.batch] for i in range(0, len(pixels), recipe.eval.batch)]
    return frechet_distance(compute_stats(chunks, detector).stats, reference_stats(recipe, detector))


def sample_trial(recipe, run, settings: dict, device="cpu") -> dict[str, float]:
    """Sample the sweep's seeds; log `nfe`, `seconds` and the metric (`rms` or `fd`, see the module docstring)."""
    from edmctl.sampling import sample

    model, seeds = model_of(settings), parse_seed_list(settings)
    metric = settings.get("metric") or default_metric("sample", settings["model"])
    if metric not in SAMPLE_METRICS:
        raise UserError(f"sample trials measure {' or '.join(SAMPLE_METRICS)}, not metric = {metric!r}.")
    if metric == "rms" and not is_analytic(model):
        raise UserError(f"metric = \"rms\" needs an analytic model (ideal:...), not {settings['model']!r}; use metric = \"fd\".")
    result = sample(model, recipe.sampler, seeds, settings.get("batch", 256), device=device)
    run.update(model=settings["model"], nfe=result.nfe, num_images=len(seeds))
    value = SAMPLE_METRICS[metric](result.samples, recipe, settings, seeds, device)
    return {metric: value, "nfe": result.nfe, "seconds": result.seconds}


SAMPLE_METRICS: dict[str, Callable[..., float]] = {
    "rms": lambda samples, recipe, settings, seeds, device: rms_to_reference(
        samples, settings["model"], recipe.sampler, seeds, settings.get("batch", 256), device),
    "fd": lambda samples, recipe, settings, seeds, device: frechet_to_reference(samples, recipe, device),
}


def fid_trial(recipe, run, settings: dict, device="cpu") -> dict[str, float]:
    """FID by the recipe's `[eval]` protocol: `num` images per seed block, `repeats` blocks, the best reported."""
    from edmctl.fid import seed_blocks
    from edmctl.sampling import sample

    model = model_of(settings)
    start, values, nfe = time.perf_counter(), [], 0
    for seeds in seed_blocks(recipe.eval.num, recipe.eval.repeats):
        result = sample(model, recipe.sampler, list(seeds), recipe.eval.batch, device=device)
        values.append(frechet_to_reference(result.samples, recipe, device))
        nfe = result.nfe
    run.update(model=settings["model"], nfe=nfe, fid_repeats=values)
    return {"fid": min(values), "nfe": nfe, "seconds": time.perf_counter() - start}


TRIALS: dict[str, Callable[..., dict[str, float]]] = {
    "sample": sample_trial,
    "fid": fid_trial,
}



def default_metric(trial: str, model_spec: str | None) -> str:
    """`fid` for fid trials; for sample trials `rms` on analytic models (`ideal:...`), else `fd`."""
    if trial == "sample":
        return "rms" if (model_spec or "").startswith("ideal:") else "fd"
    return "fid"
