"""A sweep's results from the registry: rows sorted by the sweep metric, and a plot (metric against each swept
axis; a heat map when exactly two axes vary)."""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edmctl.paths import save_figure


@dataclass
class Row:
    run_id: int
    label: str
    axes: dict[str, Any]
    status: str
    value: float | None  # the sweep metric
    nfe: float | None
    seconds: float | None
    error: str | None
    slurm_job: str | None = None  # `<array>_<task>` of the Slurm task that ran it (`--executor slurm`)

    def as_dict(self) -> dict[str, Any]:
        return {"run": f"run{self.run_id}", "label": self.label, "axes": self.axes, "status": self.status,
                "value": self.value, "nfe": self.nfe, "seconds": self.seconds, "error": self.error,
                "slurm_job": self.slurm_job}


@dataclass
class SweepResults:
    sweep_id: int
    name: str | None
    status: str
    metric: str
    direction: str
    axes: list[str]
    rows: list[Row]
    files: list[Path]  # what the sweep and its trials wrote: the plot, the trials' snapshots

    def as_dict(self) -> dict[str, Any]:
        return {"sweep": f"run{self.sweep_id}", "name": self.name, "status": self.status, "metric": self.metric,
                "direction": self.direction, "axes": self.axes, "trials": [r.as_dict() for r in self.rows],
                "files": [str(f) for f in self.files]}

    def varying_axes(self) -> list[str]:
        """Swept fields that take more than one value among the finished trials."""
        done = [r for r in self.rows if r.value is not None]
        return [a for a in self.axes if len({repr(r.axes.get(a)) for r in done}) > 1]


def sort_key(direction: str):
    """Best first for `min` or `max`; trials without a value last, in trial order."""
    sign = 1.0 if direction == "min" else -1.0
    return lambda row: (row.value is None, sign * row.value if row.value is not None else 0.0, row.run_id)


def sweep_results(sweep_ref, home=None) -> SweepResults:
    """Every trial of a sweep run with its status and metric, sorted best first."""
    from edmctl.errors import UserError
    from edmctl.registry import Registry

    registry = Registry(home)
    registry.reap()
    sweep = registry.get(sweep_ref, kind="sweep")
    if sweep.kind != "sweep":
        raise UserError(f"{sweep.label} is a {sweep.kind} run, not a sweep; `edmctl runs --kind sweep` lists the sweeps.")
    settings = sweep.extra.get("settings", {})
    metric, direction = settings.get("metric", "fid"), settings.get("direction", "min")
    rows = [Row(c.id, c.name or f"run{c.id}", c.extra.get("axes", {}), c.status, c.values.get(metric),
                c.values.get("nfe"), c.values.get("seconds"), c.error, c.extra.get("slurm_job"))
            for c in registry.child_rows(sweep.id, [metric, "nfe", "seconds"])]
    rows.sort(key=sort_key(direction))
    return SweepResults(sweep.id, sweep.name, sweep.status, metric, direction, sweep.extra.get("axes", []), rows,
                        registry.outputs(sweep.id))


def _numeric(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _log_scale(values: list) -> bool:
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and max(positive) / min(positive) >= 100


def _axis_plot(ax, results: SweepResults, axis: str) -> None:
    """Metric against one axis (log x when it spans two decades); categorical axes as evenly spaced labels."""
    done = [r for r in results.rows if r.value is not None]
    xs = [r.axes.get(axis) for r in done]
    if not _numeric(xs):
        labels = sorted({str(x) for x in xs})
        xs = [labels.index(str(x)) for x in xs]
        ax.set_xticks(range(len(labels)), labels)
    elif _log_scale(xs):
        ax.set_xscale("log")
    ax.scatter(xs, [r.value for r in done], s=16)
    ax.set_xlabel(axis)
    ax.set_ylabel(results.metric)


def _distinct(values: list) -> list:
    """The distinct values, in numeric order (or by their text when not all numbers)."""
    unique = list({repr(v): v for v in values}.values())
    return sorted(unique) if _numeric(unique) else sorted(unique, key=str)


def _heat_map(fig, ax, results: SweepResults, x_axis: str, y_axis: str) -> None:
    """The metric over two axes; cells with several trials show their best value."""
    done = [r for r in results.rows if r.value is not None]
    xs, ys = (_distinct([r.axes.get(axis) for r in done]) for axis in (x_axis, y_axis))
    grid = [[math.nan] * len(xs) for _ in ys]
    for row in reversed(done):  # best last, so it wins
        grid[ys.index(row.axes.get(y_axis))][xs.index(row.axes.get(x_axis))] = row.value
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis_r" if results.direction == "min" else "viridis")
    ax.set_xticks(range(len(xs)), [f"{x:.3g}" if isinstance(x, float) else str(x) for x in xs])
    ax.set_yticks(range(len(ys)), [f"{y:.3g}" if isinstance(y, float) else str(y) for y in ys])
    ax.set_xlabel(x_axis)
    ax.set_ylabel(y_axis)
    fig.colorbar(image, ax=ax, label=results.metric)


def plot_results(results: SweepResults, path: Path) -> Path | None:
    """PNG of the metric against each varying axis (a heat map for two); None when no trial has a value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = results.varying_axes()
    if not any(r.value is not None for r in results.rows) or not axes:
        return None
    if len(axes) == 2:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        _heat_map(fig, ax, results, axes[0], axes[1])
    else:
        fig, subplots = plt.subplots(1, len(axes), figsize=(4 * len(axes), 3.5), squeeze=False)
        for ax, axis in zip(subplots[0], axes):
            _axis_plot(ax, results, axis)
    fig.suptitle(f"sweep {results.name or ''} (run{results.sweep_id}): {results.metric}, {results.direction} is best")
    fig.tight_layout()
    return save_figure(fig, path)


def save_plot(sweep_run, home=None) -> Path | None:
    """Plot the sweep's results into its run folder and record it as a `plot` artifact."""
    path = plot_results(sweep_results(sweep_run.id, home), Path(sweep_run.dir) / "sweep.png")
    if path is not None:
        sweep_run.add_artifact(path, kind="plot")
    return path
