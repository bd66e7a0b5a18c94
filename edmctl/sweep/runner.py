"""A sweep from file to results: expand and validate every trial, record them all as queued, run what is left.

The sweep run is found again by its hash (shared settings + trial recipe hashes), so running the same file
again resumes it: done trials are skipped, failed and interrupted ones rerun, missing ones are queued.
"""

import sys
from dataclasses import dataclass, field
from typing import Callable

from edmctl.errors import CheckFailed
from edmctl.sweep.expand import Trial, expand
from edmctl.sweep.scheduler import Outcome, run_trials
from edmctl.sweep.spec import SweepSpec, sweep_hash

RERUN = ("queued", "failed", "interrupted")


@dataclass
class SweepPlan:
    sweep_id: int
    trials: list[Trial]
    trial_ids: dict[str, int]  # recipe hash -> trial run id
    todo: list[int]  # trial run ids to run now
    skipped: dict[str, list[int]] = field(default_factory=dict)  # done / running elsewhere


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
    """Record the sweep and every trial not yet recorded (status queued); decide what to run now."""
    from edmctl.registry import Registry, queue_run
    from edmctl.sweep.trials import run_kind

    registry = Registry(home, create=True)
    hashes = [t.recipe.hash() for t in trials]
    digest = sweep_hash(spec, hashes)
    sweep = find_sweep(registry, digest)
    sweep_id = sweep.id if sweep else queue_run(kind="sweep", recipe=spec.as_dict(), recipe_hash=digest,
                                                 argv=sys.argv, name=spec.name, home=home,
                                                 extra={"settings": spec.settings(), "axes": spec.axes()})
    known = {child.recipe_hash: child for child in registry.children(sweep_id)}
    plan = SweepPlan(sweep_id, trials, {}, [], {"done": [], "running": []})
    for trial, digest in zip(trials, hashes):
        record = known.get(digest)
        if record is None:
            trial_id = queue_run(kind=run_kind(spec.trial), recipe=trial.recipe.canonical(), recipe_hash=digest,
                                 seeds=_seeds(spec), argv=sys.argv, parent=sweep_id, name=trial.label, home=home,
                                 extra={"axes": trial.axes, "trial": trial.index})
            status = "queued"
        else:
            trial_id, status = record.id, record.status
        plan.trial_ids[digest] = trial_id
        (plan.todo if status in RERUN else plan.skipped[status]).append(trial_id)
    return plan


def _seeds(spec: SweepSpec) -> list[int]:
    from edmctl.sampling import parse_seeds

    return parse_seeds(spec.seeds) if spec.trial == "sample" else []


def check_inputs(spec: SweepSpec) -> None:
    """Seeds and model are bad input (UserError) before anything is recorded, not a failure of every trial."""
    from edmctl.sweep.trials import model_of

    _seeds(spec)
    if spec.trial in ("sample", "fid"):
        model_of(spec.settings())


def plan_sweep(spec: SweepSpec) -> list[Trial]:
    """Every trial, validated (a UserError names the first invalid one); nothing is recorded."""
    return expand(spec)


def run_sweep(spec: SweepSpec, home=None, jobs: int | None = None,
              on_outcome: Callable[[Outcome], None] = lambda outcome: None) -> SweepOutcome:
    """Validate every trial, record them, run those not done, save the plot; a sweep with failed trials ends
    `failed` (the outcome lists them)."""
    from edmctl.registry import start_run
    from edmctl.sweep.results import save_plot

    trials = plan_sweep(spec)
    check_inputs(spec)
    plan = queue_trials(spec, trials, home)
    if not plan.todo:
        return SweepOutcome(plan, [])
    outcomes = []
    try:
        with start_run(plan.sweep_id, home=home) as sweep:
            outcomes = run_trials(plan.todo, spec.settings(), home, jobs, on_outcome)
            save_plot(sweep, home)
            failed = [o for o in outcomes if o.status != "done"]
            if failed:
                raise CheckFailed(f"{len(failed)} of {len(outcomes)} trials failed")
    except CheckFailed:
        pass  # the sweep run is recorded failed; the caller reports which trials
    return SweepOutcome(plan, outcomes)
