"""Sweeps and ablations: a sweep file expanded into validated trials, recorded up front, run (resumably, in
parallel) by a small scheduler, shown as a sorted table and a plot; and the paper's Figure 2 sampler ladder.

    spec = read_sweep("recipes/churn_grid.toml")
    trials = plan_sweep(spec)                          # every trial's recipe, validated; nothing recorded
    outcome = run_sweep(spec, home=None, jobs=2)       # record, run what is not done, plot
    outcome = run_sweep(spec, executor=Slurm(partition="gpu", gpus_per_trial=1))   # as a Slurm job array
    results = sweep_results(outcome.plan.sweep_id)     # rows best first
    ladder = sampler_ladder("ideal:digits?std=0.2", family="vp", nfe_max=64, seeds=range(16))
"""

from edmctl.sweep.ablation import Curve, LadderResult, sampler_ladder
from edmctl.sweep.executors import EXECUTORS, Local, Slurm
from edmctl.sweep.expand import Trial, expand
from edmctl.sweep.results import SweepResults, plot_results, sweep_results
from edmctl.sweep.runner import SweepOutcome, plan_sweep, run_sweep
from edmctl.sweep.scheduler import Outcome, run_trials
from edmctl.sweep.spec import SweepSpec, read_sweep
from edmctl.sweep.trials import TRIALS

__all__ = ["Curve", "EXECUTORS", "LadderResult", "Local", "Outcome", "Slurm", "SweepOutcome", "SweepResults",
           "SweepSpec", "TRIALS", "Trial", "expand", "plan_sweep", "plot_results", "read_sweep", "run_sweep",
           "run_trials", "sampler_ladder", "sweep_results"]
