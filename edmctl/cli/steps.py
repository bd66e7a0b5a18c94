"""`edmctl steps optimize`: the N time steps that bring a solver closest to a converged solve, written as a
reusable recipe (`sampler.disc = "table"`, `sampler.sigmas = [...]`) and recorded as a `steps` run.

    edmctl steps optimize --model "ideal:digits?std=0.2" --solver ipndm --nfe 10 --out recipes/mine.toml
    edmctl sample --model "ideal:digits?std=0.2" --recipe recipes/mine.toml
"""

import sys
from pathlib import Path
from typing import Annotated

import typer

from edmctl.cli.common import JsonOpt, SetOpt, emit, out, progress_bar
from edmctl.errors import UserError

steps_app = typer.Typer(help="Time steps: search optimised ones for a solver and an NFE budget.", no_args_is_help=True)

SEARCH_SEEDS = "1000-1063"  # not bench/solver_accuracy.py's 0-127: the levels are judged on seeds they were not fit to
OUT_NAME = "steps.toml"
MAX_EVALS = 100_000  # sampler evaluations of a search: the default 400 takes minutes; 100,000 would take days


def steps_for_nfe(sampler, nfe: int):
    """The sampler with the most steps whose NFE is at most `nfe`: a bisection over N, as NFE grows with N and is at
    least N for every solver (NFE = N for the multistep solvers, 2N − 1 for Heun)."""
    from edmctl.design.sampler import nfe_of

    def with_steps(steps: int):
        return type(sampler).model_validate({**sampler.model_dump(), "steps": steps})

    if nfe_of(with_steps(2)) > nfe:
        raise UserError(f"--nfe {nfe} is too small for solver {sampler.solver}: it needs at least 2 time steps.")
    low, high = 2, nfe  # nfe_of(low) <= nfe < nfe_of(high + 1)
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if nfe_of(with_steps(middle)) <= nfe else (low, middle - 1)
    return with_steps(low)


def reference_from_run(ref: str, model_spec: str):
    """(seeds, samples) of a recorded sample run of the same model: the converged solve to fit the steps to."""
    import torch

    from edmctl.paths import read_npz
    from edmctl.registry import Registry

    registry = Registry()
    record = registry.get(ref, kind="sample")
    if record.kind != "sample" or record.extra.get("model") != model_spec:
        raise UserError(f"--reference {ref}: needs a sample run of --model {model_spec!r} "
                        f"({record.label} is a {record.kind} run of {record.extra.get('model')!r}).")
    path = next((registry.artifact_path(a) for a in registry.artifacts(record.id) if a.kind == "samples"), None)
    if path is None or not path.exists():
        raise UserError(f"--reference {ref}: {record.label} has no samples.npz; sample it again with `edmctl sample`.")
    arrays = read_npz(path, f"--reference {ref}: {record.label}'s")
    if "seeds" not in arrays or "samples" not in arrays:
        raise UserError(f"--reference {ref}: {path} lacks `seeds` and `samples`; sample it again with `edmctl sample`.")
    return [int(s) for s in arrays["seeds"]], torch.from_numpy(arrays["samples"])


def recipe_text(sampler, search, spec: str, reference: str, run_id: int) -> str:
    from edmctl.recipe.write import section_toml

    comments = [f"Optimised time steps for solver {sampler.solver}, NFE {search.nfe} on {spec}: `edmctl steps optimize` (run{run_id}).",
                f"Median per-seed RMS to {reference}: {search.start_error:.4g} with disc '{search.start_disc}' -> {search.error:.4g}",
                f"({search.evaluations} evaluations on {len(search.seeds)} seeds)."]
    return section_toml("sampler", sampler.model_dump(), comments)


@steps_app.command("optimize")
def optimize(
    model: Annotated[str, typer.Option("--model", help="ideal:digits?std=0.2, ideal:PATH.npz or run:ID: the model to fit the steps to.")],
    solver: Annotated[str, typer.Option("--solver", help="Solver (recipe field sampler.solver).")],
    nfe: Annotated[int, typer.Option("--nfe", help="Denoiser calls per image: the number of steps follows from the solver.")],
    disc: Annotated[str | None, typer.Option("--disc", help="Discretization to start the search from (recipe field sampler.disc).")] = None,
    seeds: Annotated[str | None, typer.Option("--seeds", help=f"Search seeds (default {SEARCH_SEEDS}; with --reference: the run's).")] = None,
    reference: Annotated[str | None, typer.Option("--reference", help="A sample run of the same model (e.g. Heun, many steps) whose samples are the converged solve; default: Heun 512 steps.")] = None,
    max_evals: Annotated[int, typer.Option("--max-evals", help="Sampler evaluations the search may spend.")] = 400,
    batch: Annotated[int, typer.Option("--batch", help="Images per batch.")] = 64,
    recipe_path: Annotated[Path | None, typer.Option("--recipe", help="Recipe whose [sampler] section to start from.")] = None,
    overrides: SetOpt = None,
    out_path: Annotated[Path | None, typer.Option("--out", help=f"Recipe file to write (default: the run's folder/{OUT_NAME}).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the NFE-step schedule minimising the error to a converged solve; write it as a recipe; record the run."""
    from edmctl.cli.sample import sampler_overrides
    from edmctl.models import load_model
    from edmctl.paths import atomic_write_bytes
    from edmctl.recipe import load_recipe
    from edmctl.recipe.schema import STEPS_MAX
    from edmctl.registry import open_run
    from edmctl.sampling import parse_seeds
    from edmctl.evaluate import REFERENCE_STEPS, reference_solution
    from edmctl.sampling.steps import optimize_steps, with_table

    if not 2 <= nfe <= STEPS_MAX or not 1 <= max_evals <= MAX_EVALS or batch < 1:
        raise UserError(f"--nfe must be 2..{STEPS_MAX:,}, --max-evals 1..{MAX_EVALS:,} and --batch at least 1 (got {nfe}, "
                        f"{max_evals}, {batch}).")
    if reference is not None and seeds is not None:
        raise UserError("--seeds and --reference exclude each other: the reference run's seeds are the search seeds.")
    if out_path is not None and out_path.exists():
        raise UserError(f"--out {str(out_path)!r} already exists; choose a new file.")
    recipe = load_recipe(recipe_path, sampler_overrides(dict(solver=solver, disc=disc), list(overrides or [])))
    start = steps_for_nfe(recipe.sampler, nfe)
    denoiser = load_model(model)
    if reference is None:
        seed_list, target, described = parse_seeds(seeds or SEARCH_SEEDS), None, f"Heun {REFERENCE_STEPS} edm steps"
    else:
        seed_list, target = reference_from_run(reference, model)
        described = f"the samples of {reference}"

    with open_run(kind="steps", recipe=recipe.canonical(), recipe_hash=recipe.hash(), seeds=seed_list, argv=sys.argv) as run:
        if target is None:
            target = reference_solution(denoiser, start, seed_list, batch)
        with progress_bar("searching", max_evals, rate=lambda speed: f"{speed:.1f} eval/s") as bar:
            search = optimize_steps(denoiser, start, seed_list, target, batch, max_evals,
                                    progress=lambda done, best: bar.update(completed=done))
        found = recipe.model_copy(update={"sampler": with_table(start, search.sigmas)})
        target_path = Path(out_path) if out_path is not None else Path(run.dir) / OUT_NAME
        atomic_write_bytes(target_path, recipe_text(found.sampler, search, model, described, run.id).encode())
        run.add_artifact(target_path, kind="recipe")
        run.log_metrics({"error": search.error, "start_error": search.start_error, "evaluations": search.evaluations,
                         "nfe": search.nfe})
        run.update(recipe=found.canonical(), recipe_hash=found.hash(), model=model, solver=start.solver,
                   nfe=search.nfe, sigmas=search.sigmas, start_sigmas=search.start_sigmas, start_disc=search.start_disc,
                   reference=described, measure="median over seeds of the per-seed RMS to the reference")
        run_id = run.id

    doc = {"run": run_id, "out": str(target_path), "model": model, "solver": start.solver, "nfe": search.nfe,
           "steps": len(search.sigmas), "sigmas": search.sigmas, "error": search.error, "start_error": search.start_error,
           "start_disc": search.start_disc, "evaluations": search.evaluations, "reference": described,
           "files": [str(target_path)]}
    emit(doc, as_json, lambda: out.print(
        f"{start.solver} NFE {search.nfe}: median RMS {search.start_error:.3g} ({search.start_disc}) -> {search.error:.3g} "
        f"in {search.evaluations} evaluations  -> {target_path}  (run {run_id})", highlight=False))


def register(app: typer.Typer) -> None:
    """Add the `steps` command group."""
    app.add_typer(steps_app, name="steps")
