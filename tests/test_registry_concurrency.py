"""Several processes write at once without `database is locked` or a lost row, on SQLite and on PostgreSQL
(`registry_backend`); a process killed with -9 is reaped."""

import multiprocessing
import os
import signal

import pytest

from edmctl.registry import Registry, environment, open_run

WRITERS, RUNS_EACH, STEPS, KEYS = 8, 3, 5, 4


def _no_torch() -> dict:
    return {"torch_version": "test", "devices_json": '["cpu"]', "world_size": 1}


def _writer(home: str, writer: int, errors) -> None:
    environment.torch_info = _no_torch  # a fresh child: keep it light, the writes are what is tested
    try:
        for r in range(RUNS_EACH):
            with open_run(kind="train", name=f"w{writer}-{r}", seeds=[writer, r], home=home) as run:
                for step in range(STEPS):
                    run.log_metrics({f"m{k}": writer + 0.1 * step for k in range(KEYS)}, step=step)
    except Exception as e:  # reported to the parent, which asserts there were none
        errors.put(f"{type(e).__name__}: {e}")


def test_eight_processes_write_runs_and_metrics_at_once(tmp_path, registry_backend):
    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    Registry(tmp_path, create=True)  # schema ready; writers still race on everything else
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, errors)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    reported = []
    while not errors.empty():
        reported.append(errors.get())
    assert reported == [] and [p.exitcode for p in procs] == [0] * WRITERS
    reg = Registry(tmp_path)
    runs = reg.list(limit=None)
    assert sorted(r.name for r in runs) == sorted(f"w{w}-{r}" for w in range(WRITERS) for r in range(RUNS_EACH))
    assert {r.status for r in runs} == {"done"}
    for run in runs:
        metrics = reg.metrics(run.id)
        assert sorted(metrics) == [f"m{k}" for k in range(KEYS)] and {m.count for m in metrics.values()} == {STEPS}
        assert len(reg.history(run.id, "m0")) == STEPS


def _sleeper(home: str, ready) -> None:
    environment.torch_info = _no_torch
    try:
        with open_run(kind="sample", home=home):
            ready.set()
            signal.pause()
    except KeyboardInterrupt:
        pass


@pytest.mark.parametrize("sig, error", [(signal.SIGKILL, "reaped"), (signal.SIGTERM, "interrupted")])
def test_a_killed_process_ends_interrupted(tmp_path, sig, error, registry_backend):
    """kill -9 leaves the row running until a listing reaps it; SIGTERM is handled by the run itself."""
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_sleeper, args=(str(tmp_path), ready))
    proc.start()
    assert ready.wait(60)
    reg = Registry(tmp_path)
    assert reg.get("latest").status == "running" and reg.reap() == []
    os.kill(proc.pid, sig)
    proc.join(30)
    run = reg.list()[0]  # a listing reaps
    assert (run.status, run.pid) == ("interrupted", proc.pid) and error in run.error
