"""Running the queued children of a run (a sweep's trials, a ladder's configs): in this process (`jobs=1`) or in
`jobs` worker processes (multiprocessing spawn).

Trials are claimed, never handed out: each process (this one, or each worker) takes the oldest queued child
through the registry's atomic claim (`registry.start_next`), so any number of schedulers, in any number of
`edmctl sweep` invocations, share one queue and each trial runs once. A worker is started once (it imports torch
and loads the model once), claims and runs trials until none is queued, and reports each start and outcome over
its pipe; on a machine with GPUs worker i sees only GPU `gpus[i % len(gpus)]` (CUDA_VISIBLE_DEVICES). Each worker
runs torch on the scheduler's thread count (`edmctl.threads`: `--threads`, EDMCTL_THREADS), not a share of it.
A worker dies with its scheduler (Linux: the parent-death signal is SIGTERM, so a `kill -9` of the scheduler ends
the open trial `interrupted`; elsewhere it stops claiming once its parent is gone). Ctrl-C: the workers get
SIGINT, their open trials end `interrupted` (the registry's run lifecycle), and the scheduler re-raises after
they have stopped; a worker that dies mid-trial leaves a trial that the registry reaps as `interrupted`.
"""

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

STOP_TIMEOUT_S = 30.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass
class Outcome:
    trial_id: int
    status: str  # done or failed
    error: str | None = None


def execute_next(parent_id: int, settings: dict, home: Path | str | None, device: str,
                 on_start: Callable[[int], None] = lambda trial_id: None) -> Outcome | None:
    """Claim and run the oldest queued trial of `parent_id` inside the registry's lifecycle; None when none is
    queued. An error fails this trial only (Ctrl-C propagates)."""
    from edmctl.recipe import Recipe
    from edmctl.registry import start_next
    from edmctl.sweep.trials import TRIALS

    claimed = None
    try:
        with start_next(parent_id, home=home) as run:
            if run is None:
                return None
            claimed = run.id
            on_start(run.id)
            recipe = Recipe.model_validate(run.registry.get(run.id).recipe)
            run.log_metrics(TRIALS[settings["trial"]](recipe, run, settings, device))
    except Exception as e:  # recorded on the run by its lifecycle; the sweep goes on
        if claimed is None:
            raise  # the claim itself failed: the registry's problem, not a trial's
        return Outcome(claimed, "failed", f"{type(e).__name__}: {e}")
    return Outcome(claimed, "done")


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def visible_gpus() -> list[int]:
    """GPU indices this process may use (none without CUDA)."""
    import torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def default_jobs() -> int:
    """One worker per GPU; one on a CPU-only machine."""
    return max(1, len(visible_gpus()))


def run_serial(parent_id: int, settings: dict, home, on_outcome: Callable[[Outcome], None]) -> list[Outcome]:
    device = default_device()
    outcomes = []
    while (outcome := execute_next(parent_id, settings, home, device)) is not None:
        outcomes.append(outcome)
        on_outcome(outcome)
    return outcomes


def die_with_parent(parent_pid: int) -> None:
    """Get SIGTERM when the scheduler dies, even by SIGKILL (Linux prctl); if it is already gone, stop now."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # no prctl (macOS): the loop in worker_main checks the parent between trials
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


def worker_main(conn, parent_id: int, settings: dict, home, gpu: int | None, threads: int, scheduler_pid: int) -> None:
    """A worker process: pin the GPU and the CPU threads, then claim and run trials of `parent_id` until none is
    queued (or the scheduler is gone), sending ("start", id) and ("done", Outcome) for each."""
    from edmctl.threads import use

    die_with_parent(scheduler_pid)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    use(threads)  # before torch loads
    device = default_device()
    try:
        while os.getppid() == scheduler_pid:
            outcome = execute_next(parent_id, settings, home, device, lambda trial_id: conn.send(("start", trial_id)))
            if outcome is None:
                break
            conn.send(("done", outcome))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass


class Worker:
    def __init__(self, context, parent_id: int, settings: dict, home, gpu: int | None, threads: int):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=worker_main, daemon=True,
                                       args=(child, parent_id, settings, home, gpu, threads, os.getpid()))
        self.process.start()
        child.close()
        self.trial: int | None = None
        self.finished = False

    def receive(self) -> Outcome | None:
        """Read one message: a start (None) or an outcome; at the end of the worker, set `finished` and return a
        failed outcome if it died mid-trial (else None)."""
        try:
            if not self.conn.poll() and not self.process.is_alive():
                raise EOFError  # exited with nothing more to say (the pipe may be held open by a child of it)
            kind, value = self.conn.recv()
        except (EOFError, ConnectionResetError, OSError):
            return self._end()
        self.trial = value if kind == "start" else None
        return value if kind == "done" else None

    def _end(self) -> Outcome | None:
        self.finished = True
        self.process.join(STOP_TIMEOUT_S)
        trial, self.trial = self.trial, None
        if trial is None:
            return None
        return Outcome(trial, "failed", f"worker process died (exit code {self.process.exitcode})")

    def stop(self, interrupt: bool) -> None:
        """Interrupt its trial (SIGINT) when asked; wait for it to end; kill it if it does not stop."""
        if interrupt and self.process.is_alive():
            os.kill(self.process.pid, signal.SIGINT)
        self.process.join(STOP_TIMEOUT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _gpu_for(index: int, gpus: list[int]) -> int | None:
    return gpus[index % len(gpus)] if gpus else None


def run_parallel(parent_id: int, settings: dict, home, jobs: int, gpus: list[int],
                 on_outcome: Callable[[Outcome], None]) -> list[Outcome]:
    """Run the queued trials of `parent_id` on `jobs` spawned workers, each claiming the next one when free; a
    worker that dies mid-trial is replaced (its trial is reported failed)."""
    import multiprocessing
    from multiprocessing.connection import wait

    from edmctl.allocator import apply_to_children
    from edmctl.threads import requested

    apply_to_children()  # the spawned workers start with edmctl's malloc settings
    context = multiprocessing.get_context("spawn")
    threads = requested(None)
    workers = [Worker(context, parent_id, settings, home, _gpu_for(i, gpus), threads) for i in range(jobs)]
    outcomes, interrupted = [], False
    try:
        while any(not w.finished for w in workers):
            live = [w for w in workers if not w.finished]
            ready = wait([w.conn for w in live] + [w.process.sentinel for w in live])
            for index, worker in enumerate(workers):
                if worker.finished or (worker.conn not in ready and worker.process.sentinel not in ready):
                    continue
                outcome = worker.receive()
                if outcome is not None:
                    outcomes.append(outcome)
                    on_outcome(outcome)
                if worker.finished and outcome is not None:  # died mid-trial: a fresh worker goes on claiming
                    workers[index] = Worker(context, parent_id, settings, home, _gpu_for(index, gpus), threads)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        for worker in workers:
            worker.stop(interrupt=interrupted and worker.trial is not None)
    return outcomes


def run_trials(parent_id: int, settings: dict, home=None, jobs: int | None = None,
               on_outcome: Callable[[Outcome], None] = lambda outcome: None) -> list[Outcome]:
    """Run the queued children of run `parent_id` with `jobs` workers (default: one per GPU, else 1), sharing the
    queue with any other process doing the same; returns the outcomes of the trials run here."""
    from edmctl.registry import Registry

    jobs = default_jobs() if jobs is None else jobs
    queued = Registry(home).child_statuses(parent_id).get("queued", 0)
    if jobs <= 1 or queued <= 1:
        return run_serial(parent_id, settings, home, on_outcome)
    return run_parallel(parent_id, settings, home, min(jobs, queued), visible_gpus(), on_outcome)
