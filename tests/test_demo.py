"""`edmctl demo`, the README's main job: train, sample, FD (pixels), every step recorded, then what to run next."""

import json

import pytest

from edmctl.cli.demo import _print_summary
from edmctl.cli.main import main
from edmctl.registry import Registry

TINY = ["network.model_channels=16", "network.attn_resolutions=[]", "training.batch=16",
        "training.tick_kimg=0.032", "training.snapshot_kimg=0.064", "training.duration_kimg=0.064",
        "sampler.steps=4", "eval.num=200"]


@pytest.mark.slow
def test_demo_trains_samples_measures_and_records_everything(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    assert main(["demo", "recipes/digits.toml", "--seeds", "0-15", "--json", *[a for o in TINY for a in ("--set", o)]]) == 0
    doc = json.loads(capsys.readouterr().out)  # one JSON document: every step's own, then the summary
    registry = Registry()
    kinds = {r.kind: r for r in registry.list(limit=10)}
    assert set(kinds) == {"train", "sample", "fid"} and all(r.status == "done" for r in kinds.values())
    assert kinds["fid"].parent_id == kinds["train"].id and kinds["sample"].parent_id == kinds["train"].id
    assert registry.metrics(kinds["fid"].id)["fid"].value > 0
    assert (registry.run_dir(kinds["sample"].id) / "grid.png").exists()
    assert (tmp_path / "home" / "refs" / "digits-pixels.npz").exists()
    assert doc["runs"] == {kind: kinds[kind].label for kind in ("train", "sample", "fid")}
    assert doc["sample"]["images"] == 16 and doc["fid"]["fid"] == registry.metrics(kinds["fid"].id)["fid"].value
    assert doc["grid"].endswith("grid.png") and f"edmctl show {kinds['train'].label}" in doc["next"]


def test_the_demo_summary_says_what_to_run_next(capsys):
    doc = {"runs": {"train": "run1", "sample": "run2", "fid": "run3"}, "grid": "runs/run2/grid.png"}
    _print_summary(doc, [("edmctl runs", "everything recorded"), ("edmctl show run1", "recipe, metrics")])
    out = capsys.readouterr().out
    assert "done: trained run1, samples run2 (grid: runs/run2/grid.png), FD run3." in out
    assert "next:\n  edmctl runs       # everything recorded\n  edmctl show run1  # recipe, metrics" in out


def test_demo_with_a_bad_recipe_exits_2_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    assert main(["demo", "recipes/digits.toml", "--set", "sampler.steps=0"]) == 2
    assert not (tmp_path / "home").exists()
