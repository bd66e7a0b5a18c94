"""`edmctl sweep SWEEP.toml`: run every trial of a sweep file (resumably, in parallel); `edmctl sweep show SWEEP`.

`edmctl sweep FILE ...` is shorthand for `edmctl sweep run FILE ...`. Every trial is validated before anything is
recorded; the results are a table sorted by the sweep's metric and a plot saved with the sweep run.
"""

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from edmctl.cli.common import JsonOpt, emit, err, out, styled
from edmctl.errors import CheckFailed

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


def render_results(results) -> None:
    """The trials as a rich table, best first, then where the plot is."""
    from rich.table import Table

    axes = results.axes
    table = Table(title=f"sweep {results.name or ''} run{results.sweep_id} ({results.status}): "
                        f"{results.metric}, {results.direction} is best", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("run")
    for axis in axes:
        table.add_column(axis.rsplit(".", 1)[-1], justify="right")
    for name in (results.metric, "nfe", "s", "status"):
        table.add_column(name, justify="right" if name != "status" else "left")
    for rank, row in enumerate(results.rows, 1):
        style = STATUS_STYLE.get(row.status, "")
        table.add_row(str(rank), f"run{row.run_id}", *(_fmt(row.axes.get(a)) for a in axes), _fmt(row.value),
                      _fmt(row.nfe), _fmt(row.seconds, 3), styled(row.status, style))
    out.print(table)


def _print_failures(rows) -> None:
    for row in rows:
        err.print(styled("failed", "red"), f"run{row.run_id} {row.label}: {row.error}", highlight=False)


@app.command("run")
def run(
    sweep_file: Annotated[Path, typer.Argument(help="The sweep TOML (base recipe, trial kind, [grid]/[zip]/[random]).")],
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="Parallel worker processes (default: one per GPU, else 1).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the trials (each validated) and record nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Validate every trial, record them, run those not done yet; table sorted by the metric; exit 1 if any failed."""
    from edmctl.sweep import plan_sweep, read_sweep, run_sweep, sweep_results

    spec = read_sweep(sweep_file)
    if dry_run:
        trials = plan_sweep(spec)
        doc = {"sweep": str(sweep_file), "trial": spec.trial, "metric": spec.metric, "count": len(trials),
               "trials": [{"index": t.index, "axes": t.axes, "recipe_hash": t.recipe.hash()} for t in trials]}
        emit(doc, as_json, lambda: _render_dry_run(spec, trials))
        return

    def progress(outcome) -> None:
        word = styled("done", "green") if outcome.status == "done" else styled("failed", "red")
        detail = () if outcome.status == "done" else (str(outcome.error),)
        err.print(f"run{outcome.trial_id}:", word, *detail, highlight=False)

    outcome = run_sweep(spec, jobs=jobs, on_outcome=progress)
    skipped = len(outcome.plan.skipped["done"])
    if skipped:
        err.print(f"resumed: {skipped} finished trial(s) skipped", highlight=False)
    if outcome.plan.skipped["running"]:
        err.print(f"{len(outcome.plan.skipped['running'])} trial(s) are running in another process; not started here")
    results = sweep_results(outcome.plan.sweep_id)
    emit(results.as_dict(), as_json, lambda: render_results(results))
    failed = [r for r in results.rows if r.status in ("failed", "interrupted")]
    if failed:
        _print_failures(failed)
        raise CheckFailed(f"{len(failed)} of {len(results.rows)} trials failed; run the same sweep again to rerun them.")


def _render_dry_run(spec, trials) -> None:
    from rich.table import Table

    table = Table(title=f"{spec.path}: {len(trials)} {spec.trial} trials, metric {spec.metric}", title_justify="left")
    table.add_column("#", justify="right")
    for axis in spec.axes():
        table.add_column(axis, justify="right")
    table.add_column("recipe hash")
    for trial in trials:
        table.add_row(str(trial.index), *(_fmt(trial.axes.get(a)) for a in spec.axes()), trial.recipe.hash()[:12])
    out.print(table)


@app.command("show")
def show(
    sweep: Annotated[str, typer.Argument(help="A sweep run (run12, 12, latest) or the sweep file it ran.")],
    as_json: JsonOpt = False,
) -> None:
    """A sweep's trials sorted by its metric, with each one's status, and where its plot is."""
    from edmctl.sweep import sweep_results

    results = sweep_results(_sweep_ref(sweep))
    emit(results.as_dict(), as_json, lambda: render_results(results))


def _sweep_ref(sweep: str) -> str | int:
    """A run reference as given, or the sweep run recorded for a sweep file."""
    if not sweep.endswith(".toml"):
        return sweep
    from edmctl.errors import UserError
    from edmctl.registry import Registry
    from edmctl.sweep import plan_sweep, read_sweep
    from edmctl.sweep.runner import find_sweep
    from edmctl.sweep.spec import sweep_hash

    spec = read_sweep(sweep)
    found = find_sweep(Registry(), sweep_hash(spec, [t.recipe.hash() for t in plan_sweep(spec)]))
    if found is None:
        raise UserError(f"{sweep} has not been run yet (no sweep run records it); run `edmctl sweep {sweep}`.")
    return found.id


def register(root: typer.Typer) -> None:
    """Add the `sweep` group."""
    root.add_typer(app, name="sweep")
