"""Running queued trials: in this process (`jobs=1`) or in `jobs` worker processes (multiprocessing spawn).

Each worker is started once (it imports torch and loads the model once) and then runs one trial at a time,
sent over its own pipe; on a machine with GPUs worker i sees only GPU `gpus[i % len(gpus)]`
(CUDA_VISIBLE_DEVICES). A worker whose scheduler is gone exits after its trial (its pipe closes). Ctrl-C:
the workers get SIGINT, their open trials end `interrupted` (the registry's run lifecycle), and the
scheduler re-raises after they have stopped; a worker that dies mid-trial leaves a trial that the registry
reaps as `interrupted`.
"""

import os
import signal
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

STOP_TIMEOUT_S = 30.0


@dataclass
class Outcome:
    trial_id: int
    status: str  # done or failed
    error: str | None = None


def execute_trial(trial_id: int, settings: dict, home: Path | str | None, device: str) -> Outcome:
    """Run one queued trial inside the registry's lifecycle; an error fails this trial only (Ctrl-C propagates)."""
    from edmctl.recipe import Recipe
    from edmctl.registry import Registry, start_run
    from edmctl.sweep.trials import TRIALS

    try:
        recipe = Recipe.model_validate(Registry(home).get(trial_id).recipe)
        with start_run(trial_id, home=home) as run:
            run.log_metrics(TRIALS[settings["trial"]](recipe, run, settings, device))
    except Exception as e:  # recorded on the run by its lifecycle; the sweep goes on
        return Outcome(trial_id, "failed", f"{type(e).__name__}: {e}")
    return Outcome(trial_id, "done")


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


def run_serial(trial_ids: list[int], settings: dict, home, on_outcome: Callable[[Outcome], None]) -> list[Outcome]:
    device = default_device()
    outcomes = []
    for trial_id in trial_ids:
        outcomes.append(execute_trial(trial_id, settings, home, device))
        on_outcome(outcomes[-1])
    return outcomes


def worker_main(conn, settings: dict, home, gpu: int | None, threads: int) -> None:
    """A worker process: pin the GPU and its share of the CPU threads, then run the trial ids sent over `conn`
    until None or the pipe closes."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    import torch

    torch.set_num_threads(threads)
    device = default_device()
    try:
        while (trial_id := conn.recv()) is not None:
            conn.send(execute_trial(trial_id, settings, home, device))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass


class Worker:
    def __init__(self, context, settings: dict, home, gpu: int | None, threads: int):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=worker_main, args=(child, settings, home, gpu, threads), daemon=True)
        self.process.start()
        child.close()
        self.trial: int | None = None

    def give(self, trial_id: int) -> None:
        self.trial = trial_id
        self.conn.send(trial_id)

    def stop(self, interrupt: bool) -> None:
        """Ask the worker to finish (None), or interrupt its trial (SIGINT); kill it if it does not stop."""
        try:
            if interrupt and self.process.is_alive():
                os.kill(self.process.pid, signal.SIGINT)
            else:
                self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(STOP_TIMEOUT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _collect(worker: Worker) -> Outcome:
    """The finished trial of a worker that answered, or a failure if the worker died mid-trial."""
    try:
        outcome = worker.conn.recv()
    except (EOFError, ConnectionResetError):
        outcome = Outcome(worker.trial, "failed", f"worker process died (exit code {worker.process.exitcode})")
    worker.trial = None
    return outcome


def _gpu_for(index: int, gpus: list[int]) -> int | None:
    return gpus[index % len(gpus)] if gpus else None


def run_parallel(trial_ids: list[int], settings: dict, home, jobs: int, gpus: list[int],
                 on_outcome: Callable[[Outcome], None]) -> list[Outcome]:
    """Run the trials on `jobs` spawned workers, each given the next trial as soon as it is free."""
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")
    pending, outcomes = deque(trial_ids), []
    threads = max(1, (os.cpu_count() or 1) // jobs)
    workers = [Worker(context, settings, home, _gpu_for(i, gpus), threads) for i in range(min(jobs, len(trial_ids)))]
    interrupted = False
    try:
        while pending or any(w.trial is not None for w in workers):
            for worker in workers:
                if worker.trial is None and pending:
                    worker.give(pending.popleft())
            busy = {w.conn: w for w in workers if w.trial is not None}
            busy.update({w.process.sentinel: w for w in workers if w.trial is not None})
            for ready in wait(list(busy)):
                worker = busy[ready]
                if worker.trial is not None and (ready is worker.conn or not worker.process.is_alive()):
                    outcomes.append(_collect(worker))
                    on_outcome(outcomes[-1])
                    if not worker.process.is_alive():
                        index = workers.index(worker)
                        workers[index] = Worker(context, settings, home, _gpu_for(index, gpus), threads)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        for worker in workers:
            worker.stop(interrupt=interrupted and worker.trial is not None)
    return outcomes


def run_trials(trial_ids: list[int], settings: dict, home=None, jobs: int | None = None,
               on_outcome: Callable[[Outcome], None] = lambda outcome: None) -> list[Outcome]:
    """Run queued trials with `jobs` workers (default: one per GPU, else 1); returns each trial's outcome."""
    jobs = default_jobs() if jobs is None else jobs
    if jobs <= 1 or len(trial_ids) <= 1:
        return run_serial(trial_ids, settings, home, on_outcome)
    return run_parallel(trial_ids, settings, home, jobs, visible_gpus(), on_outcome)
