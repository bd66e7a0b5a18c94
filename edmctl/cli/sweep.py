"""`edmctl sweep SWEEP.toml`: run every trial of a sweep file (resumably, in parallel, here or as a Slurm job
array); `edmctl sweep show SWEEP`; `edmctl sweep cancel SWEEP` (its Slurm job arrays).

`edmctl sweep FILE ...` is shorthand for `edmctl sweep run FILE ...`. Every trial is validated before anything is
recorded; the results are a table sorted by the sweep's metric and a plot saved with the sweep run.
"""

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Callable, Iterator

import typer
from typer.core import TyperGroup

from edmctl.cli.common import JsonOpt, emit, err, on_interrupt, out, print_files, styled, text_table
from edmctl.cli.slurm import AllowSqliteOpt, ExecutorOpt, PartitionOpt, SlurmOptionOpt, TimeOpt, executor_options
from edmctl.errors import CheckFailed

LimitOpt = Annotated[int, typer.Option("--limit", min=0, metavar="N",
                     help="Show the first N trials (best first); 0 shows all. --json lists every trial.")]
DEFAULT_LIMIT = 50
MaxTrialsOpt = Annotated[int | None, typer.Option("--max-trials", min=1, metavar="N",
                         help="Allow up to N trials (default cap: 10,000; a bigger sweep is refused before it is built).")]
STATUS_STYLE = {"done": "green", "running": "cyan", "queued": "blue", "failed": "red", "interrupted": "yellow"}


class _RunByDefault(TyperGroup):
    """A group whose unknown first word is a sweep file: `sweep FILE ...` runs `sweep run FILE ...`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_RunByDefault, help="Run a sweep file's trials (`edmctl sweep FILE`) or show a sweep's results.",
                  no_args_is_help=True, rich_markup_mode=None)


def _fmt(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def render_results(results, limit: int = DEFAULT_LIMIT, label: str = "wrote") -> None:
    """The first `limit` trials (0: all) best first as aligned lines (status coloured; the Slurm job of each
    trial a Slurm task ran), under a title line; then the files the sweep wrote (its plot, its trials'
    snapshots), each line starting with `label`."""
    axes, on_slurm = results.axes, any(row.slurm_job for row in results.rows)
    header = ["#", "run", *(axis.rsplit(".", 1)[-1] for axis in axes), results.metric, "nfe", "s",
              *(["slurm job"] if on_slurm else []), "status"]
    lines = [[str(rank), f"run{row.run_id}", *(_fmt(row.axes.get(a)) for a in axes), _fmt(row.value), _fmt(row.nfe),
              _fmt(row.seconds, 3), *([_fmt(row.slurm_job)] if on_slurm else []), row.status]
             for rank, row in enumerate(results.rows[:limit or None], 1)]
    out.print(f"sweep {results.name or ''} run{results.sweep_id} ({results.status}): {results.metric}, "
              f"{results.direction} is best", highlight=False, markup=False)
    status_column = len(header) - 1
    out.print(text_table(header, lines, right=[0, *range(2, status_column)],
                         style_of=lambda c, v: STATUS_STYLE.get(v) if c == status_column else None), highlight=False)
    _more(len(results.rows), len(lines))
    print_files(results.files, label)


def _more(total: int, shown: int) -> None:
    if shown < total:
        out.print(f"... and {total - shown} more trial(s); --limit 0 shows all, --json lists every one.", highlight=False)


def _print_failures(rows) -> None:
    for row in rows:
        err.print(styled("failed", "red"), f"run{row.run_id} {row.label}: {row.error}", highlight=False)


@app.command("run")
def run(
    sweep_file: Annotated[Path, typer.Argument(help="The sweep TOML (base recipe, trial kind, [grid]/[zip]/[random]).")],
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="Parallel worker processes (default: one per GPU, else 1).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the trials (each validated) and record nothing.")] = False,
    max_trials: MaxTrialsOpt = None,
    limit: LimitOpt = DEFAULT_LIMIT,
    executor: ExecutorOpt = "local",
    partition: PartitionOpt = None,
    gpus_per_trial: Annotated[int | None, typer.Option("--gpus-per-trial", min=0, help="Slurm: GPUs of each trial's task (default 0).")] = None,
    cpus_per_trial: Annotated[int | None, typer.Option("--cpus-per-trial", min=1, help="Slurm: CPUs of each trial's task, its torch threads (default 1).")] = None,
    time: TimeOpt = None,
    max_parallel: Annotated[int | None, typer.Option("--max-parallel", min=1, metavar="N", help="Slurm: at most N trials' tasks at once (default: all).")] = None,
    slurm_option: SlurmOptionOpt = None,
    allow_sqlite: AllowSqliteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Validate every trial, record them, run those not done yet; table sorted by the metric; exit 1 if any failed."""
    from edmctl.sweep import read_sweep, run_sweep, sweep_results
    from edmctl.sweep.executors import EXECUTORS
    from edmctl.sweep.expand import MAX_TRIALS, check_count, iter_trials
    from edmctl.sweep.runner import check_inputs

    given = executor_options(executor, {name: cls.OPTIONS for name, cls in EXECUTORS.items()}, {
        "jobs": jobs, "partition": partition, "gpus_per_trial": gpus_per_trial, "cpus_per_trial": cpus_per_trial,
        "time": time, "max_parallel": max_parallel, "slurm_option": tuple(slurm_option or ()), "allow_sqlite": allow_sqlite})
    runner = EXECUTORS[executor](**given)
    spec = read_sweep(sweep_file)
    cap = max_trials or MAX_TRIALS
    if dry_run:
        duplicates = []
        with validation_progress(check_count(spec, cap)) as progress:
            trials = list(iter_trials(spec, cap, progress, duplicates.append))
        check_inputs(spec, trials)  # what a run checks before recording anything
        rows = [{"index": t.index, "axes": t.axes, "recipe_hash": t.recipe.hash()} for t in trials]
        doc = {"sweep": str(sweep_file), "trial": spec.trial, "metric": spec.metric, "count": len(rows), "trials": rows,
               "duplicates": [{"axes": d.axes, "same_as": d.kept.index} for d in duplicates]}
        emit(doc, as_json, lambda: _render_dry_run(spec, rows, limit))
        _report_duplicates(duplicates)
        return

    def progress(outcome) -> None:
        word = styled("done", "green") if outcome.status == "done" else styled("failed", "red")
        detail = () if outcome.status == "done" else (str(outcome.error),)
        err.print(f"run{outcome.trial_id}:", word, *detail, highlight=False)

    with on_interrupt(lambda: kept_by_sweep(sweep_file, cap)), validation_progress(check_count(spec, cap)) as validated:
        outcome = run_sweep(spec, on_outcome=progress, max_trials=cap, on_progress=validated, executor=runner)
    _report_duplicates(outcome.plan.duplicates)
    skipped = len(outcome.plan.skipped["done"])
    if skipped:
        err.print(f"resumed: {skipped} finished trial(s) skipped", highlight=False)
    if outcome.plan.skipped["running"]:
        err.print(f"{len(outcome.plan.skipped['running'])} trial(s) are running in another process; not started here")
    results = sweep_results(outcome.plan.sweep_id)
    emit(results.as_dict(), as_json, lambda: render_results(results, limit))
    failed = [r for r in results.rows if r.status in ("failed", "interrupted")]
    if failed:
        _print_failures(failed)
        raise CheckFailed(f"{len(failed)} of {len(results.rows)} trials failed; run the same sweep again to rerun them.")


def _report_duplicates(duplicates) -> None:
    """How many assignments were not run because an earlier trial samples exactly like them, with an example."""
    if duplicates:
        err.print(f"{len(duplicates)} duplicate trial(s) skipped: each samples exactly like an earlier one "
                  f"(e.g. {duplicates[0].text})", highlight=False, markup=False)


def kept_by_sweep(sweep_file: Path, max_trials: int) -> tuple[str, None]:
    """What an interrupted sweep kept: its finished trials; the same command runs the rest (`on_interrupt`)."""
    from edmctl.errors import UserError
    from edmctl.sweep import sweep_results

    try:
        results = sweep_results(_sweep_ref(str(sweep_file), max_trials))
    except UserError:
        return "no trial was recorded yet", None
    done = sum(row.status == "done" for row in results.rows)
    return (f"{done} of {len(results.rows)} trials of run{results.sweep_id} finished and are kept; the same command "
            "skips them and runs the rest"), None


PROGRESS_FROM = 500  # sweeps with at least this many trials show a progress bar while they are validated


@contextmanager
def validation_progress(total: int) -> Iterator[Callable[[int, int], None]]:
    """`on_progress(done, total)` for expanding a sweep: a bar on stderr for big sweeps, else nothing."""
    if total < PROGRESS_FROM:
        yield lambda done, total: None
        return
    from edmctl.cli.common import progress_bar

    with progress_bar("validating trials", total, rate=lambda speed: f"{speed:.0f} trials/s") as bar:
        yield lambda done, total: bar.update(completed=done) if done % 100 == 0 or done == total else None


def _render_dry_run(spec, rows, limit: int) -> None:
    """The first `limit` trials (0: all) as aligned lines under a title line."""
    header = ["#", *spec.axes(), "recipe hash"]
    lines = [[str(r["index"]), *(_fmt(r["axes"].get(a)) for a in spec.axes()), r["recipe_hash"][:12]]
             for r in rows[:limit or None]]
    out.print(f"{spec.path}: {len(rows)} {spec.trial} trials, metric {spec.metric}", highlight=False, markup=False)
    out.print(text_table(header, lines, right=range(len(header) - 1)), highlight=False)
    _more(len(rows), len(lines))


@app.command("show")
def show(
    sweep: Annotated[str, typer.Argument(help="A sweep run (run12, 12, latest) or the sweep file it ran.")],
    max_trials: MaxTrialsOpt = None,
    limit: LimitOpt = DEFAULT_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """A sweep's trials sorted by its metric, with each one's status, and where its plot is."""
    from edmctl.sweep import sweep_results

    results = sweep_results(_sweep_ref(sweep, max_trials))
    emit(results.as_dict(), as_json, lambda: render_results(results, limit, label="file"))


@app.command("cancel")
def cancel(sweep: Annotated[str, typer.Argument(help="A sweep run (run12, 12, latest) run with --executor slurm.")]) -> None:
    """Cancel the sweep's Slurm job arrays still queued or running; their running trials end interrupted."""
    from edmctl.sweep.executors import cancel_sweep

    sweep_id, cancelled = cancel_sweep(sweep)
    if cancelled:
        err.print(f"run{sweep_id}: cancelled Slurm job array {', '.join(cancelled)}", highlight=False)
    else:
        err.print(f"run{sweep_id}: no Slurm job array of it is queued or running; nothing to cancel", highlight=False)


def _sweep_ref(sweep: str, max_trials: int | None) -> str | int:
    """A run reference as given, or the sweep run recorded for a sweep file."""
    if not sweep.endswith(".toml"):
        return sweep
    from edmctl.errors import UserError
    from edmctl.registry import Registry
    from edmctl.sweep import plan_sweep, read_sweep
    from edmctl.sweep.expand import MAX_TRIALS
    from edmctl.sweep.runner import find_sweep
    from edmctl.sweep.spec import sweep_hash

    spec = read_sweep(sweep)
    found = find_sweep(Registry(), sweep_hash(spec, [t.recipe.hash() for t in plan_sweep(spec, max_trials or MAX_TRIALS)]))
    if found is None:
        raise UserError(f"{sweep} has not been run yet (no sweep run records it); run `edmctl sweep {sweep}`.")
    return found.id


def register(root: typer.Typer) -> None:
    """Add the `sweep` group."""
    root.add_typer(app, name="sweep")
