"""One training session end to end: check every input, build the trainer, (resume it,) record the run in the
registry and write snapshots — rank 0 alone touches the registry and the files.

Resuming (`edmctl train --resume RUN`) opens a *new* training run whose parent is RUN, starts from the newest
snapshot in RUN (or its parents) and continues with RUN's recipe (plus any `--set`, e.g. a longer
`training.duration_kimg`); its snapshots go to the new run's folder.
"""

import sys
from dataclasses import dataclass
from typing import Callable

from edmctl.data import check_sigma_data, measure_std, open_dataset
from edmctl.errors import UserError
from edmctl.recipe.schema import fid_series_warning
from edmctl.train.checkpoint import latest_snapshot, load_snapshot
from edmctl.train.distributed import Dist
from edmctl.train.loop import Hooks, Trainer, run_training, time_per_kimg
from edmctl.train.record import FidShare, Recorder, check_watching

IN_MEMORY_BYTES = 2 << 30  # datasets up to 2 GiB are read into memory once


@dataclass
class Outcome:
    """What a finished session reports."""

    run: int | None
    nimg: int
    parameters: int
    metrics: dict
    snapshot: str | None


def open_training_data(recipe):
    """The recipe's dataset (in memory when small) and a warning when its std is far from precond.sigma_data."""
    data = recipe.data
    dataset = open_dataset(data.source, resolution=data.resolution, channels=data.channels,
                           max_images=data.max_images, conditional=data.conditional)
    if len(dataset) == 0:
        raise UserError(f"data.source {data.source} holds no images; give a dataset with at least one.")
    if dataset.nbytes <= IN_MEMORY_BYTES:
        dataset = dataset.load_all()
    return dataset, check_sigma_data(measure_std(dataset), recipe.precond.sigma_data)


def resume_point(ref: str) -> tuple[object, dict]:
    """The run to resume (its registry record) and its newest snapshot."""
    from edmctl.registry import Registry

    registry = Registry()
    if not registry.exists:
        raise UserError(f"cannot resume {ref}: there is no registry at {registry.home}.")
    record = registry.get(ref, kind="train")
    path, sha256 = latest_snapshot(registry, record)
    return record, load_snapshot(path, sha256)


def prepare(recipe, dist: Dist, snapshot: dict | None = None, warn: Callable[[str], None] = print) -> Trainer:
    """Check what the recipe watches, open the data, build the trainer and restore `snapshot`, then warn about
    σ_data and a dear FID series (after every check, so that bad input is its error alone); nothing is written."""
    dataset, warning = open_training_data(recipe)
    check_watching(recipe, dataset.shape)
    trainer = Trainer(recipe, dataset, dist)
    if snapshot is not None:
        trainer.restore(snapshot)
        if trainer.done:
            raise UserError(f"the run already trained {trainer.nimg / 1000:g} kimg of training.duration_kimg = "
                            f"{recipe.training.duration_kimg:g}; raise it with --set training.duration_kimg=...")
    warnings = [text.rstrip(".") for text in (warning, fid_series_warning(recipe)) if text]
    if warnings and dist.is_main:
        warn("; ".join(warnings) + ".")
    return trainer


def dry_run(recipe, dist: Dist, warn: Callable[[str], None] = print) -> dict:
    """The resolved recipe, the parameter count and a measured time per kimg; writes nothing."""
    trainer = prepare(recipe, dist, warn=warn)
    return {"recipe": recipe.canonical(), "recipe_hash": recipe.hash(), "parameters": trainer.parameter_count,
            "device": str(dist.device), "world_size": dist.world_size, "batch_gpu": trainer.batch_gpu,
            "accumulation_rounds": trainer.rounds, "seconds_per_kimg": time_per_kimg(trainer),
            "duration_kimg": recipe.training.duration_kimg}


def train(recipe, dist: Dist, argv: list[str] | None = None, resume: str | None = None,
          progress: Callable[[int, float], None] | None = None, warn: Callable[[str], None] = print) -> Outcome:
    """Train `recipe` (continuing training run `resume`) and record it as a `train` run on rank 0."""
    parent, snapshot = resume_point(resume) if resume is not None else (None, None)
    trainer = prepare(recipe, dist, snapshot, warn)
    if not dist.is_main:
        run_training(trainer, FidShare(trainer) if recipe.eval.every_kimg > 0 else Hooks())
        return Outcome(None, trainer.nimg, trainer.parameter_count, {}, None)
    from edmctl.registry import open_run

    with open_run(kind="train", recipe=recipe.canonical(), recipe_hash=recipe.hash(), seeds=[recipe.training.seed],
                  argv=sys.argv if argv is None else argv, parent=parent.id if parent else None) as run:
        run.update(world_size=dist.world_size, devices=[str(dist.device)], parameters=trainer.parameter_count,
                   resumed_from_nimg=trainer.nimg)
        with Recorder(run, trainer) as recorder:
            run_training(trainer, recorder, progress=progress)
        run.update(nimg=trainer.nimg)
        return Outcome(run.id, trainer.nimg, trainer.parameter_count, recorder.metrics, recorder.last)
