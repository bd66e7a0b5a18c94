"""`edmctl ablate`: the paper's ladders, each recorded as an `ablate` run with a table and a plot — `sampler`
(Figure 2, for any model) and `training` (Table 2, configs A..F trained at one budget).
"""

import sys
from pathlib import Path
from typing import Annotated

import typer

from edmctl.cli.common import JsonOpt, SetOpt, emit, err, out, print_files, run_outputs
from edmctl.cli.tables import print_table
from edmctl.errors import UserError

app = typer.Typer(help="The paper's ablation ladders: the sampler ladder of Figure 2, the training ladder of Table 2.",
                  no_args_is_help=True,
                  rich_markup_mode=None)


def _family_of(spec: str, family: str | None, overrides: list[str]) -> tuple[str, object | None]:
    """The family (`--family`, else the training or import run's precond kind, else vp) and, for a run, its
    recipe with `--set` overrides applied (e.g. its `[eval]` detector and reference)."""
    from edmctl.sweep.ablation import FAMILIES

    if not spec.startswith("run:"):
        if overrides:
            raise UserError(f"--set applies to a training or import run's recipe; {spec} is an analytic model.")
        return family or "vp", None
    from edmctl.train.model import training_recipe

    recipe = training_recipe(spec.removeprefix("run:"), overrides)
    own = recipe.precond.kind if recipe.precond.kind in FAMILIES else "vp"
    return family or own, recipe


def _check_device(device: str) -> None:
    """A torch device name this machine has (cpu, cuda, cuda:1, ...)."""
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise UserError(f"--device {device!r} is not a torch device; use cpu or cuda.") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device} was asked for but torch sees no CUDA device here; use --device cpu.")


def render_ladder(result) -> None:
    """One row per curve: its knee (on the knee metric) and every measure there; then the paper's order."""
    from rich.table import Table

    table = Table(title=f"{result.model}: {result.family} sampler ladder (knee = lowest NFE within 3% of the best "
                        f"{result.metric}; every measure at the knee)", title_justify="left")
    table.add_column("curve", overflow="fold")
    for name in ("knee NFE", *result.measures):
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    for curve in result.curves:
        knee = curve.knee()
        cells = ("-",) * (len(result.measures) + 1) if knee is None else (
            str(knee.nfe), *(f"{knee.values[m]:.3g}" for m in result.measures))
        table.add_row(curve.label, *cells)
    print_table(table)
    out.print(paper_order_line(result), highlight=False)


def paper_order_line(result) -> str:
    """`paper's order (...) holds at NFE: rms_median 23–127, flips 47–127`, one entry per measure."""
    from edmctl.sweep.ablation import paper_order_text

    rungs = " ≥ ".join(c.label for c in result.rungs())
    return (f"paper's order ({rungs}, at equal NFE) holds at NFE: "
            + "; ".join(f"{m} {paper_order_text(result, m)}" for m in result.measures))


@app.command("sampler")
def sampler(
    model: Annotated[str | None, typer.Option("--model", help="ideal:digits?std=0.2, ideal:PATH.npz, run:ID (training or import run), or an NVlabs network PATH.pkl; default: the newest finished training or import run outside sweeps and ablations.")] = None,
    family: Annotated[str | None, typer.Option("--family", help="vp, ve or iddpm: whose original sampler starts the ladder (default: the run's precond kind, else vp).")] = None,
    nfe_max: Annotated[int, typer.Option("--nfe-max", min=2, help="Largest NFE of every curve.")] = 128,
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds of the initial noise, e.g. 0-63 (FID models: images per point).")] = "0-63",
    batch: Annotated[int, typer.Option("--batch", min=1, help="Images per batch.")] = 256,
    metric: Annotated[str | None, typer.Option("--metric", help="Measure the knee is taken on: rms_median (default), rms_p90, flips or fd_exact for analytic models; fd for trained ones.")] = None,
    overrides: SetOpt = None,
    device: Annotated[str, typer.Option("--device", help="torch device for a trained or imported network (cuda on a GPU); analytic models run on the CPU.")] = "cpu",
    as_json: JsonOpt = False,
) -> None:
    """Original sampler → + Heun & EDM steps → + σ(t)=t & s(t)=1, and every other solver, each over the step count."""
    from edmctl.cli.sample import resolve_model_spec
    from edmctl.errors import UserError
    from edmctl.recipe.schema import STEPS_MAX
    from edmctl.registry import open_run
    from edmctl.sampling import parse_seeds
    from edmctl.sweep.ablation import choose_metric, ladder_measures, ladder_samplers, plot_ladder, sampler_ladder

    seed_list = parse_seeds(seeds)
    _check_device(device)
    if nfe_max > 2 * STEPS_MAX:
        raise UserError(f"--nfe-max {nfe_max} is more than {2 * STEPS_MAX} (sampler.steps is at most {STEPS_MAX}).")
    spec, parent = resolve_model_spec(model)
    family, recipe = _family_of(spec, family, list(overrides or []))
    ladder_samplers(family)  # bad input (family, model, seeds, metric) is refused before the run is opened
    choose_metric(ladder_measures(spec, seed_list, batch, recipe)[0], metric)

    def progress(label: str, nfe: int, values: dict) -> None:
        err.print(f"{label}: NFE {nfe}  " + "  ".join(f"{k} {v:.4g}" for k, v in values.items()), highlight=False)

    with open_run(kind="ablate", name=f"sampler ladder {family}", seeds=seed_list, argv=sys.argv, parent=parent,
                  recipe=recipe.canonical() if recipe else None, recipe_hash=recipe.hash() if recipe else None) as run:
        result = sampler_ladder(spec, family, nfe_max, seed_list, batch, recipe, progress, metric, device)
        for index, curve in enumerate(result.curves):
            for point in curve.points:
                run.log_metrics({f"curve{index}.{name}": value for name, value in point.values.items()}, step=point.nfe)
        run.add_artifact(plot_ladder(result, run.dir / "sampler_ladder.png"), kind="plot")
        run.update(ladder=result.as_dict(), model=spec)
        run_id = run.id

    files = run_outputs(run_id)
    emit({"run": f"run{run_id}", **result.as_dict(), "files": [str(f) for f in files]}, as_json,
         lambda: (render_ladder(result), print_files(files)))


def _changes(rung, family: str) -> str:
    """`training.lr=0.001, training.dropout=0.13`; config A: the ladder file laid over the base."""
    if rung.config == "A":
        return f"{family}-A's design fields over the base ({len(rung.changed)} differ)"
    return ", ".join(f"{key}={value}" for key, value in rung.changed.items())


def render_training_ladder(result) -> None:
    from rich.table import Table

    table = Table(title=f"{result.family} training ladder (EDM Table 2) at {result.budget_kimg:g} kimg on "
                        f"{result.base}; {result.metric}", title_justify="left")
    for name in ("config", "loss", result.metric, "run", "Table 2 row", "what changed", "held at base"):
        table.add_column(name, justify="right" if name in ("loss", result.metric) else "left")
    for rung in result.rungs:
        shown = "-" if rung.value is None else f"{rung.value:.4g}"
        table.add_row(rung.config, "-" if rung.loss is None else f"{rung.loss:.4g}",
                      shown if rung.status == "done" else f"{rung.status}: {rung.error}", f"run{rung.run_id}",
                      rung.title, _changes(rung, result.family), ", ".join(rung.held) or "-")
    print_table(table)  # the measures first: a narrow terminal leaves out the descriptions on the right


def print_rung(rung) -> None:
    """`config B (...): done  loss 0.4361  3.142` on stderr: numbers to 4 significant digits, "-" when missing."""
    loss, value = ("-" if v is None else f"{v:.4g}" for v in (rung.loss, rung.value))
    err.print(f"config {rung.config} ({rung.title}): {rung.status}  loss {loss}  {value}", highlight=False)


@app.command("training")
def training(
    base: Annotated[Path, typer.Option("--base", help="The recipe giving scale and data (e.g. recipes/digits.toml); the ladder gives the design choices.")],
    budget_kimg: Annotated[float | None, typer.Option("--budget-kimg", help="Training images per config, in thousands (training.duration_kimg; default: the base's).")] = None,
    family: Annotated[str, typer.Option("--family", help="vp or ve: which ladder, recipes/cifar10/{family}-A..F.toml.")] = "vp",
    overrides: SetOpt = None,
    jobs: Annotated[int | None, typer.Option("--jobs", min=1, help="Configs trained at once (default: one per GPU, else 1).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Configs A..F of EDM Table 2 laid over the base recipe, each trained for the budget and measured by the
    base's [eval] protocol; `--set` overrides the base. Which field comes from the ladder and which from the
    base: see `edmctl.sweep.training_ladder`."""
    from edmctl.errors import CheckFailed
    from edmctl.sweep.training_ladder import training_ladder

    result = training_ladder(base, family, budget_kimg, list(overrides or []), jobs=jobs, on_rung=print_rung)
    files = run_outputs(result.run_id)  # the plot and the configs' snapshots
    emit({**result.as_dict(), "files": [str(f) for f in files]}, as_json,
         lambda: (render_training_ladder(result), print_files(files)))
    if result.failed:
        raise CheckFailed(f"{len(result.failed)} of {len(result.rungs)} configs failed: "
                          + "; ".join(f"{r.config}: {r.error}" for r in result.failed))


def register(root: typer.Typer) -> None:
    """Add the `ablate` group."""
    root.add_typer(app, name="ablate")
