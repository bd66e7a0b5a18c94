"""A sweep from file to results: expand and validate every trial, record them all as queued, run what is left.

The sweep run is found again by its hash (shared settings + trial recipe hashes), so running the same file
again resumes it: done trials are skipped, failed and interrupted ones rerun, missing ones are queued.

Several `edmctl sweep` of the same file at once share the work: finding or recording the sweep and its trials is
one registry transaction (`registry.queue_group`), and every process claims trials one at a time from the same
queue (`registry.start_next`). The first process to start the sweep run owns it: when no trial is left to claim
it waits for the trials others are still running, then saves the plot and ends the sweep `done` or `failed`.
The others help: they run trials until none is queued and show the results so far. Where the trials run is the
executor's choice (`executors.py`: worker processes here, or a Slurm job array); every executor claims them from
the queue the same way.
"""

import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Callable

from edmctl.errors import CheckFailed
from edmctl.sweep.expand import MAX_TRIALS, Duplicate, Trial, expand
from edmctl.sweep.scheduler import Outcome
from edmctl.sweep.spec import SweepSpec, sweep_hash


@dataclass
class SweepPlan:
    sweep_id: int
    trials: list[Trial]
    trial_ids: dict[str, int]  # recipe hash -> trial run id
    todo: list[int]  # trial run ids queued now (any process sharing the sweep may run them)
    skipped: dict[str, list[int]] = field(default_factory=dict)  # done / running elsewhere
    duplicates: list[Duplicate] = field(default_factory=list)  # assignments not run: an earlier trial samples the same


@dataclass
class SweepOutcome:
    plan: SweepPlan
    outcomes: list[Outcome]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != "done"]


def find_sweep(registry, digest: str):
    """The newest sweep run with this hash (listing reaps runs whose process is gone), or None."""
    runs = registry.list(kind="sweep", where={"recipe_hash": digest}, limit=1)
    return runs[0] if runs else None


def queue_trials(spec: SweepSpec, trials: list[Trial], home) -> SweepPlan:
    """Find or record the sweep and every trial not yet recorded (status queued), failed and interrupted trials
    queued again, in one transaction; say what is queued, done, or running elsewhere."""
    from edmctl.registry import Registry, queue_group
    from edmctl.sweep.trials import run_kind

    Registry(home, create=True).reap()  # a trial left running by a killed process is queued again below
    hashes = [t.recipe.hash() for t in trials]
    seeds = _seeds(spec)
    parent = {"kind": "sweep", "recipe": spec.as_dict(), "recipe_hash": sweep_hash(spec, hashes), "argv": sys.argv,
              "name": spec.name, "extra": {"settings": spec.settings(), "axes": spec.axes()}}
    children = [{"kind": run_kind(spec.trial), "recipe": t.recipe.canonical(), "recipe_hash": digest, "seeds": seeds,
                 "argv": sys.argv, "name": t.label, "extra": {"axes": t.axes, "trial": t.index}}
                for t, digest in zip(trials, hashes)]
    group = queue_group(parent, children, home)
    plan = SweepPlan(group.parent_id, trials, {}, [], {"done": [], "running": []})
    for digest in hashes:
        trial_id, status = group.children[digest]
        plan.trial_ids[digest] = trial_id
        (plan.todo if status == "queued" else plan.skipped[status]).append(trial_id)
    return plan


def _seeds(spec: SweepSpec) -> list[int]:
    from edmctl.sampling import parse_seeds

    return parse_seeds(spec.seeds) if spec.trial == "sample" else []


def check_inputs(spec: SweepSpec, trials: list[Trial]) -> None:
    """Seeds, model, metric, the FD detectors and reference statistics and the training trials' networks
    (`check_networks`) of `trials` are bad input (UserError) before anything is recorded, not a failure of every
    trial."""
    from edmctl.fid import load_stats
    from edmctl.fid.detectors import load_detector
    from edmctl.sweep.trials import check_metric, check_networks, measures_fd, model_of, run_kind

    _seeds(spec)
    if spec.trial in ("sample", "fid"):
        model_of(spec.settings())
    check_metric(spec.settings())
    if run_kind(spec.trial) == "train":
        check_networks(trials, spec.path)
    if measures_fd(spec.settings()):
        for detector, protocol in dict.fromkeys((t.recipe.eval.detector, t.recipe.eval.protocol) for t in trials):
            load_detector(detector, protocol)  # a detector that is missing (or cannot be fetched) fails no trial
        for ref in dict.fromkeys(t.recipe.eval.ref for t in trials if t.recipe.eval.ref):
            load_stats(ref)  # nor do reference statistics that are missing or unreadable


def plan_sweep(spec: SweepSpec, max_trials: int = MAX_TRIALS,
               on_progress: Callable[[int, int], None] = lambda done, total: None,
               duplicates: list[Duplicate] | None = None) -> list[Trial]:
    """Every distinct trial, validated (a UserError names the first invalid one, or a count above `max_trials`);
    assignments that sample like an earlier trial are appended to `duplicates`. Nothing is recorded."""
    return expand(spec, max_trials, on_progress, (duplicates if duplicates is not None else []).append)


def run_sweep(spec: SweepSpec, home=None, jobs: int | None = None,
              on_outcome: Callable[[Outcome], None] = lambda outcome: None, max_trials: int = MAX_TRIALS,
              on_progress: Callable[[int, int], None] = lambda done, total: None, executor=None) -> SweepOutcome:
    """Validate every trial, record them, run those not done (on `executor`, default `Local(jobs)`: see
    `executors.py`), save the plot; a sweep with failed trials ends `failed` (the outcome lists them). Another
    process already running the sweep: help it (see the docstring)."""
    from edmctl.registry import AlreadyStarted, Registry, start_run
    from edmctl.sweep.executors import Local
    from edmctl.sweep.results import save_plot

    executor = executor or Local(jobs)
    duplicates: list[Duplicate] = []
    trials = plan_sweep(spec, max_trials, on_progress, duplicates)
    check_inputs(spec, trials)
    executor.check(home)
    plan = queue_trials(spec, trials, home)
    plan.duplicates = duplicates
    if not plan.todo and not plan.skipped["running"] and Registry(home).get(plan.sweep_id).status == "done":
        return SweepOutcome(plan, [])
    outcomes = []
    try:
        with ExitStack() as stack:
            try:
                sweep = stack.enter_context(start_run(plan.sweep_id, home=home))
            except AlreadyStarted:  # another process owns the sweep run: share its queue
                return SweepOutcome(plan, executor.run(plan.sweep_id, spec.settings(), home, on_outcome, owner=False))
            outcomes = executor.run(plan.sweep_id, spec.settings(), home, on_outcome, owner=True)
            save_plot(sweep, home)
            counts = Registry(home).child_statuses(plan.sweep_id)
            not_done = sum(n for status, n in counts.items() if status != "done")
            if not_done:
                raise CheckFailed(f"{not_done} of {sum(counts.values())} trials did not finish")
    except CheckFailed:
        pass  # the sweep run is recorded failed; the caller reports which trials
    return SweepOutcome(plan, outcomes)
