"""`edmctl reproduce`: a sample run reproduces bitwise; a changed output file is caught."""

import json

import numpy as np
import pytest

from edmctl.cli.main import main
from edmctl.registry import Registry


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def sample_run(capsys, *flags):
    assert main(["sample", "--model", "ideal:digits?std=0.2&n=50", "--seeds", "0-5", "--batch", "4", "--steps", "6", "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)["run"]


def test_sample_run_reproduces_bitwise(home, capsys):
    original = sample_run(capsys, "--s-churn", "5")
    assert main(["reproduce", f"run{original}", "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["match"] and {c["name"] for c in verdict["checks"]} >= {"NFE", "samples of 6 seeds"}
    reproduction = Registry().get(verdict["reproduction"])
    assert reproduction.kind == "reproduce" and reproduction.parent_id == original and reproduction.status == "done"


def test_changed_output_file_fails_with_exit_1(home, capsys):
    original = sample_run(capsys)
    path = home / f"run{original}" / "samples.npz"
    with np.load(path) as z:
        samples, seeds = z["samples"].copy(), z["seeds"]
    samples[0, 0, 0, 0] += 1e-9
    np.savez(path, samples=samples, seeds=seeds)
    assert main(["reproduce", str(original), "--json"]) == 1
    captured = capsys.readouterr()
    verdict = json.loads(captured.out)
    assert not verdict["match"] and "does not reproduce" in captured.err
    failed = {c["name"] for c in verdict["checks"] if not c["ok"]}
    assert failed == {"recorded samples.npz unchanged since recorded", "samples of 6 seeds"}


def test_unknown_run_and_unsupported_kind_exit_2(home, capsys):
    sample_run(capsys)
    assert main(["reproduce", "run999"]) == 2
    assert main(["recipe", "show"]) == 0
    capsys.readouterr()
    assert main(["reproduce", "latest"]) == 0  # latest is the sample run
    capsys.readouterr()
    assert main(["reproduce", "latest"]) == 2  # now latest is a reproduce run: not reproducible itself
    assert "edmctl can reproduce sample runs" in capsys.readouterr().err
