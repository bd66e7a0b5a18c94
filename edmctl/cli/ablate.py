"""`edmctl ablate sampler`: the paper's Figure 2 for any model, recorded as an `ablate` run with a table and a plot.

The group holds one command per ladder of the paper (`sampler` here; the training ladder of Table 2 joins it as
`edmctl ablate training`).
"""

import sys
from typing import Annotated

import typer

from edmctl.cli.common import JsonOpt, emit, err, out

app = typer.Typer(help="The paper's ablation ladders: the sampler ladder of Figure 2.", no_args_is_help=True,
                  rich_markup_mode=None)


def _family_of(spec: str, family: str | None) -> tuple[str, object | None]:
    """The family (`--family`, else the training run's precond kind, else vp) and, for a run, its recipe."""
    from edmctl.sweep.ablation import FAMILIES

    if not spec.startswith("run:"):
        return family or "vp", None
    from edmctl.recipe import Recipe
    from edmctl.registry import Registry

    recipe = Recipe.model_validate(Registry().get(spec.removeprefix("run:")).recipe)
    own = recipe.precond.kind if recipe.precond.kind in FAMILIES else "vp"
    return family or own, recipe


def render_ladder(result) -> None:
    from rich.table import Table

    table = Table(title=f"{result.model}: {result.family} sampler ladder ({result.metric}; knee = lowest NFE within 3% of best)",
                  title_justify="left")
    for name in ("curve", "solver", "disc", "σ(t)", "s(t)", "best", "at NFE", "knee NFE", "knee value"):
        table.add_column(name, justify="left" if name in ("curve", "solver", "disc", "σ(t)", "s(t)") else "right")
    for curve in result.curves:
        best, knee = curve.best(), curve.knee()
        s = curve.sampler
        table.add_row(curve.label, s["solver"], s["disc"], s["schedule"], s["scaling"],
                      *(("-",) * 4 if best is None else (f"{best[2]:.4g}", str(best[1]), str(knee[1]), f"{knee[2]:.4g}")))
    out.print(table)


@app.command("sampler")
def sampler(
    model: Annotated[str | None, typer.Option("--model", help="ideal:digits?std=0.2, ideal:PATH.npz, or run:ID; default: the newest finished training run.")] = None,
    family: Annotated[str | None, typer.Option("--family", help="vp, ve or iddpm: whose original sampler starts the ladder (default: the run's precond kind, else vp).")] = None,
    nfe_max: Annotated[int, typer.Option("--nfe-max", min=2, help="Largest NFE of every curve.")] = 128,
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds of the initial noise, e.g. 0-63 (FID models: images per point).")] = "0-63",
    batch: Annotated[int, typer.Option("--batch", min=1, help="Images per batch.")] = 256,
    as_json: JsonOpt = False,
) -> None:
    """Original sampler → + Heun & EDM steps → + σ(t)=t & s(t)=1, and every other solver, each over the step count."""
    from edmctl.cli.sample import resolve_model_spec
    from edmctl.registry import open_run
    from edmctl.sampling import parse_seeds
    from edmctl.sweep.ablation import plot_ladder, sampler_ladder
    from edmctl.sweep.trials import cached_model

    seed_list = parse_seeds(seeds)
    spec, parent = resolve_model_spec(model)
    family, recipe = _family_of(spec, family)
    cached_model(spec)  # a bad model is bad input, before the run is opened

    def progress(label: str, nfe: int, value: float) -> None:
        err.print(f"{label}: NFE {nfe}  {value:.4g}", highlight=False)

    with open_run(kind="ablate", name=f"sampler ladder {family}", seeds=seed_list, argv=sys.argv, parent=parent,
                  recipe=recipe.canonical() if recipe else None, recipe_hash=recipe.hash() if recipe else None) as run:
        result = sampler_ladder(spec, family, nfe_max, seed_list, batch, recipe, progress)
        for index, curve in enumerate(result.curves):
            for steps, nfe, value in curve.points:
                run.log_metric(f"curve{index}.{result.metric}", value, step=nfe)
        run.add_artifact(plot_ladder(result, run.dir / "sampler_ladder.png"), kind="plot")
        run.update(ladder=result.as_dict(), model=spec)
        run_id = run.id

    emit({"run": f"run{run_id}", **result.as_dict()}, as_json, lambda: (render_ladder(result), out.print(
        f"plot: {run.dir / 'sampler_ladder.png'}  (run{run_id})", highlight=False)))


def register(root: typer.Typer) -> None:
    """Add the `ablate` group."""
    root.add_typer(app, name="ablate")
