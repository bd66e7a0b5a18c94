"""Training curves from the registry: every logged series of a run against kimg, plotted.

A run's series (`series`) continues its parents' when it resumed one (`edmctl train --resume`): the parent's
points up to the image count the run started from, then the run's own, so a resumed run plots as one curve
with no point twice and none dropped. `plot_runs` draws one run's loss per σ bin (log y), total loss and
learning rate, EMA β and images/s, or one metric for several runs with the recipe fields that differ between them in the legend (what
`edmctl compare` shows).
"""

from pathlib import Path

from edmctl.errors import UserError
from edmctl.paths import save_figure

SINGLE_RUN_PANELS = ("loss", "lr", "ema_beta", "images_per_s")  # beside the per-σ-bin losses: one run, no --metric


def series(registry, record, key: str) -> list[tuple[int, float]]:
    """(step, value) of metric `key`, continued from the parent run a training run resumed (steps are images)."""
    own = [(p.step, p.value) for p in registry.history(record.id, key) if p.step is not None and p.value is not None]
    start = record.extra.get("resumed_from_nimg")
    if record.kind != "train" or not start or record.parent_id is None:
        return own
    before = [(step, value) for step, value in series(registry, registry.get(record.parent_id), key) if step <= start]
    return before + [(step, value) for step, value in own if step > start]


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
    fig.tight_layout()
    name = "curves.png" if len(records) == 1 else f"curves-{'-'.join(r.label for r in records)}.png"
    return save_figure(fig, Path(path) if path else registry.run_dir(records[0].id) / name)
