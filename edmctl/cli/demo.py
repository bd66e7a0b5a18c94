"""`edmctl demo`: the whole job end to end on the bundled digits, as the commands a user would type.

train RECIPE → sample 64 seeds from its EMA weights with the recipe's sampler (Heun, 18 steps) → reference
statistics of the data with the `pixels` detector → FD of the trained run against them; every step recorded
in the registry, then what to run next. Each step is the real command, run in-process.
"""

from pathlib import Path
from typing import Annotated

import typer

from edmctl.cli.common import err, out
from edmctl.errors import CheckFailed


def _step(title: str, argv: list[str]) -> None:
    from edmctl.cli.main import main

    err.rule(f"{title}: edmctl {' '.join(argv)}", style="dim")
    code = main(argv)
    if code != 0:
        raise CheckFailed(f"`edmctl {' '.join(argv)}` exited with {code}; the demo stops here.")


def demo(
    recipe: Annotated[Path, typer.Argument(help="A digits-sized recipe to train.")] = Path("recipes/digits.toml"),
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds of the sample grid.")] = "0-63",
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a recipe field for training.")] = None,
) -> None:
    """Train a small EDM recipe on the bundled digits, sample, measure FD (pixels) and record it all."""
    from edmctl.paths import home
    from edmctl.recipe import load_recipe
    from edmctl.registry import Registry
    from edmctl.sampling import parse_seeds

    recipe_obj = load_recipe(recipe, overrides)  # fail on a bad recipe or seeds before anything runs
    parse_seeds(seeds)
    ref = home() / "refs" / f"{recipe_obj.data.source}-pixels.npz"
    _step("1/4 train", ["train", str(recipe), *[a for o in overrides or [] for a in ("--set", o)]])
    trained = Registry().latest(kind="train", status="done").label
    _step("2/4 sample", ["sample", "--model", trained, "--seeds", seeds])
    sampled = Registry().latest(kind="sample", status="done")
    if not ref.exists():
        _step("3/4 reference statistics", ["fid", "ref", recipe_obj.data.source, "--detector", "pixels", "--out", str(ref)])
    else:
        err.print(f"3/4 reference statistics: reusing {ref}")
    _step("4/4 FD (pixels)", ["fid", trained, "--ref", str(ref), "--detector", "pixels"])
    measured = Registry().latest(kind="fid", status="done").label
    grid = Registry().run_dir(sampled.id) / "grid.png"
    next_steps = [("edmctl runs", "everything recorded"),
                  (f"edmctl show {trained}", "recipe, metrics, checkpoints, environment"),
                  (f"edmctl compare {sampled.label} {measured}", "what differs between two runs"),
                  (f"edmctl reproduce {sampled.label}", "re-run the sampling, bit for bit"),
                  (f"edmctl sample --model {trained} --steps 9 --s-churn 10", "another sampler, same model")]
    width = max(len(command) for command, _ in next_steps)
    out.print(f"\ndone: trained {trained}, samples {sampled.label} (grid: {grid}), FD {measured}.\nnext:", highlight=False)
    for command, why in next_steps:
        out.print(f"  {command:<{width}}  # {why}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
