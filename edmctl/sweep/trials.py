"""What a trial runs: a table `TRIALS` of `kind -> function(recipe, run, settings, device) -> metrics`.

- `sample`: one image per seed of `settings["seeds"]` from `settings["model"]` with the recipe's sampler.
  On analytic models the metric is one of the sampler errors of `edmctl.evaluate` (`rms_median`, the default
  there, `rms_p90`, `flips`, `fd_exact`: distance to the converged reference from the same initial noise, mode
  flips, Fréchet distance to the exact distribution), and every one of them is logged. Metric `fd` (the default
  for trained models): the Fréchet distance of the samples' detector features (`[eval] detector`) to the
  reference statistics (`[eval] ref`, else the `[data] source` measured with the same detector).
- `fid`: FID by the recipe's `[eval]` protocol (`num` images per seed block, best of `repeats`).
- `train`: train the recipe (EDM training loop, `[training]` to `duration_kimg`); metric `loss`, the last tick's
  mean loss. The trial run *is* the training run (recorded with kind `train`, see `run_kind`): its tick
  metrics, sigma_data warning and snapshots (checkpoint artifacts) go into it, so `edmctl sample --model
  run:N` samples a trial like any training run. One run per trial keeps the trial's recipe, loss curve,
  weights and FID together and needs no second run linked to the first.
- `train+fid`: `train`, then FID of the EMA weights by the recipe's `[eval]` protocol with its `[sampler]`.

Models, reference solutions and reference statistics are cached per process: a worker pays for them once.
Reference statistics of a `[data]` source (no `[eval] ref`) are also written into the sweep's folder (the
trial's parent run), so the trials of one sweep compute them once across processes.
"""

import functools
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

from edmctl.errors import UserError
from edmctl.evaluate import SAMPLER_ERRORS

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


_REFERENCE_STATS: dict[tuple, Any] = {}


def data_stats(recipe, detector):
    """Statistics of the `[data] source` (at its `resolution` and `channels`) under `detector`."""
    from edmctl.data import open_dataset
    from edmctl.fid import batches, compute_stats, dataset_images

    data = recipe.data
    dataset = open_dataset(data.source, resolution=data.resolution, channels=data.channels)
    return compute_stats(batches(dataset_images(dataset), recipe.eval.batch), detector).stats


def reference_file(recipe, detector, cache_dir: Path) -> Path:
    """`reference-<detector>-<protocol>-<digest>.npz` in `cache_dir`, the digest over the data fields it depends on."""
    data = recipe.data
    key = json.dumps([data.source, data.resolution, data.channels, detector.name, detector.sha256], default=str)
    name = Path(detector.name).stem
    return cache_dir / f"reference-{name}-{detector.protocol}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def reference_stats(recipe, detector, cache_dir: Path | None = None):
    """`[eval] ref` when set, else the statistics of `[data] source` under the same detector: cached per
    process, and in `cache_dir` (read if there, else written through a temporary name) when given."""
    from edmctl.fid import load_stats, save_stats

    if recipe.eval.ref:
        return load_stats(recipe.eval.ref)
    key = (recipe.data.source, recipe.data.resolution, recipe.data.channels, detector.name, detector.protocol)
    path = reference_file(recipe, detector, cache_dir) if cache_dir is not None else None
    if key not in _REFERENCE_STATS:
        _REFERENCE_STATS[key] = load_stats(path) if path is not None and path.is_file() else data_stats(recipe, detector)
    if path is not None and not path.is_file():
        save_stats(path, _REFERENCE_STATS[key])
    return _REFERENCE_STATS[key]


def frechet_to_reference(samples, recipe, device="cpu", cache_dir: Path | None = None) -> float:
    """Fréchet distance of the samples' `[eval] detector` features to the reference statistics."""
    from edmctl.fid import compute_stats, frechet_distance, load_detector
    from edmctl.sampling import to_uint8

    detector = load_detector(recipe.eval.detector, recipe.eval.protocol, device)
    pixels = to_uint8(samples)
    chunks = [pixels[i : i + recipe.eval.batch] for i in range(0, len(pixels), recipe.eval.batch)]
    return frechet_distance(compute_stats(chunks, detector).stats, reference_stats(recipe, detector, cache_dir))


def sample_trial(recipe, run, settings: dict, device="cpu") -> dict[str, float]:
    """Sample the sweep's seeds; log `nfe`, `seconds` and the metric (see the module docstring): on an analytic
    model with a sampler-error metric, every sampler error by its name."""
    from edmctl.sampling import sample

    model, seeds = model_of(settings), parse_seed_list(settings)
    metric = measured_sample_metric(settings)
    check_metric({**settings, "trial": "sample", "metric": metric})
    result = sample(model, recipe.sampler, seeds, settings.get("batch", 256), device=device)
    run.update(model=settings["model"], nfe=result.nfe, num_images=len(seeds))
    return {**SAMPLE_METRICS[metric](model, result.samples, recipe, settings, seeds, device),
            "nfe": result.nfe, "seconds": result.seconds}


def measured_sample_metric(settings: dict) -> str:
    """What a sample trial measures: the sweep's metric, or when it sorts by nfe or seconds the model's default."""
    metric = settings.get("metric") or default_metric("sample", settings["model"])
    return metric if metric in SAMPLE_METRICS else default_metric("sample", settings["model"])


def measures_fd(settings: dict) -> bool:
    """Whether the trials measure a Fréchet distance, with each trial recipe's `eval.detector`."""
    return settings["trial"] in ("fid", "train+fid") or (settings["trial"] == "sample" and measured_sample_metric(settings) == "fd")


def sampler_errors_of(model, samples, recipe, settings: dict, seeds: list[int], device="cpu") -> dict[str, float]:
    """Every sampler error of `edmctl.evaluate` against the converged reference from the same seeds."""
    from edmctl.evaluate import reference_solution, sampler_error

    return sampler_error(model, samples, reference_solution(model, recipe.sampler, seeds, settings.get("batch", 256), device))


def fd_of(model, samples, recipe, settings: dict, seeds: list[int], device="cpu") -> dict[str, float]:
    return {"fd": frechet_to_reference(samples, recipe, device)}


SAMPLE_METRICS: dict[str, Callable[..., dict[str, float]]] = {
    **dict.fromkeys(SAMPLER_ERRORS, sampler_errors_of),
    "fd": fd_of,
}


def fid_of(model, recipe, run, device="cpu", cache_dir: Path | None = None) -> dict[str, float]:
    """FID by the recipe's `[eval]` protocol: `num` images per seed block, `repeats` blocks, the best reported."""
    from edmctl.fid import seed_blocks
    from edmctl.sampling import sample

    start, values, nfe = time.perf_counter(), [], 0
    for seeds in seed_blocks(recipe.eval.num, recipe.eval.repeats):
        result = sample(model, recipe.sampler, list(seeds), recipe.eval.batch, device=device)
        values.append(frechet_to_reference(result.samples, recipe, device, cache_dir))
        nfe = result.nfe
    run.update(nfe=nfe, fid_repeats=values, detector=recipe.eval.detector)
    return {"fid": min(values), "nfe": nfe, "seconds": time.perf_counter() - start}


def fid_trial(recipe, run, settings: dict, device="cpu") -> dict[str, float]:
    """FID of the sweep's model (see `fid_of`)."""
    model = model_of(settings)
    run.update(model=settings["model"])
    return fid_of(model, recipe, run, device, sweep_dir(run))


def sweep_dir(run) -> Path:
    """The folder of the trial's sweep (its parent run), or the trial's own folder when it has no parent."""
    parent_id = run.registry.get(run.id).parent_id
    return run.registry.run_dir(parent_id) if parent_id is not None else run.dir


def train_in(recipe, run, device="cpu"):
    """Train `recipe` to `training.duration_kimg` with the trial `run` as the training run (tick metrics,
    snapshots); returns the trainer and the last tick's metrics."""
    import torch

    from edmctl.train.distributed import Dist
    from edmctl.train.loop import run_training
    from edmctl.train.record import Recorder
    from edmctl.train.session import prepare

    trainer = prepare(recipe, Dist(device=torch.device(device)), warn=lambda text: run.update(warning=text))
    run.update(parameters=trainer.parameter_count, devices=[str(device)], world_size=1)
    with Recorder(run, trainer) as recorder:
        run_training(trainer, recorder)
    run.update(nimg=trainer.nimg)
    return trainer, recorder.metrics


def train_trial(recipe, run, settings: dict, device="cpu") -> dict[str, float]:
    """Train the trial's recipe (the trial run is the training run); report the last tick's loss."""
    start = time.perf_counter()
    _, metrics = train_in(recipe, run, device)
    return {"loss": metrics["loss"], "seconds": time.perf_counter() - start}


def train_fid_trial(recipe, run, settings: dict, device="cpu") -> dict[str, float]:
    """`train`, then FID of the EMA weights with the recipe's `[sampler]` and `[eval]` (see `fid_of`)."""
    start = time.perf_counter()
    trainer, metrics = train_in(recipe, run, device)
    measured = fid_of(trainer.ema_denoiser(), recipe, run, device, sweep_dir(run))
    return {**measured, "loss": metrics["loss"], "seconds": time.perf_counter() - start}


TRIALS: dict[str, Callable[..., dict[str, float]]] = {
    "sample": sample_trial,
    "fid": fid_trial,
    "train": train_trial,
    "train+fid": train_fid_trial,
}


def trial_metrics(trial: str) -> tuple[str, ...]:
    """The metrics a trial of this kind records, any of which can sort a sweep: the measured one, `nfe`,
    `seconds`, and for training trials the tick metrics (loss overall and per σ bin, speed, memory)."""
    from edmctl.train.stats import bin_names

    training = ("loss", *bin_names(), "images_per_s", "kimg", "memory_gib", "lr", "ema_beta", "seconds")
    return {"sample": (*SAMPLE_METRICS, "nfe", "seconds"), "fid": ("fid", "nfe", "seconds"), "train": training,
            "train+fid": ("fid", "nfe", *training)}[trial]


def check_metric(settings: dict) -> None:
    """The sweep's `metric` is one its trials record (and a sampler error has an analytic model): UserError
    otherwise, before anything is recorded."""
    trial, metric = settings["trial"], settings["metric"]
    allowed = trial_metrics(trial)
    if metric not in allowed:
        raise UserError(f"metric = {metric!r} is not recorded by {trial} trials; use one of {', '.join(allowed)}.")
    if trial == "sample" and metric in SAMPLER_ERRORS and not is_analytic(model_of(settings)):
        raise UserError(f"metric = {metric!r} needs an analytic model (ideal:...), not {settings['model']!r}; use metric = \"fd\".")


def check_networks(trials, where) -> None:
    """Every training trial's network F builds for its data, on the meta device (shapes only: no weights drawn,
    no memory): a grid point whose channels do not split into groups or attention heads, or whose levels the
    data's resolution cannot halve, is bad input (UserError naming the trial and its values) before anything is
    recorded, not a trial that fails when its turn comes. Each distinct `[data]` is opened once."""
    import torch

    from edmctl.data import open_dataset
    from edmctl.sweep.expand import axes_text
    from edmctl.train.objective import build_net

    sizes: dict[tuple, tuple[tuple[int, int, int], int]] = {}  # [data] -> (image shape, label_dim)
    for trial in trials:
        data = trial.recipe.data
        if (key := tuple(data.model_dump().values())) not in sizes:
            dataset = open_dataset(data.source, resolution=data.resolution, channels=data.channels,
                                   max_images=data.max_images, conditional=data.conditional)
            sizes[key] = dataset.shape, dataset.num_classes if data.conditional else 0
        try:
            with torch.device("meta"):
                build_net(trial.recipe, *sizes[key])
        except UserError as e:
            raise UserError(f"{where} trial {trial.index} ({axes_text(trial.axes) or 'base'}): {e}") from None


def run_kind(trial: str) -> str:
    """The registry kind of a trial's run: trials that train are training runs (`train`), the others their own kind."""
    return "train" if trial in ("train", "train+fid") else trial



def default_metric(trial: str, model_spec: str | None) -> str:
    """`fid` for fid and train+fid trials, `loss` for train trials; for sample trials `rms_median` on analytic
    models (`ideal:...`), else `fd`."""
    if trial == "sample":
        return "rms_median" if (model_spec or "").startswith("ideal:") else "fd"
    return "loss" if trial == "train" else "fid"
