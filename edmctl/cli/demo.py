"""`edmctl demo`: the whole job end to end on the bundled digits, as the commands a user would type.

train RECIPE → sample 64 seeds from its EMA weights with the recipe's sampler (Heun, 18 steps) → reference
statistics of the data with the `pixels` detector → FD of the trained run against them; every step recorded
in the registry, then what to run next. Each step is the real command, run in-process.
"""

import io
from contextlib import nullcontext, redirect_stdout
from pathlib import Path
from typing import Annotated

import typer

from edmctl.cli.common import JsonOpt, emit, err, out
from edmctl.errors import CheckFailed, Interrupted, UserError


def _step(title: str, argv: list[str], as_json: bool) -> dict | None:
    """Run `edmctl <argv>` in-process under a rule on stderr; with `as_json`, return its JSON document (its
    stdout) instead of letting it print."""
    import json

    from edmctl.cli.main import main

    err.rule(f"{title}: edmctl {' '.join(argv)}", style="dim")
    captured = io.StringIO()
    with redirect_stdout(captured) if as_json else nullcontext():
        code = main([*argv, "--json"] if as_json else argv)
    if code == Interrupted.exit_code:  # the step said what it kept
        raise Interrupted(f"the demo stopped at step {title}")
    if code != 0:  # bad input stays exit 2
        failed = UserError if code == UserError.exit_code else CheckFailed
        raise failed(f"`edmctl {' '.join(argv)}` exited with {code}; the demo stops here.")
    return json.loads(captured.getvalue()) if as_json else None


def demo(
    recipe: Annotated[Path, typer.Argument(help="A digits-sized recipe to train.")] = Path("recipes/digits.toml"),
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds of the sample grid.")] = "0-63",
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a recipe field for training.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a small EDM recipe on the bundled digits, sample, measure FD (pixels) and record it all."""
    from edmctl.paths import home
    from edmctl.recipe import load_recipe
    from edmctl.registry import Registry
    from edmctl.sampling import parse_seeds

    from edmctl.fid.clean import clean_fid

    recipe_obj = load_recipe(recipe, overrides)  # fail on a bad recipe or seeds before anything runs
    parse_seeds(seeds)
    clean_fid()  # and on a torchvision that does not load (FD, steps 3-4), not after training
    ref = home() / "refs" / f"{recipe_obj.data.source}-pixels.npz"
    doc = {"train": _step("1/4 train", ["train", str(recipe), *[a for o in overrides or [] for a in ("--set", o)]], as_json)}
    trained = Registry().latest(kind="train", status="done").label
    doc["sample"] = _step("2/4 sample", ["sample", "--model", trained, "--seeds", seeds], as_json)
    sampled = Registry().latest(kind="sample", status="done")
    if not ref.exists():
        doc["ref"] = _step("3/4 reference statistics",
                           ["fid", "ref", recipe_obj.data.source, "--detector", "pixels", "--out", str(ref)], as_json)
    else:
        err.print(f"3/4 reference statistics: reusing {ref}", highlight=False)
        doc["ref"] = {"reused": str(ref)}
    doc["fid"] = _step("4/4 FD (pixels)", ["fid", trained, "--ref", str(ref), "--detector", "pixels"], as_json)
    measured = Registry().latest(kind="fid", status="done").label
    grid = Registry().run_dir(sampled.id) / "grid.png"
    next_steps = [("edmctl runs", "everything recorded"),
                  (f"edmctl show {trained}", "recipe, metrics, checkpoints, environment"),
                  (f"edmctl compare {sampled.label} {measured}", "what differs between two runs"),
                  (f"edmctl reproduce {sampled.label}", "re-run the sampling, bit for bit"),
                  (f"edmctl sample --model {trained} --steps 9 --s-churn 10", "another sampler, same model")]
    doc.update(runs={"train": trained, "sample": sampled.label, "fid": measured}, grid=str(grid),
               next=[command for command, _ in next_steps])
    emit(doc, as_json, lambda: _print_summary(doc, next_steps))


def _print_summary(doc: dict, next_steps: list[tuple[str, str]]) -> None:
    runs, width = doc["runs"], max(len(command) for command, _ in next_steps)
    out.print(f"\ndone: trained {runs['train']}, samples {runs['sample']} (grid: {doc['grid']}), FD {runs['fid']}."
              "\nnext:", highlight=False)
    for command, why in next_steps:
        out.print(f"  {command:<{width}}  # {why}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
