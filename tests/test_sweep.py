"""Sweeps: every trial a validated recipe before anything runs, recorded up front, resumable, parallel."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edmctl.cli.main import main
from edmctl.errors import UserError
from edmctl.registry import Registry
from edmctl.sweep import plan_sweep, read_sweep, run_sweep, sweep_results

MODEL = "ideal:digits?std=0.2&n=50"


def write_sweep(tmp_path, body: str, name: str = "sweep.toml") -> Path:
    """A sweep over an inline base recipe (training.batch = 96 marks it) on the small mixture model."""
    path = tmp_path / name
    path.write_text(f'model = "{MODEL}"\nseeds = "0-3"\n{body}\n[base.training]\nbatch = 96\n')
    return path


def test_grid_is_the_cartesian_product_and_zip_walks_together(tmp_path):
    spec = read_sweep(write_sweep(tmp_path, """
[grid]
"sampler.solver" = ["euler", "heun"]
sampler.s_churn = [0.0, 0.5, 1.0]
[zip]
"sampler.steps" = [4, 8]
"sampler.rho" = [5.0, 7.0]
"""))
    trials = plan_sweep(spec)
    assert len(trials) == 2 * 3 * 2
    assert {(t.axes["sampler.steps"], t.axes["sampler.rho"]) for t in trials} == {(4, 5.0), (8, 7.0)}
    assert {(t.recipe.sampler.solver, t.recipe.sampler.s_churn) for t in trials} == {
        (s, c) for s in ("euler", "heun") for c in (0.0, 0.5, 1.0)}
    assert all(t.recipe.training.batch == 96 for t in trials)  # the rest of the base recipe is kept
    assert len({t.recipe.hash() for t in trials}) == len(trials)


def test_assignments_that_sample_alike_run_once_and_are_reported(tmp_path, capsys):
    """At 4 steps γ_i = min(S_churn/4, √2 − 1) saturates from S_churn ≈ 1.66 (Algorithm 2), and with S_churn = 0
    the window and S_noise are never used: 2 × 4 × 2 assignments, 2 × (1 + 2 + 2) distinct samplers."""
    from edmctl.sampling import sample
    from edmctl.sweep.trials import cached_model

    path = write_sweep(tmp_path, """
[grid]
"sampler.solver" = ["euler", "heun"]
"sampler.s_churn" = [0.0, 1.0, 10.0, 40.0]
"sampler.s_noise" = [1.0, 1.007]
[set]
"sampler.steps" = 4
"sampler.s_tmin" = 0.05
""")
    duplicates = []
    trials = plan_sweep(read_sweep(path), duplicates=duplicates)
    assert [(t.recipe.sampler.s_churn, t.recipe.sampler.s_noise) for t in trials] == [
        (0.0, 1.0), (1.0, 1.0), (1.0, 1.007), (10.0, 1.0), (10.0, 1.007)] * 2
    assert len(duplicates) == 6 and {d.axes["sampler.s_churn"] for d in duplicates} == {0.0, 40.0}
    model = cached_model(MODEL)
    for duplicate in duplicates:  # each skipped assignment would have given its kept trial's samples, bit for bit
        axes = {k.split(".")[1]: v for k, v in duplicate.axes.items()}
        skipped = duplicate.kept.recipe.sampler.model_copy(update=axes)
        assert sample(model, skipped, [0, 1], 2).samples.equal(sample(model, duplicate.kept.recipe.sampler, [0, 1], 2).samples)
    assert main(["sweep", str(path), "--dry-run", "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["count"] == 10 and len(doc["duplicates"]) == 6 and "6 duplicate trial(s) skipped" in captured.err


def test_the_shipped_churn_grid_spans_churn_below_its_cap_with_every_trial_distinct():
    """recipes/churn_grid.toml: no two S_churn values at or above N(√2 − 1) (they would sample alike), no two
    trials with the same recipe or the same samples, and small enough to run in about a minute on one core."""
    import math

    from edmctl.sweep.expand import sampling_key

    spec = read_sweep(Path(__file__).resolve().parent.parent / "recipes" / "churn_grid.toml")
    trials = plan_sweep(spec)
    steps = {t.recipe.sampler.steps for t in trials}
    assert len(steps) == 1
    cap = steps.pop() * (math.sqrt(2) - 1)
    churns = {t.recipe.sampler.s_churn for t in trials}
    assert sum(c >= cap for c in churns) <= 1 and sum(0 < c < cap for c in churns) >= 2
    assert len({t.recipe.hash() for t in trials}) == len({sampling_key(t.recipe) for t in trials}) == len(trials) <= 24


def test_random_draws_follow_their_distributions_and_the_seed(tmp_path):
    body = """
[random]
n = 20
seed = 3
"sampler.rho" = { dist = "uniform", low = 5.0, high = 9.0 }
"sampler.s_churn" = { dist = "log-uniform", low = 0.1, high = 100.0 }
"sampler.steps" = { dist = "int", low = 4, high = 12 }
"sampler.solver" = { dist = "choice", values = ["euler", "heun"] }
"""
    trials = plan_sweep(read_sweep(write_sweep(tmp_path, body)))
    again = plan_sweep(read_sweep(write_sweep(tmp_path, body, "again.toml")))
    assert [t.axes for t in trials] == [t.axes for t in again]  # the same seed draws the same trials
    samplers = [t.recipe.sampler for t in trials]
    assert all(5 <= s.rho <= 9 and 0.1 <= s.s_churn <= 100 and 4 <= s.steps <= 12 for s in samplers)
    assert all(isinstance(t.axes["sampler.steps"], int) for t in trials)
    assert {s.solver for s in samplers} == {"euler", "heun"}
    assert sum(s.s_churn < 3.2 for s in samplers) >= 4  # log-uniform: about half below the geometric mean


def test_unequal_zip_lists_and_unknown_distributions_are_refused(tmp_path):
    with pytest.raises(UserError, match="equal lengths"):
        read_sweep(write_sweep(tmp_path, '[zip]\n"sampler.steps" = [4, 8]\n"sampler.rho" = [7.0]\n'))
    with pytest.raises(UserError, match="dist one of choice, uniform, log-uniform, int"):
        read_sweep(write_sweep(tmp_path, '[random]\nn = 2\n"sampler.rho" = { dist = "normal", low = 1, high = 2 }\n'))


def test_one_invalid_trial_stops_the_sweep_before_it_starts_and_names_it(tmp_path, home, capsys):
    path = write_sweep(tmp_path, '[grid]\n"sampler.steps" = [4, 8]\n"sampler.s_tmin" = [0.0, 100.0]\n"sampler.s_tmax" = [50.0]\n')
    assert main(["sweep", str(path)]) == 2
    message = capsys.readouterr().err
    assert "trial 1" in message and "s_tmin=100" in message and "must not exceed" in message
    assert Registry(home).list() == []  # nothing recorded


def test_a_sweep_records_every_trial_and_a_rerun_skips_the_finished(tmp_path, home):
    spec = read_sweep(write_sweep(tmp_path, '[grid]\n"sampler.steps" = [4, 8]\n"sampler.solver" = ["euler", "heun"]\n'))
    outcome = run_sweep(spec, home=home, jobs=1)
    assert [o.status for o in outcome.outcomes] == ["done"] * 4
    results = sweep_results(outcome.plan.sweep_id, home)
    assert results.metric == "rms_median" and results.status == "done"
    values = [row.value for row in results.rows]
    assert values == sorted(values) and all(v > 0 for v in values)  # sorted best (lowest) first
    best = {(r.axes["sampler.steps"], r.axes["sampler.solver"]): r.value for r in results.rows}
    assert best[(8, "heun")] < best[(4, "heun")]  # more steps converge towards the reference
    assert [a.kind for a in Registry(home).artifacts(outcome.plan.sweep_id) if a.path.endswith(".png")] == ["plot"]
    trials = Registry(home).children(outcome.plan.sweep_id)
    assert {t.status for t in trials} == {"done"} and {t.parent_id for t in trials} == {outcome.plan.sweep_id}
    again = run_sweep(read_sweep(spec.path), home=home, jobs=1)
    assert again.plan.sweep_id == outcome.plan.sweep_id and again.outcomes == []
    assert len(again.plan.skipped["done"]) == 4


def test_a_failing_trial_does_not_stop_the_others_and_exits_1(tmp_path, home, capsys, monkeypatch):
    from edmctl.sweep import trials

    def broken(recipe, run, settings, device):
        raise RuntimeError("the trial broke")

    monkeypatch.setitem(trials.TRIALS, "sample", broken)  # jobs=1 runs the trials in this process
    path = write_sweep(tmp_path, '[grid]\n"sampler.steps" = [2, 3]\n')
    assert main(["sweep", str(path), "--jobs", "1"]) == 1  # every trial fails, each recorded
    captured = capsys.readouterr()
    assert captured.err.count("failed") >= 2 and "rerun them" in captured.err
    sweep = Registry(home).list(kind="sweep")[0]
    assert sweep.status == "failed"
    assert {t.status for t in Registry(home).children(sweep.id)} == {"failed"}


def _done_trials(home: Path) -> dict[int, float]:
    registry = Registry(home)
    if not (home / "registry.db").exists():
        return {}
    return {r.id: r.started for r in registry.list(kind="sample", status="done", limit=None)}


@pytest.mark.slow  # a subprocess that imports torch, killed midway
def test_a_killed_sweep_resumes_without_rerunning_finished_trials(tmp_path, home):
    path = write_sweep(tmp_path, '[grid]\n"sampler.steps" = [120, 121, 122, 123, 124, 125, 126, 127, 128, 129]\n')
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EDMCTL_HOME": str(home)}
    process = subprocess.Popen([sys.executable, "-m", "edmctl", "sweep", str(path)], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(_done_trials(home)) < 2 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = _done_trials(home)
    assert 2 <= len(finished) < 10, "the sweep must be killed midway"
    outcome = run_sweep(read_sweep(path), home=home, jobs=1)
    assert set(finished).isdisjoint(o.trial_id for o in outcome.outcomes)
    after = _done_trials(home)
    assert len(after) == 10 and all(after[i] == started for i, started in finished.items())  # not rerun
    assert Registry(home).get(outcome.plan.sweep_id).status == "done"


@pytest.mark.slow  # two spawned workers, each importing torch
def test_parallel_workers_share_one_registry_without_errors(tmp_path, home):
    spec = read_sweep(write_sweep(tmp_path, '[grid]\n"sampler.steps" = [3, 4, 5, 6, 7, 8]\n'))
    outcome = run_sweep(spec, home=home, jobs=2)
    assert sorted(o.status for o in outcome.outcomes) == ["done"] * 6, [o.error for o in outcome.outcomes]
    trials = Registry(home).children(outcome.plan.sweep_id)
    assert {t.status for t in trials} == {"done"} and all(t.error is None for t in trials)
    pids = {t.pid for t in trials}  # worker processes, at most two (under load one may claim every trial first)
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids
    assert {t.extra["numerics"]["intra_op_threads"] for t in trials} == {1}  # EDMCTL_THREADS (conftest), not cores ÷ jobs
    serial = run_sweep(read_sweep(write_sweep(tmp_path, '[grid]\n"sampler.steps" = [3, 4, 5, 6, 7, 8]\n', "s.toml")),
                       home=tmp_path / "serial", jobs=1)
    by_steps = lambda ref, h: {r.axes["sampler.steps"]: r.value for r in sweep_results(ref, h).rows}
    assert by_steps(outcome.plan.sweep_id, home) == pytest.approx(by_steps(serial.plan.sweep_id, tmp_path / "serial"), rel=1e-9)


def test_dry_run_lists_trials_and_records_nothing(tmp_path, home, capsys):
    path = write_sweep(tmp_path, '[grid]\n"sampler.steps" = [4, 8, 16]\n')
    assert main(["sweep", str(path), "--dry-run", "--json"]) == 0
    assert '"count": 3' in capsys.readouterr().out
    assert not (home / "registry.db").exists()


def _logged_trial(log: str, recipe, run) -> dict[str, float]:
    with open(log, "a") as f:
        f.write(f"{run.id}\n")
    time.sleep(0.05)  # long enough for the processes to interleave
    return {"rms_median": float(recipe.sampler.steps)}


def _sweep_process(path: str, home: str, log: str, barrier, codes) -> None:
    """One `edmctl sweep FILE` (in a forked process) whose trials append their run id to `log` (fast stand-ins)."""
    from edmctl.sweep import trials

    trials.TRIALS["sample"] = lambda recipe, run, settings, device: _logged_trial(log, recipe, run)
    os.environ["EDMCTL_HOME"] = home
    barrier.wait(60)
    codes.put(main(["sweep", path, "--jobs", "1"]))


def test_concurrent_sweeps_of_one_file_share_the_work_and_run_each_trial_once(tmp_path, home, registry_backend):
    """Severe bug 2: three `edmctl sweep` of the same file at once record one sweep and one row per trial, and
    every trial runs exactly once (find-or-create and claiming each lock what they decide on), on each backend."""
    import multiprocessing

    from edmctl.sweep.trials import cached_model

    cached_model(MODEL)  # loaded once here, inherited by the forked processes
    path = write_sweep(tmp_path, '[grid]\n"sampler.steps" = [2, 3, 4, 5, 6, 7]\n')
    ctx, log = multiprocessing.get_context("fork"), tmp_path / "ran.txt"
    barrier, codes = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_sweep_process, args=(str(path), str(home), str(log), barrier, codes)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0] and sorted(codes.get(timeout=5) for _ in procs) == [0, 0, 0]
    registry = Registry(home)
    sweeps = registry.list(kind="sweep")
    assert len(sweeps) == 1 and sweeps[0].status == "done"
    trials = registry.children(sweeps[0].id)
    ran = [int(line) for line in log.read_text().split()]
    assert len(trials) == 6 and {t.status for t in trials} == {"done"}
    assert sorted(ran) == sorted(t.id for t in trials)  # each trial ran exactly once, in one of the processes


def test_a_finished_sweep_missing_a_trial_runs_it_again(tmp_path, home, monkeypatch):
    """A done sweep whose trial was removed (`runs rm`) is reopened for the missing trial instead of refusing."""
    from edmctl.sweep import trials

    monkeypatch.setitem(trials.TRIALS, "sample", lambda r, run, s, d: _logged_trial(str(tmp_path / "ran"), r, run))
    path = write_sweep(tmp_path, '[grid]\n"sampler.steps" = [2, 3]\n')
    first = run_sweep(read_sweep(path), home=home, jobs=1)
    registry = Registry(home)
    registry.remove(registry.removal_plan(first.outcomes[0].trial_id))
    again = run_sweep(read_sweep(path), home=home, jobs=1)
    assert again.plan.sweep_id == first.plan.sweep_id and len(again.outcomes) == 1
    assert registry.get(first.plan.sweep_id).status == "done"
    assert {t.status for t in registry.children(first.plan.sweep_id)} == {"done"}


def test_a_sample_trial_on_an_analytic_model_logs_every_sampler_error_by_name(tmp_path, home):
    from edmctl.evaluate import SAMPLER_ERRORS

    spec = read_sweep(write_sweep(tmp_path, 'metric = "flips"\n[grid]\n"sampler.steps" = [4]\n'))
    outcome = run_sweep(spec, home=home, jobs=1)
    assert [o.status for o in outcome.outcomes] == ["done"] and sweep_results(outcome.plan.sweep_id, home).metric == "flips"
    (trial,) = Registry(home).children(outcome.plan.sweep_id)
    assert set(SAMPLER_ERRORS) | {"nfe", "seconds"} == set(Registry(home).metrics(trial.id))
