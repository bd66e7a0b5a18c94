"""`edmctl reproduce`: sample, training and fid runs reproduce bitwise on the same device; a changed output
file (samples, snapshot, measured folder) is caught with exit 1; other kinds exit 2."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from edmctl.cli.main import main
from edmctl.registry import Registry

# A tiny DDPM++ on 8x8 digits (as tests/test_train.py): 16 images a step, 4 steps, a snapshot at the end.
TINY = ["network.model_channels=16", "network.attn_resolutions=[]", "training.batch=16", "training.tick_kimg=0.032",
        "training.snapshot_kimg=0.064", "training.duration_kimg=0.064", "sampler.steps=3"]


@pytest.fixture
def home(tmp_path, monkeypatch, registry_backend):
    """A fresh home, the registry on each backend (SQLite in the home, or PostgreSQL)."""
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
    reproduction = Registry().latest(kind="reproduce")  # the newest run now; `latest` still means the sample run
    assert main(["reproduce", reproduction.label]) == 2  # a reproduce run is not reproducible itself
    assert "edmctl can reproduce sample, train, fid, import runs" in capsys.readouterr().err


@pytest.fixture(scope="module")
def trained(tiny_training):
    """One tiny training run (run1) on one torch thread, and pixel statistics of digits."""
    return tiny_training("reproduce", TINY)


def sets(*overrides: str) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def reproduce_json(capsys, ref: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["reproduce", ref, "--json"])
    return code, json.loads(capsys.readouterr().out)


def failed_checks(verdict: dict) -> set[str]:
    return {c["name"] for c in verdict["checks"] if not c["ok"]}


def test_training_run_reproduces_weights_and_loss_bitwise(trained, capsys):
    code, verdict = reproduce_json(capsys, "run1")
    assert code == 0 and verdict["match"]
    checks = {c["name"]: c for c in verdict["checks"]}
    assert {"final net weights", "final EMA weights", "final loss", "images trained"} <= checks.keys()
    assert checks["final loss"]["tolerance"] == "bitwise"
    reproduction = Registry().get(verdict["reproduction"])
    assert reproduction.kind == "reproduce" and reproduction.parent_id == 1 and reproduction.world_size == 1
    assert [a.kind for a in Registry().artifacts(reproduction.id)].count("checkpoint") == 1


def test_changed_snapshot_fails_with_exit_1(trained, capsys):
    registry = Registry()
    snapshot = registry.artifact_path(next(a for a in registry.artifacts(1) if a.kind == "checkpoint"))
    saved = snapshot.read_bytes()
    try:
        state = torch.load(snapshot, weights_only=True)
        first = next(iter(state["ema"]))
        state["ema"][first] = state["ema"][first] + 1e-6
        torch.save(state, snapshot)
        code, verdict = reproduce_json(capsys, "run1")
    finally:
        snapshot.write_bytes(saved)
    assert code == 1 and not verdict["match"]
    assert failed_checks(verdict) == {f"snapshot {snapshot.name} unchanged since recorded", "final EMA weights"}


def test_resumed_run_reproduces_from_the_snapshot_it_resumed_from(trained, capsys):
    assert main(["train", "--resume", "run1", *sets("training.duration_kimg=0.096")]) == 0
    resumed = Registry().latest(kind="train")
    assert resumed.parent_id == 1
    code, verdict = reproduce_json(capsys, resumed.label)
    assert code == 0 and verdict["match"]


def test_fid_run_of_a_training_run_reproduces_per_seed_block(trained, capsys):
    home, ref = trained
    assert main(["fid", "run1", "--ref", str(ref), "--detector", "pixels", "--num", "6", "--repeats", "2", "--batch", "4"]) == 0
    code, verdict = reproduce_json(capsys, "latest")
    assert code == 0 and verdict["match"], verdict
    names = {c["name"] for c in verdict["checks"]}
    assert {"FID seeds 0-5", "FID seeds 6-11", "seed blocks", "NFE"} <= names


def test_fid_run_of_a_folder_detects_a_changed_image(trained, capsys, tmp_path):
    home, _ = trained
    folder = tmp_path / "pngs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    stats = tmp_path / "stats.npz"
    assert main(["fid", "ref", str(folder), "--out", str(stats), "--detector", "pixels"]) == 0
    assert main(["fid", str(folder), "--ref", str(stats), "--detector", "pixels", "--num", "10"]) == 0
    measured = Registry().latest(kind="fid").label
    code, verdict = reproduce_json(capsys, measured)
    assert code == 0 and verdict["match"]
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / "03.png")
    code, verdict = reproduce_json(capsys, measured)
    assert code == 1 and failed_checks(verdict) == {"image statistics (mu, sigma)", "FID"}



def final_weights(run) -> dict:
    registry = Registry()
    snapshot = max((a for a in registry.artifacts(run.id) if a.kind == "checkpoint"), key=lambda a: a.step)
    return torch.load(registry.artifact_path(snapshot), weights_only=True)["net"]


@pytest.mark.slow  # three tiny trainings
def test_training_reproduces_on_the_thread_count_it_recorded(home, capsys):
    """Sums split over 2 threads add in another order than on 1, so the same recipe trains to other bits; a run
    trained on 2 threads reproduces bitwise from a process on 1 (the default) because reproduce re-applies 2."""
    recipe = str(Path(__file__).resolve().parents[1] / "recipes" / "digits.toml")
    assert main(["--threads", "2", "train", recipe, *sets(*TINY)]) == 0
    two = Registry().latest(kind="train")
    assert main(["--threads", "1", "train", recipe, *sets(*TINY)]) == 0
    one = Registry().latest(kind="train")
    assert [r.extra["numerics"]["intra_op_threads"] for r in (two, one)] == [2, 1]
    assert any(not torch.equal(a, b) for a, b in zip(final_weights(two).values(), final_weights(one).values()))
    code, verdict = reproduce_json(capsys, two.label)  # this process: 1 thread
    assert code == 0 and verdict["match"] and verdict["notes"] == []
    assert Registry().get(verdict["reproduction"]).extra["numerics"]["intra_op_threads"] == 2
    assert torch.get_num_threads() == 1
