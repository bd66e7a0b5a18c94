"""`edmctl plot RUN... [--metric M]`: training curves from the registry (`edmctl.train.curves`); `edmctl runs
tensorboard RUN...`: the command that shows runs' TensorBoard event files (`edmctl.train.board`)."""

from pathlib import Path
from typing import Annotated

import typer

from edmctl.cli.common import JsonOpt, emit, out

PlotOutOpt = Annotated[Path | None, typer.Option("--out", help="PNG to write (default: curves.png in the (first) run's folder).")]


def write_curves(refs: list[str], out_path: Path | None, metric: str | None) -> Path:
    """Plot the runs' curves through the library and return the file written."""
    from edmctl.registry import Registry
    from edmctl.train.curves import plot_runs

    registry = Registry()
    registry.reap()
    return plot_runs(registry, refs, out_path, metric)


def plot(
    runs: Annotated[list[str], typer.Argument(metavar="RUN...", help="run12, 12 or latest; several runs share one plot.")],
    metric: Annotated[str | None, typer.Option("--metric", help="One logged metric (e.g. loss, loss_sigma0.1-1, images_per_s), one curve per run; default: one run's loss per σ bin, loss and images/s, or several runs' loss.")] = None,
    out_path: PlotOutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Curves of logged metrics against kimg; a resumed run continues its parent's curves."""
    path = write_curves(runs, out_path, metric)
    emit({"runs": runs, "metric": metric, "plot": str(path), "files": [str(path)]}, as_json, lambda: out.print(f"plot: {path}", highlight=False))


def tensorboard(
    runs: Annotated[list[str], typer.Argument(metavar="RUN...", help="Training runs trained with training.tensorboard = true.")],
    as_json: JsonOpt = False,
) -> None:
    """Print the `tensorboard --logdir_spec` command that shows these runs' event files, each named by its run."""
    from edmctl.registry import Registry
    from edmctl.train.board import tensorboard_command

    command, logdirs = tensorboard_command(Registry(), runs)
    emit({"command": command, "logdirs": logdirs}, as_json, lambda: out.print(command, highlight=False))


def register(app: typer.Typer) -> None:
    """Add the `plot` and `runs tensorboard` commands."""
    from edmctl.cli.runs import runs_app

    app.command("plot")(plot)
    runs_app.command("tensorboard")(tensorboard)
