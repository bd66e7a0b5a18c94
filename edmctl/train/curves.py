"""Training curves from the registry: every logged series of a run against kimg, plotted.

A run's series (`series`, and its sample grids, `grids`) continue its parents' when it resumed one (`edmctl
train --resume`): the parent's points up to the image count the run started from, then the run's own, so a
resumed run plots as one curve with no point twice and none dropped. `plot_runs` draws one run's loss per σ
bin (log y), total loss, learning rate, EMA β, images/s and FID (`eval.every_kimg`), or one metric for several
runs with the recipe fields that differ between them in the legend (what `edmctl compare` shows).
"""

import warnings
from pathlib import Path
from typing import Callable, TypeVar

from edmctl.errors import UserError
from edmctl.paths import check_figure, save_figure

SINGLE_RUN_PANELS = ("loss", "lr", "ema_beta", "images_per_s", "fid")  # beside the per-σ-bin losses: one run, no --metric
T = TypeVar("T")


def continued(registry, record, own: Callable[[object], list[tuple[int, T]]]) -> list[tuple[int, T]]:
    """`own(run)`'s (step, value) points of `record`, after those of the training run it resumed up to the image
    count it resumed from (and so on up its parents); steps are images trained on."""
    points = own(record)
    start = record.extra.get("resumed_from_nimg")
    if record.kind != "train" or not start or record.parent_id is None:
        return points
    before = [point for point in continued(registry, registry.get(record.parent_id), own) if point[0] <= start]
    return before + [point for point in points if point[0] > start]


def series(registry, record, key: str) -> list[tuple[int, float]]:
    """(step, value) of metric `key`, continued from the parent run a training run resumed."""
    return continued(registry, record, lambda run: [(p.step, p.value) for p in registry.history(run.id, key)
                                                    if p.step is not None and p.value is not None])


def grids(registry, record) -> list[tuple[int, Path]]:
    """(step, path) of the sample grids written during training (`training.grid_kimg`), continued likewise."""
    return continued(registry, record, lambda run: sorted((a.step, registry.artifact_path(a))
                                                          for a in registry.artifacts(run.id) if a.kind == "grid"))


def logged_keys(registry, record) -> list[str]:
    """Every metric logged by the run or the training runs it continues, sorted."""
    keys, current = set(), record
    while current is not None:
        keys |= set(registry.metrics(current.id))
        resumed = current.kind == "train" and current.parent_id is not None and current.extra.get("resumed_from_nimg")
        current = registry.get(current.parent_id) if resumed else None
    return sorted(keys)


def differing_fields(records) -> list[str]:
    """The recipe fields whose values differ between the runs (none for one run)."""
    from edmctl.registry.compare import flatten

    flat = [flatten(r.recipe or {}) for r in records]
    names = sorted(set().union(*flat))
    return [n for n in names if any(f.get(n) != flat[0].get(n) for f in flat[1:])]


def legend(record, fields: list[str]) -> str:
    from edmctl.registry.compare import flatten

    flat = flatten(record.recipe or {})
    return ", ".join([record.label, *(f"{name}={flat.get(name)}" for name in fields)])


def _panel(ax, registry, records, key: str, log_y: bool) -> bool:
    """One metric, one line per run; False when no run logged it."""
    fields, drawn = differing_fields(records), False
    for record in records:
        points = series(registry, record, key)
        if points:
            ax.plot([s / 1000 for s, _ in points], [v for _, v in points], marker=".", label=legend(record, fields))
            drawn = True
    ax.set(xlabel="kimg", ylabel=key, title=key)
    if not drawn:
        ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="grey")
    if log_y and drawn:
        ax.set_yscale("log")
    if drawn and len(records) > 1:
        ax.legend(fontsize=7)
    return drawn


def _sigma_bins_panel(ax, registry, record) -> bool:
    """The loss of every σ bin (`loss_sigma…`) of one run against kimg, log y."""
    from edmctl.train.stats import bin_names

    drawn = False
    for key in bin_names():
        points = series(registry, record, key)
        if points:
            ax.plot([s / 1000 for s, _ in points], [v for _, v in points], marker=".", label=key.removeprefix("loss_"))
            drawn = True
    ax.set(xlabel="kimg", ylabel="loss", title="loss per σ bin", yscale="log" if drawn else "linear")
    if drawn:
        ax.legend(fontsize=7)
    return drawn


def plot_runs(registry, refs: list[str], path: Path | None = None, metric: str | None = None) -> Path:
    """The curves of the runs `refs` (see the module docstring) into `path` (default: `curves.png`, or
    `curves-runA-runB.png` for several runs, in the first run's folder); UserError when nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if path is not None:
        check_figure(Path(path), "--out")
    if metric is not None and not metric.strip():
        raise UserError("--metric is empty; name a logged metric, e.g. loss (`edmctl show RUN` lists them).")
    records = [registry.get(ref, kind="train") for ref in refs]
    if metric is None and len(records) > 1:
        metric = "loss"
    rows, columns = (1, 1) if metric else (2, 3)
    fig, axes = plt.subplots(rows, columns, figsize=(7 * columns - 1 * (columns > 1), 4.5 * rows), squeeze=False)
    if metric:
        drawn = _panel(axes[0][0], registry, records, metric, log_y=metric.startswith("loss"))
    else:
        drawn = _sigma_bins_panel(axes.flat[0], registry, records[0])
        drawn |= any([_panel(ax, registry, records, key, log_y=key == "loss") for ax, key in zip(axes.flat[1:], SINGLE_RUN_PANELS)])
        for ax in axes.flat[1 + len(SINGLE_RUN_PANELS):]:
            ax.axis("off")
    if not drawn:
        plt.close(fig)
        shown = metric or "loss"
        raise UserError(f"{', '.join(r.label for r in records)} logged no {shown!r} values with a step; "
                        f"`edmctl show {records[0].label}` lists the metrics it has.")
    fig.suptitle(" vs ".join(r.label for r in records) + (f": {metric}" if metric else ""))
    with warnings.catch_warnings():  # many runs: a title or legend too big for any margin; the layout is the best one
        warnings.filterwarnings("ignore", "Tight layout not applied", UserWarning)
        fig.tight_layout()
    name = "curves.png" if len(records) == 1 else f"curves-{'-'.join(r.label for r in records)}.png"
    return save_figure(fig, Path(path) if path else registry.run_dir(records[0].id) / name)
