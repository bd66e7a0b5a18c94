"""Sweeps and training on Slurm (`--executor slurm`): the request and its checks (fast, no cluster), the array
task's claim loop against a real registry (fast), and end to end on a throwaway one-node Slurm cluster started
by the tests (`slurm_cluster` in conftest.py; slow)."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edmctl import paths
from edmctl.cli.main import main
from edmctl.errors import UserError
from edmctl.slurm import SlurmRequest, check_shared_registry

ROOT = Path(__file__).resolve().parents[1]
TINY_TRAINING = ["network.model_channels=16", "network.attn_resolutions=[]", "training.batch=16",
                 "training.tick_kimg=0.032", "training.snapshot_kimg=0.064", "training.duration_kimg=0.064"]


def sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def write_sweep(folder: Path, seeds: str, steps: int, grid: str, name: str = "s.toml") -> Path:
    path = folder / name
    path.write_text(f'base = "{ROOT / "recipes" / "digits.toml"}"\ntrial = "sample"\nmodel = "ideal:digits?std=0.2"\n'
                    f'seeds = "{seeds}"\nmetric = "fd"\n[set]\n"sampler.steps" = {steps}\n[grid]\n{grid}\n')
    return path


# -- the request, without a cluster ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, minutes", [("01:30:00", 90), ("00:00:01", 1), ("1-00:00:30", 1441), ("48:00:00", 2880)])
def test_time_limit_is_whole_minutes_rounded_up(text, minutes):
    assert SlurmRequest(time=text).minutes() == minutes


@pytest.mark.parametrize("text", ["90", "1:30", "01:61:00", "01:00:60", "soon", ""])
def test_a_malformed_time_limit_is_refused(text):
    with pytest.raises(UserError, match="--time"):
        SlurmRequest(time=text).minutes()


def test_slurm_options_become_sbatch_options():
    request = SlurmRequest(options=("account=lab", "constraint=a100&ib", "mail-type=END"))
    assert request.sbatch_options() == {"account": "lab", "constraint": "a100&ib", "mail-type": "END"}
    for bad in ("account", "=lab", "account=", "--account=lab", "a b=c"):
        with pytest.raises(UserError, match="--slurm-option"):
            SlurmRequest(options=(bad,)).sbatch_options()


def test_slurm_refuses_a_sqlite_registry_unless_allowed(tmp_path, monkeypatch):
    monkeypatch.delenv("EDMCTL_DB_URL", raising=False)
    with pytest.raises(UserError, match="EDMCTL_DB_URL.*--allow-sqlite"):
        check_shared_registry(tmp_path, allow_sqlite=False)
    check_shared_registry(tmp_path, allow_sqlite=True)
    monkeypatch.setenv("EDMCTL_DB_URL", "postgresql+psycopg://team@db.example/edmctl")
    check_shared_registry(tmp_path, allow_sqlite=False)  # a server every node reaches: no connection needed to say so


def test_slurm_refuses_a_home_other_users_can_write(tmp_path, monkeypatch, capsys):
    """submitit's job pickles, which every task unpickles, go under EDMCTL_HOME: never in a folder anyone can
    write (a sticky one above it, such as /tmp, is fine)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("EDMCTL_HOME", str(shared / "home"))
    sweep = write_sweep(tmp_path, "0-3", 4, '"sampler.s_churn" = [0.0, 10.0]')
    assert main(["sweep", str(sweep), "--executor", "slurm", "--allow-sqlite"]) == 2
    assert f"{shared} is writable by every user" in " ".join(capsys.readouterr().err.split())
    assert not (shared / "home").exists()
    shared.chmod(0o1777)
    paths.check_code_folder(shared / "home", "pickles")
    (shared / "home").mkdir(mode=0o777)
    (shared / "home").chmod(0o777)
    with pytest.raises(UserError, match="writable by every user"):
        paths.check_code_folder(shared / "home", "pickles")


def test_missing_submitit_names_the_extra(monkeypatch):
    from edmctl import slurm

    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    with pytest.raises(UserError, match=re.escape("edmctl[slurm]")):
        slurm.submitit()


@pytest.mark.parametrize("argv, message", [
    (["--executor", "slurm"], "--allow-sqlite"),
    (["--executor", "slurm", "--jobs", "2", "--allow-sqlite"], "--jobs applies to --executor local"),
    (["--partition", "gpu"], "--partition applies to --executor slurm"),
    (["--executor", "slurm", "--allow-sqlite", "--time", "2h"], "--time"),
    (["--executor", "pbs"], "--executor 'pbs' is not one of local, slurm"),
])
def test_bad_slurm_sweep_requests_exit_2_and_record_nothing(home, tmp_path, capsys, argv, message):
    sweep = write_sweep(tmp_path, "0-3", 4, '"sampler.s_churn" = [0.0, 10.0]')
    assert main(["sweep", str(sweep), *argv]) == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert not home.exists()


@pytest.mark.parametrize("argv, message", [
    (["--executor", "slurm", "--nproc", "2"], "--nproc applies to --executor local"),
    (["--nodes", "2"], "--nodes applies to --executor slurm"),
    (["--executor", "slurm", "--nodes", "1"], "--allow-sqlite"),
])
def test_bad_slurm_training_requests_exit_2(home, capsys, argv, message):
    assert main(["train", str(ROOT / "recipes" / "digits.toml"), *argv]) == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert not home.exists()


def test_rendezvous_is_c10d_on_the_first_host_with_a_port_of_the_job():
    from edmctl.train.slurm import PORT_BASE, PORT_SPAN, rendezvous

    options = rendezvous("123457", ["node7", "node8"], 2)
    assert options == ["--nnodes=2", "--rdzv_backend=c10d", f"--rdzv_endpoint=node7:{PORT_BASE + 123457 % PORT_SPAN}",
                       "--rdzv_id=123457"]


def test_cancel_of_a_sweep_without_job_arrays_says_so(home, tmp_path, capsys):
    from edmctl.sweep import plan_sweep, read_sweep
    from edmctl.sweep.runner import queue_trials

    spec = read_sweep(write_sweep(tmp_path, "0-3", 4, '"sampler.s_churn" = [0.0]'))
    plan = queue_trials(spec, plan_sweep(spec), None)
    assert main(["sweep", "cancel", f"run{plan.sweep_id}"]) == 2
    assert "not run with --executor slurm" in capsys.readouterr().err
    assert main(["sweep", "cancel", f"run{plan.todo[0]}"]) == 2  # a trial, not a sweep


# -- the array task against a real registry, without a cluster ---------------------------------------------------

def test_an_array_task_runs_queued_trials_once_and_a_rerun_task_runs_none(home, tmp_path, monkeypatch):
    """A task claims trials until none is queued; Slurm re-running it (requeue, resubmission) runs nothing twice."""
    from edmctl.registry import Registry
    from edmctl.slurm import registry_env
    from edmctl.sweep import plan_sweep, read_sweep
    from edmctl.sweep.executors import run_task
    from edmctl.sweep.runner import queue_trials

    spec = read_sweep(write_sweep(tmp_path, "0-3", 4, '"sampler.rho" = [5.0, 7.0, 9.0]'))
    plan = queue_trials(spec, plan_sweep(spec), home)
    env = registry_env(Registry(home))
    for name, value in env.items():  # what the task sets, undone after the test
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")
    assert sorted(run_task(plan.sweep_id, spec.settings(), env)) == sorted(plan.todo)
    assert run_task(plan.sweep_id, spec.settings(), env) == []
    trials = Registry(home).children(plan.sweep_id)
    assert [(t.status, t.extra["slurm_job"]) for t in trials] == [("done", "77_3")] * 3
    assert {t.extra["numerics"]["intra_op_threads"] for t in trials} == {2}  # the task's CPUs, recorded


# -- on a one-node Slurm cluster ---------------------------------------------------------------------------------

def churn_grid(folder: Path, seeds: str) -> Path:
    """recipes/churn_grid.toml with its base recipe by absolute path and fewer seeds (smaller trials)."""
    text = (ROOT / "recipes" / "churn_grid.toml").read_text()
    text = re.sub(r'(?m)^base = "digits.toml"', f'base = "{ROOT / "recipes" / "digits.toml"}"', text)
    text = re.sub(r'(?m)^seeds = "[^"]*"', f'seeds = "{seeds}"', text)
    path = folder / "churn_grid.toml"
    path.write_text(text)
    return path


def task_results(registry, sweep) -> list[int]:
    """The trial ids every task of the sweep's job arrays returned (tasks cancelled before starting return none)."""
    from submitit.core.utils import pickle_load

    ran = []
    for array in sweep.extra["slurm_arrays"]:
        for result in sorted(registry.run_dir(sweep.id).glob(f"slurm/{array}_*/{array}_*_result.pkl")):
            outcome, value = pickle_load(result)
            assert outcome == "success", value
            ran += value
    return ran


def fd_by_axes(registry, sweep_id: int) -> dict[str, float]:
    return {repr(sorted(t.extra["axes"].items())): registry.metrics(t.id)["fd"].value
            for t in registry.children(sweep_id)}


@pytest.mark.slow
def test_churn_grid_on_slurm_runs_every_trial_once_with_local_results(slurm_cluster, postgres_url, tmp_path,
                                                                      monkeypatch, capsys):
    """recipes/churn_grid.toml (fewer seeds) as a job array against PostgreSQL, compared with a local run."""
    from edmctl.registry import Registry

    sweep_file = churn_grid(tmp_path, "0-63")
    monkeypatch.delenv("EDMCTL_DB_URL", raising=False)
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "local"))
    # A fresh process, as each array task is (not this one, whose caches earlier tests may have filled)
    subprocess.run([sys.executable, "-m", "edmctl", "sweep", str(sweep_file), "--jobs", "1"], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True)
    local = fd_by_axes(Registry(tmp_path / "local"), 1)

    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "cluster"))
    monkeypatch.setenv("EDMCTL_DB_URL", postgres_url)
    assert main(["sweep", str(sweep_file), "--executor", "slurm", "--time", "00:10:00"]) == 0
    registry = Registry(tmp_path / "cluster")
    sweep = registry.list(kind="sweep")[0]
    trials = registry.children(sweep.id)
    assert {t.status for t in trials} == {"done"} and len(trials) == len(local)
    assert sorted(task_results(registry, sweep)) == sorted(t.id for t in trials)  # each trial run exactly once
    assert all(t.extra["slurm_job"].startswith(f"{sweep.extra['slurm_arrays'][0]}_") for t in trials)
    assert fd_by_axes(registry, sweep.id) == local
    capsys.readouterr()
    assert main(["sweep", "show", sweep.label]) == 0
    shown = capsys.readouterr().out
    assert "slurm job" in shown and all(f" {t.extra['slurm_job']} " in shown for t in trials)


@pytest.mark.slow
def test_trials_of_cancelled_tasks_end_interrupted_and_a_rerun_completes_them(slurm_cluster, postgres_url, tmp_path,
                                                                             monkeypatch):
    """Two trials of some seconds, one task at a time: `scancel` of the first task interrupts its trial, the next
    task takes the other one, `edmctl sweep cancel` interrupts that; Ctrl-C of a rerun cancels its array and
    interrupts its trial; running the sweep again completes both."""
    from edmctl.registry import Registry

    monkeypatch.setenv("EDMCTL_DB_URL", postgres_url)
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    sweep_file = write_sweep(tmp_path, "0-511", 64, '"sampler.rho" = [6.0, 7.0]')
    command = [sys.executable, "-m", "edmctl", "sweep", str(sweep_file), "--executor", "slurm", "--max-parallel", "1"]
    submitter = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = wait_for_running_trial(tmp_path / "home", submitter, after=set())
    slurm_cluster.run(["scancel", first.extra["slurm_job"]])
    second = wait_for_running_trial(tmp_path / "home", submitter, after={first.id})
    assert main(["sweep", "cancel", f"run{first.parent_id}"]) == 0
    out, err = submitter.communicate(timeout=120)
    assert submitter.returncode == 1, err
    registry = Registry(tmp_path / "home")
    assert [registry.get(t.id).status for t in (first, second)] == ["interrupted", "interrupted"]

    rerun = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    third = wait_for_running_trial(tmp_path / "home", rerun, after=set())
    rerun.send_signal(signal.SIGINT)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 130, err
    array = registry.get(first.parent_id).extra["slurm_arrays"][-1]
    assert slurm_cluster.run(["squeue", "-h", "-j", array, "-t", "PENDING,RUNNING"], check=False).stdout.strip() == ""
    assert registry.get(third.id).status == "interrupted"

    assert main(["sweep", str(sweep_file), "--executor", "slurm"]) == 0
    assert [registry.get(t.id).status for t in (first, second, registry.get(first.parent_id))] == ["done"] * 3


def wait_for_running_trial(home: Path, process: subprocess.Popen, after: set[int], timeout_s: float = 120.0):
    """The first trial other than those `after` that runs in a Slurm task."""
    from edmctl.registry import Registry

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        running = [r for r in Registry(home).list(kind="sample", status="running") if r.id not in after]
        if running and running[0].extra.get("slurm_job"):
            return running[0]
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"no trial started on Slurm: {process.communicate()}")


@pytest.mark.slow
def test_training_on_slurm_runs_torchrun_with_gloo_and_records_one_run(slurm_cluster, tmp_path, monkeypatch, capsys):
    """`--nodes 1 --gpus-per-node 0`: torchrun with 2 CPU processes (gloo) in one job; a SQLite registry, allowed."""
    from edmctl.registry import Registry

    monkeypatch.delenv("EDMCTL_DB_URL", raising=False)
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    argv = ["train", str(ROOT / "recipes" / "digits.toml"), *sets(TINY_TRAINING), "--executor", "slurm",
            "--nodes", "1", "--gpus-per-node", "0", "--allow-sqlite", "--json"]
    assert main(argv) == 0
    runs = Registry(tmp_path / "home").list(kind="train")
    assert [(r.status, r.world_size, r.label) for r in runs] == [("done", 2, "run1")]
    assert runs[0].extra["slurm_job"] and f'"run": {runs[0].id}' in capsys.readouterr().out
