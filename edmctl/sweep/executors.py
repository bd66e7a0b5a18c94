"""Where a sweep's trials run: `EXECUTORS` maps `edmctl sweep --executor NAME` to a class. Every executor runs
the trials the same way, by claiming them one at a time from the registry's queue (`registry.start_next`), so
executors can share one sweep and a trial never runs twice.

- `local` (the default): worker processes on this machine (`scheduler.run_trials`, `--jobs`).
- `slurm`: one Slurm job array through submitit, a task per queued trial (`--partition`, `--gpus-per-trial`,
  `--cpus-per-trial`, `--time`, `--max-parallel`, `--slurm-option`). Each task claims a trial and runs it on its
  node, then claims the next until none is queued (so tasks that Slurm runs a few at a time, `--max-parallel` or
  a small partition, pay for starting Python once); once every trial is claimed, the array's pending tasks are
  cancelled. A task that finds the queue empty (Slurm re-ran it after a requeue, say) ends without running
  anything, so a finished trial never runs twice. This process waits until the array has left Slurm's queue,
  reporting each trial as it ends; Ctrl-C (or `edmctl sweep cancel`) cancels the array and its running trials
  end `interrupted`. Its registry must be one every node shares safely (PostgreSQL; SQLite only with
  `--allow-sqlite`).

An executor's `OPTIONS` are the CLI options it takes; `run(sweep_id, settings, home, on_outcome, owner)` runs the
queued trials and returns their outcomes; the owner of the sweep run also waits for trials running elsewhere.
"""

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from edmctl.sweep.scheduler import Outcome, default_device, execute_next, run_trials

WAIT_S = 1.0  # how often the owner of a sweep looks at the trials other processes are running
ENDED = ("done", "failed", "interrupted")


def run_until_settled(sweep_id: int, settings: dict, home, jobs: int | None,
                      on_outcome: Callable[[Outcome], None]) -> list[Outcome]:
    """Run queued trials until none is queued, then wait until no trial runs elsewhere either (their processes
    may queue more: a reaped trial is claimed here)."""
    from edmctl.registry import Registry

    registry, outcomes = Registry(home), []
    while True:
        ran = run_trials(sweep_id, settings, home, jobs, on_outcome)
        outcomes += ran
        registry.reap()
        counts = registry.child_statuses(sweep_id)
        if not counts.get("running") and (not counts.get("queued") or not ran):
            return outcomes  # settled (or queued trials that no worker could start: reported as not done)
        if not counts.get("queued"):
            time.sleep(WAIT_S)


@dataclass
class Local:
    """Worker processes on this machine (default: one per GPU, else 1)."""

    OPTIONS = ("jobs",)
    jobs: int | None = None

    def check(self, home) -> None:
        """Nothing to check before the sweep is recorded."""

    def run(self, sweep_id: int, settings: dict, home, on_outcome: Callable[[Outcome], None], owner: bool) -> list[Outcome]:
        if owner:
            return run_until_settled(sweep_id, settings, home, self.jobs, on_outcome)
        return run_trials(sweep_id, settings, home, self.jobs, on_outcome)


def run_task(sweep_id: int, settings: dict, registry_env: dict[str, str]) -> list[int]:
    """One Slurm array task, on its node: claim queued trials of the sweep and run them, one at a time with the
    task's CPUs as torch threads, until none is queued; the ids of the trials it ran."""
    from edmctl.threads import use

    os.environ.update(registry_env)  # the submitter's registry, whatever the node's environment says
    use(int(os.environ.get("SLURM_CPUS_PER_TASK", "1")))  # the CPUs Slurm gave the task, not the submitter's --threads
    device, ran = default_device(), []
    while (outcome := execute_next(sweep_id, settings, None, device)) is not None:
        ran.append(outcome.trial_id)
    return ran


@dataclass
class Slurm:
    """One Slurm job array through submitit, a task per queued trial (see the module docstring)."""

    OPTIONS = ("partition", "time", "slurm_option", "gpus_per_trial", "cpus_per_trial", "max_parallel", "allow_sqlite")
    partition: str | None = None
    time: str = "01:00:00"
    slurm_option: tuple[str, ...] = ()
    gpus_per_trial: int = 0
    cpus_per_trial: int = 1
    max_parallel: int | None = None
    allow_sqlite: bool = False

    def request(self):
        from edmctl.slurm import SlurmRequest

        return SlurmRequest(self.partition, self.time, tuple(self.slurm_option))

    def check(self, home) -> None:
        """submitit installed, a registry every node can share, a well-formed request and Slurm's commands; before
        anything is recorded."""
        from edmctl import slurm

        slurm.check_submission(home, self.request(), self.allow_sqlite)

    def run(self, sweep_id: int, settings: dict, home, on_outcome: Callable[[Outcome], None], owner: bool) -> list[Outcome]:
        from edmctl import slurm
        from edmctl.allocator import apply_to_children
        from edmctl.registry import Registry

        registry = Registry(home)
        queued = registry.child_statuses(sweep_id).get("queued", 0)
        outcomes: list[Outcome] = []
        if queued:
            apply_to_children()  # the tasks inherit this environment (sbatch --export=ALL)
            executor = slurm.slurm_executor(registry.run_dir(sweep_id) / "slurm", self.request(),
                                            cpus_per_task=self.cpus_per_trial, gpus_per_node=self.gpus_per_trial or None,
                                            array_parallelism=self.max_parallel or queued, job_name=f"edmctl-run{sweep_id}")
            jobs = slurm.submit_array(executor, run_task, queued, (sweep_id, settings, slurm.registry_env(registry)))
            array = slurm.array_id(jobs[0].job_id)
            record_array(registry, sweep_id, array)
            watch = Watch(registry, sweep_id, array, on_outcome)
            slurm.wait_until_gone(array, watch.look)
            outcomes = watch.outcomes
        if owner:
            wait_for_running(registry, sweep_id)
        return outcomes


def record_array(registry, sweep_id: int, array: str) -> None:
    """Add the array to the sweep run's `slurm_arrays` (what `edmctl sweep cancel` cancels)."""
    from edmctl.registry import Run

    known = registry.get(sweep_id).extra.get("slurm_arrays", [])
    Run(registry, sweep_id).update(slurm_arrays=[*known, array])


@dataclass
class Watch:
    """What the submitter sees of its array's trials: each trial that a task of `array` ran, once it has ended
    (a trial whose task was killed is reaped as interrupted); once no trial is queued, the array's pending
    tasks are cancelled (the running ones have taken every trial)."""

    registry: Any  # edmctl.registry.Registry
    sweep_id: int
    array: str
    on_outcome: Callable[[Outcome], None]
    outcomes: list[Outcome] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    pending_cancelled: bool = False

    def look(self) -> None:
        from edmctl.slurm import array_id, cancel

        self.registry.reap()
        children = self.registry.child_rows(self.sweep_id, [])
        for child in children:
            job = child.extra.get("slurm_job")
            if child.status in ENDED and child.id not in self.seen and job and array_id(job) == self.array:
                self.seen.add(child.id)
                self.outcomes.append(Outcome(child.id, "done") if child.status == "done" else
                                     Outcome(child.id, "failed", child.error or child.status))
                self.on_outcome(self.outcomes[-1])
        if not self.pending_cancelled and not any(child.status == "queued" for child in children):
            cancel(self.array, pending_only=True)
            self.pending_cancelled = True


def wait_for_running(registry, sweep_id: int) -> None:
    """Until no trial of the sweep is running anywhere (a process gone is reaped as interrupted)."""
    while registry.child_statuses(sweep_id).get("running"):
        time.sleep(WAIT_S)
        registry.reap()


EXECUTORS = {"local": Local, "slurm": Slurm}  # `edmctl sweep --executor NAME`


def cancel_sweep(ref, home=None) -> tuple[int, list[str]]:
    """scancel the sweep's job arrays still in Slurm's queue; (sweep run id, the arrays cancelled)."""
    from edmctl import slurm
    from edmctl.errors import UserError
    from edmctl.registry import Registry

    sweep = Registry(home).get(ref, kind="sweep")  # latest: the newest sweep, not a trial it ran
    if sweep.kind != "sweep":
        raise UserError(f"{sweep.label} is a {sweep.kind} run, not a sweep; `edmctl runs --kind sweep` lists the sweeps.")
    arrays = sweep.extra.get("slurm_arrays", [])
    if not arrays:
        raise UserError(f"{sweep.label} was not run with --executor slurm (no Slurm job array is recorded); "
                        "a local sweep stops with Ctrl-C.")
    slurm.check_commands()
    live = [array for array in arrays if slurm.in_queue(array)]
    for array in live:
        slurm.cancel(array)
    return sweep.id, live
