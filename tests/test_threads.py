"""`--threads N` / EDMCTL_THREADS: validated (exit 2), applied to this process and to the processes edmctl starts,
and recorded with every run together with the other settings that change how results round."""

import json
import os
import subprocess
import sys

import pytest
import torch

from edmctl import threads
from edmctl.cli.main import main
from edmctl.registry import Registry, compare


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", str(threads.MAX + 1)])
def test_a_bad_thread_count_exits_2_and_writes_nothing(home, capsys, value):
    assert main(["--threads", value, "recipe", "show", "recipes/edm.toml"]) == 2
    assert "--threads" in capsys.readouterr().err and not home.exists()


@pytest.mark.parametrize("value", ["0", "many", "99999"])
def test_a_bad_edmctl_threads_exits_2_naming_the_variable(home, capsys, monkeypatch, value):
    monkeypatch.setenv("EDMCTL_THREADS", value)
    assert main(["recipe", "show", "recipes/edm.toml"]) == 2
    assert f"EDMCTL_THREADS={value!r}" in capsys.readouterr().err and not home.exists()


@pytest.mark.parametrize("value", ["abc", "0", "-1"])
def test_a_bad_edmctl_threads_spoils_no_help_page_only_a_command_that_runs(home, capsys, monkeypatch, value):
    monkeypatch.setenv("EDMCTL_THREADS", value)
    for command in (["sample"], ["runs", "rm"], ["fid", "measure"], ["sweep", "run"], ["--threads", "2", "sample"], []):
        assert main([*command, "--help"]) == 0, command
        assert "Usage: edmctl" in capsys.readouterr().out
    for command in (["sample", "--model", "ideal:digits?n=5"], ["runs", "rm", "run1"], ["runs"]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"EDMCTL_THREADS={value!r}" in err and f"from 1 to {threads.MAX}" in err, err
    assert not home.exists()


def test_the_flag_wins_over_the_variable_which_wins_over_the_default(monkeypatch):
    monkeypatch.setenv("EDMCTL_THREADS", "3")
    assert threads.requested(2) == 2 and threads.requested(None) == 3
    monkeypatch.delenv("EDMCTL_THREADS")
    assert threads.requested(None) == threads.DEFAULT == 1


def test_threads_apply_here_and_in_processes_started_from_here(home, capsys):
    assert main(["--threads", "3", "recipe", "show", "recipes/edm.toml"]) == 0
    assert torch.get_num_threads() == 3
    start = "from edmctl import threads; threads.use(threads.requested(None))"  # a sweep worker, a torchrun child
    child = subprocess.run([sys.executable, "-c", f"{start}; import torch; print(torch.get_num_threads())"],
                           capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "3" and os.environ["OMP_NUM_THREADS"] == "3"


def sample(capsys, *flags: str) -> int:
    assert main([*flags, "sample", "--model", "ideal:digits?std=0.2&n=20", "--seeds", "0-1", "--steps", "3", "--json"]) == 0
    return json.loads(capsys.readouterr().out)["run"]


def test_every_run_records_its_threads_and_compare_names_a_difference_as_the_likely_cause(home, capsys):
    one, two = sample(capsys), sample(capsys, "--threads", "2")
    numerics = [Registry().get(run).extra["numerics"] for run in (one, two)]
    assert [n["intra_op_threads"] for n in numerics] == [1, 2]
    assert [n["env"]["OMP_NUM_THREADS"] for n in numerics] == ["1", "2"]
    assert {"inter_op_threads", "cpu_capability", "mkldnn", "deterministic", "float32_matmul_precision"} <= numerics[0].keys()
    doc = compare(Registry(), [one, two])
    assert doc["environment"]["numerics.intra_op_threads"] == [1, 2]
    assert len(doc["notes"]) == 1 and f"run{one} 1, run{two} 2" in doc["notes"][0]
    assert main(["compare", str(one), str(two)]) == 0
    assert "likely cause of a failed reproduction" in capsys.readouterr().out
    assert compare(Registry(), [one, one])["notes"] == []


def test_recorded_settings_apply_for_the_body_only_and_what_cannot_is_a_note():
    before = threads.settings()
    recorded = {**before, "intra_op_threads": 2, "mkldnn": not before["mkldnn"], "cpu_capability": "OTHER"}
    with threads.recorded("run7", recorded) as notes:
        now = threads.settings()
        assert now["intra_op_threads"] == 2 and now["mkldnn"] == recorded["mkldnn"]
        assert len(notes) == 1 and "run7 ran with cpu_capability = OTHER" in notes[0]
    assert threads.settings() == before
    with threads.recorded("run7", None) as notes:
        assert "run7 recorded no thread count" in notes[0]
