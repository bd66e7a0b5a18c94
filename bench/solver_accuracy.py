"""Solver accuracy vs NFE on the digits mixture (std 0.2): how many denoiser calls each solver and step schedule
needs to match the paper's sampler (Heun, edm ρ = 7, 18 steps = 35 NFE).

For 128 seeds, each sample's RMS distance (over pixels) to a converged reference from the same seed (Heun, 512
edm steps), summarised by the median over seeds: `rms_median` of `edmctl.evaluate`, the project's sampler error
(a few samples switch mixture component between step counts; the median is not thrown by them). Prints the error-vs-NFE table of every solver × {edm ρ = 7, exponential} and
the smallest NFE at which each matches Heun at 35 NFE.

    python bench/solver_accuracy.py [--seeds 128] [--threads 1]
"""

import argparse
import time

import torch

from edmctl.design.solvers import SOLVERS
from edmctl.evaluate import SAMPLER_ERRORS
from edmctl.models import load_model
from edmctl.recipe import load_recipe
from edmctl.sampling import sample

DISCS = {"edm": ["sampler.disc='edm'", "sampler.rho=7"], "exponential": ["sampler.disc='exponential'"]}
REFERENCE_STEPS = 512
STEP_COUNTS = [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 24, 28, 32, 40, 48, 64]
BASELINE = ("heun", "edm", 18)  # EDM's deterministic sampler: NFE 35


def settings(solver: str, disc: str, steps: int):
    return load_recipe(None, [f"sampler.solver='{solver}'", *DISCS[disc], f"sampler.steps={steps}"]).sampler


def error_curve(model, seeds, reference, solver: str, disc: str, step_counts) -> list[tuple[int, float]]:
    """(NFE, median RMS error) for each step count."""
    curve = []
    for steps in step_counts:
        result = sample(model, settings(solver, disc, steps), seeds, batch=len(seeds))
        curve.append((result.nfe, SAMPLER_ERRORS["rms_median"](model, result.samples, reference)))
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (accuracy does not depend on it)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    model = load_model("ideal:digits?std=0.2")
    seeds = list(range(args.seeds))
    reference = sample(model, settings("heun", "edm", REFERENCE_STEPS), seeds, batch=len(seeds)).samples
    target = error_curve(model, seeds, reference, *BASELINE[:2], [BASELINE[2]])[0]
    print(f"digits mixture (1797 images, std 0.2), {len(seeds)} seeds; reference: heun, edm, {REFERENCE_STEPS} steps")
    print(f"target: heun edm 18 steps = NFE {target[0]}, median RMS error {target[1]:.2e}\n", flush=True)

    summary = []
    for solver in SOLVERS:
        for disc in DISCS:
            curve = error_curve(model, seeds, reference, solver, disc, STEP_COUNTS)
            matched = next((nfe for nfe, error in curve if error <= target[1]), None)
            summary.append((solver, disc, matched))
            shown = "  ".join(f"{nfe}:{error:.1e}" for nfe, error in curve)
            print(f"{solver:>9} {disc:<11} NFE:error  {shown}", flush=True)

    print(f"\nsmallest NFE matching heun/edm at NFE {target[0]} (error <= {target[1]:.2e}):")
    for solver, disc, matched in summary:
        verdict = f"NFE {matched:>3}  ({matched / target[0]:.2f} x)" if matched else f"not within {STEP_COUNTS[-1]} steps"
        print(f"  {solver:>9} {disc:<11} {verdict}")
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
