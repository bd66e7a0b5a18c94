"""Solver accuracy vs NFE on the digits mixture (std 0.2): how many denoiser calls each solver and step schedule
needs to match the paper's sampler (Heun, edm ρ = 7, 18 steps = 35 NFE).

For 128 seeds, each sample's RMS distance (over pixels) to a converged reference from the same seed (Heun, 512
edm steps), summarised by the median over seeds: `rms_median` of `edmctl.evaluate`, the project's sampler error
(a few samples switch mixture component between step counts; the median is not thrown by them). Prints the error-vs-NFE table of every deterministic solver × {edm ρ = 7,
exponential, polyexponential ρ = 1.5}, the shipped recipes whose time steps are a table (optimised by `edmctl steps
optimize`), and the smallest NFE at which each matches Heun at 35 NFE. The stochastic samplers are left out: they
converge in distribution, not per seed, so a per-seed distance to an ODE solve does not measure them.

    python bench/solver_accuracy.py [--seeds 128] [--threads 1] [--max-steps 64]
"""

import argparse
import time
from pathlib import Path

import torch

from edmctl.design.solvers import SOLVERS, STOCHASTIC_SOLVERS
from edmctl.evaluate import SAMPLER_ERRORS
from edmctl.models import load_model
from edmctl.recipe import load_recipe
from edmctl.sampling import sample

ROOT = Path(__file__).resolve().parents[1]
MODEL = "ideal:digits?std=0.2"
DISCS = {"edm": ["sampler.disc='edm'", "sampler.rho=7"], "exponential": ["sampler.disc='exponential'"],
         "polyexponential": ["sampler.disc='polyexponential'", "sampler.rho=1.5"]}
DETERMINISTIC = [solver for solver in SOLVERS if solver not in STOCHASTIC_SOLVERS]
REFERENCE_STEPS = 512
STEP_COUNTS = [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 24, 28, 32, 40, 48, 64]
BASELINE = ("heun", "edm", 18)  # EDM's deterministic sampler: NFE 35


def settings(solver: str, disc: str, steps: int):
    return load_recipe(None, [f"sampler.solver='{solver}'", *DISCS[disc], f"sampler.steps={steps}"]).sampler


def table_recipes() -> dict[str, object]:
    """The shipped recipes whose time steps are an optimised table: {file name: [sampler]}."""
    found = {}
    for path in sorted((ROOT / "recipes").glob("*.toml")):
        if "[sampler]" in path.read_text():  # recipes, not sweep specs (churn_grid.toml)
            sampler = load_recipe(path).sampler
            if sampler.disc == "table":
                found[path.name] = sampler
    return found


def error_curve(model, seeds, reference, solver: str, disc: str, step_counts) -> list[tuple[int, float]]:
    """(NFE, median RMS error) for each step count."""
    curve = []
    for steps in step_counts:
        result = sample(model, settings(solver, disc, steps), seeds, batch=len(seeds))
        curve.append((result.nfe, SAMPLER_ERRORS["rms_median"](model, result.samples, reference)))
    return curve


def all_curves(model, seeds, reference, step_counts) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """{(solver, time steps): curve} for every deterministic solver × DISCS, and each shipped table recipe (one point)."""
    curves = {(solver, disc): error_curve(model, seeds, reference, solver, disc, step_counts)
              for solver in DETERMINISTIC for disc in DISCS}
    for name, sampler in table_recipes().items():
        result = sample(model, sampler, seeds, batch=len(seeds))
        curves[(sampler.solver, f"table ({name})")] = [(result.nfe, SAMPLER_ERRORS["rms_median"](model, result.samples, reference))]
    return curves


def first_match(curve, target_error: float) -> int | None:
    """The smallest measured NFE whose error is at or below the target."""
    return next((nfe for nfe, error in curve if error <= target_error), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (accuracy does not depend on it)")
    parser.add_argument("--max-steps", type=int, default=STEP_COUNTS[-1], help="largest step count per curve")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    model = load_model(MODEL)
    seeds = list(range(args.seeds))
    reference = sample(model, settings("heun", "edm", REFERENCE_STEPS), seeds, batch=len(seeds)).samples
    target = error_curve(model, seeds, reference, *BASELINE[:2], [BASELINE[2]])[0]
    print(f"digits mixture (1797 images, std 0.2), {len(seeds)} seeds; reference: heun, edm, {REFERENCE_STEPS} steps")
    print(f"target: heun edm 18 steps = NFE {target[0]}, median RMS error {target[1]:.2e}\n", flush=True)

    curves = all_curves(model, seeds, reference, [n for n in STEP_COUNTS if n <= args.max_steps])
    for (solver, disc), curve in curves.items():
        shown = "  ".join(f"{nfe}:{error:.1e}" for nfe, error in curve)
        print(f"{solver:>9} {disc:<26} NFE:error  {shown}")

    print(f"\nsmallest NFE matching heun/edm at NFE {target[0]} (error <= {target[1]:.2e}):")
    for (solver, disc), curve in curves.items():
        matched = first_match(curve, target[1])
        verdict = f"NFE {matched:>3}  ({matched / target[0]:.2f} x)" if matched else f"not within NFE {curve[-1][0]}"
        print(f"  {solver:>9} {disc:<26} {verdict}")
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
