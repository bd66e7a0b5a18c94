"""`edmctl train RECIPE`: train the recipe's network on its data, recorded as a `train` run with metrics per tick
and snapshots; `--resume RUN` continues a run, `--dry-run` measures without writing, `--nproc N` runs N
processes under torchrun (DDP), `--executor slurm --nodes N` runs torchrun on N nodes of one Slurm job."""

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Callable, Iterator

import typer

from edmctl.cli.common import (JsonOpt, SetOpt, emit, err, on_interrupt, out, print_error, print_files, progress_bar,
                               run_outputs)
from edmctl.cli.slurm import AllowSqliteOpt, ExecutorOpt, PartitionOpt, SlurmOptionOpt, TimeOpt, executor_options
from edmctl.errors import UserError


def _warn(message: str) -> None:
    print_error(message, label="warning:", style="yellow")


@contextmanager
def _progress(total_kimg: float, enabled: bool) -> Iterator[Callable[[int, float], None] | None]:
    """A rich bar on stderr: kimg done of total, the last tick's loss, images/s and ETA."""
    if not enabled:
        yield None
        return
    with progress_bar("training", total_kimg, count="{task.completed:.1f}/{task.total:g} kimg",
                      extra=["loss {task.fields[loss]}"], rate=lambda speed: f"{speed * 1000:.0f} img/s", loss="-") as bar:
        yield lambda nimg, loss: bar.update(completed=nimg / 1000, loss="-" if loss != loss else f"{loss:.4f}")


def kept_by_training(world_size: int) -> tuple[str, str | None]:
    """What an interrupted training kept — the newest snapshot of the run this process recorded — and the command
    that continues from it (`on_interrupt`)."""
    import socket

    from edmctl.registry import Registry
    from edmctl.train.checkpoint import latest_snapshot

    registry = Registry()
    mine = registry.list(kind="train", where={"pid": os.getpid(), "host": socket.gethostname()}, limit=1)
    if not mine:
        return "no run was recorded yet", None
    try:
        path, _ = latest_snapshot(registry, mine[0])
    except UserError:
        return f"{mine[0].label} stopped before its first snapshot (training.snapshot_kimg), nothing to continue from", None
    nproc = f" --nproc {world_size}" if world_size > 1 else ""
    return f"{mine[0].label} kept its snapshot {path}", f"edmctl train --resume {mine[0].label}{nproc}"


def _resolve_recipe(recipe_path: Path | None, overrides: list[str], resume: str | None):
    """The recipe file with `--set`, or with `--resume` the run's own recipe with `--set`."""
    if resume is not None:
        if recipe_path is not None:
            raise UserError("give either RECIPE or --resume RUN (a resumed run keeps its own recipe; change it with --set).")
        from edmctl.train.model import training_recipe

        return training_recipe(resume, overrides)
    if recipe_path is None:
        raise UserError("give a RECIPE file (e.g. recipes/digits.toml) or --resume RUN.")
    from edmctl.recipe import load_recipe

    return load_recipe(recipe_path, overrides=overrides)


def _relaunch_args(recipe_path, overrides, resume, dry_run, as_json) -> list[str]:
    args = [str(recipe_path.resolve())] if recipe_path is not None else []
    for item in overrides:
        args += ["--set", item]
    args += ["--resume", resume] if resume is not None else []
    return args + (["--dry-run"] if dry_run else []) + (["--json"] if as_json else [])


def train(
    recipe_path: Annotated[Path | None, typer.Argument(metavar="RECIPE", help="Recipe TOML (e.g. recipes/digits.toml).")] = None,
    overrides: SetOpt = None,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue training run RUN from its newest snapshot, as a new run with RUN as parent.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resolved recipe, parameter count and measured time per kimg; write nothing.")] = False,
    nproc: Annotated[int | None, typer.Option("--nproc", help="Processes on this machine (DDP under torchrun: NCCL on GPUs, gloo on CPU; default 1).")] = None,
    executor: ExecutorOpt = "local",
    nodes: Annotated[int | None, typer.Option("--nodes", min=1, help="Slurm: nodes of the job, torchrun on each (default 1).")] = None,
    gpus_per_node: Annotated[int | None, typer.Option("--gpus-per-node", min=0, help="Slurm: GPUs per node, one process each (0: CPU processes, gloo).")] = None,
    procs_per_node: Annotated[int | None, typer.Option("--procs-per-node", min=1, help="Slurm: processes per node (default: one per GPU; 2 without GPUs).")] = None,
    partition: PartitionOpt = None,
    time: TimeOpt = None,
    slurm_option: SlurmOptionOpt = None,
    allow_sqlite: AllowSqliteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a recipe; print the run, images trained, final loss and the last snapshot."""
    from edmctl.allocator import apply_to_children
    from edmctl.train.distributed import init_distributed, shutdown, torchrun_command
    from edmctl.train.session import dry_run as measure
    from edmctl.train.session import train as run_train
    from edmctl.train.slurm import SlurmTraining

    given = executor_options(executor, {"local": ("nproc",), "slurm": SlurmTraining.OPTIONS}, {
        "nproc": nproc, "nodes": nodes, "gpus_per_node": gpus_per_node, "procs_per_node": procs_per_node,
        "partition": partition, "time": time, "slurm_option": tuple(slurm_option or ()), "allow_sqlite": allow_sqlite})
    overrides = list(overrides or [])
    recipe = _resolve_recipe(recipe_path, overrides, resume)
    if executor == "slurm":
        doc = SlurmTraining(**given).run(_relaunch_args(recipe_path, overrides, resume, dry_run, False), on_submit=_submitted)
        return _print_outcome(doc, dry_run, as_json)
    nproc = given.get("nproc", 1)
    if nproc < 1:
        raise UserError(f"--nproc must be at least 1, got {nproc}.")
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        command = torchrun_command(nproc, _relaunch_args(recipe_path, overrides, resume, dry_run, as_json))
        apply_to_children()  # torchrun and its workers start with edmctl's malloc settings
        raise typer.Exit(subprocess.run(command).returncode)
    dist = init_distributed()
    try:
        if dry_run:
            doc = measure(recipe, dist, warn=_warn)
            if dist.is_main:
                _print_outcome(doc, dry_run, as_json)
            return
        with on_interrupt(lambda: kept_by_training(dist.world_size)), \
                _progress(recipe.training.duration_kimg, dist.is_main and not as_json) as progress:
            outcome = run_train(recipe, dist, resume=resume, progress=progress, warn=_warn)
    finally:
        shutdown(dist)
    if dist.is_main:
        files = run_outputs(outcome.run)  # the snapshots and sample grids
        _print_outcome({"run": outcome.run, "kimg": outcome.nimg / 1000, "parameters": outcome.parameters,
                        "metrics": outcome.metrics, "snapshot": outcome.snapshot, "files": [str(f) for f in files]},
                       dry_run, as_json)


def _print_outcome(doc: dict, dry_run: bool, as_json: bool) -> None:
    """A training's outcome (or a dry run's measurements), here or from rank 0 of a Slurm job."""
    if dry_run:
        return emit(doc, as_json, lambda: _print_dry_run(doc))
    emit(doc, as_json, lambda: (out.print(
        f"run{doc['run']}: {doc['kimg']:g} kimg, loss {doc['metrics'].get('loss', float('nan')):.4f}, "
        f"{doc['parameters']:,} parameters -> {doc['snapshot']}", highlight=False), print_files(doc["files"])))


def _submitted(job) -> None:
    err.print(f"submitted Slurm job {job.job_id}; waiting for it to end (Ctrl-C cancels it); log: {job.paths.stderr}",
              highlight=False)


def _print_dry_run(doc: dict) -> None:
    """The resolved recipe as a loadable TOML file, the measurement in its comments."""
    from edmctl.recipe.write import recipe_toml

    minutes = doc["seconds_per_kimg"] * doc["duration_kimg"] / 60
    print(recipe_toml(doc["recipe"], [
        f"edmctl train --dry-run: the resolved recipe, sha256 {doc['recipe_hash']}",
        f"{doc['parameters']:,} parameters on {doc['device']} x{doc['world_size']}; {doc['seconds_per_kimg']:.2f} s/kimg "
        f"measured, about {minutes:.1f} min for {doc['duration_kimg']:g} kimg"]), end="")


def register(app: typer.Typer) -> None:
    """Add the `train` command."""
    app.command("train")(train)
