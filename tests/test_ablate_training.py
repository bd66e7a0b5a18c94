"""The training ladder (EDM Table 2) laid over a base recipe: six configs whose consecutive differences are
exactly the paper's steps, with scale and data from the base, and `edmctl ablate training` end to end."""

import json
from pathlib import Path

import pytest

from edmctl.cli.main import main
from edmctl.errors import UserError
from edmctl.recipe import load_recipe
from edmctl.registry import Registry
from edmctl.sweep.training_ladder import CONFIGS, LADDER_DIR, SCALED, flat, from_base, ladder_rungs

DIGITS = Path(__file__).resolve().parents[1] / "recipes" / "digits.toml"
BUDGET = 30.0
LADDER_KIMG = 200_000  # every recipes/cifar10 config trains for 200 Mimg


def differences(before: dict, after: dict) -> set[str]:
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


def ladder(family: str) -> list[dict]:
    return [flat(load_recipe(LADDER_DIR / f"{family}-{config}.toml").canonical()) for config in CONFIGS]


@pytest.mark.parametrize("family", ["vp", "ve"])
def test_each_config_changes_exactly_what_the_ladder_step_changes(family):
    paper, rungs = ladder(family), ladder_rungs(DIGITS, family, BUDGET)
    configs = [flat(r.recipe.canonical()) for r in rungs]
    assert [r.config for r in rungs] == list("ABCDEF") and len({r.recipe.hash() for r in rungs}) == 6
    for step in range(1, 6):
        expected = {key for key in differences(paper[step - 1], paper[step]) if not from_base(key)}
        assert differences(configs[step - 1], configs[step]) == expected == set(rungs[step].changed)
    assert rungs[1].held == ["training.batch"]  # B's 128 -> 512 is about scale: the base's batch stays


@pytest.mark.parametrize("family", ["vp", "ve"])
def test_design_fields_come_from_the_ladder_and_scale_and_data_from_the_base(family):
    base = flat(load_recipe(DIGITS, [f"training.duration_kimg={BUDGET}"]).canonical())
    for paper, rung in zip(ladder(family), ladder_rungs(DIGITS, family, BUDGET)):
        config = flat(rung.recipe.canonical())
        for key, value in config.items():
            if from_base(key):
                assert value == base[key], key
            elif key in SCALED:
                assert value == pytest.approx(paper[key] * BUDGET / LADDER_KIMG), key
            else:
                assert value == paper[key], key
        assert (config["data.source"], config["eval.detector"], config["training.duration_kimg"]) == ("digits", "pixels", BUDGET)


def test_the_budget_defaults_to_the_bases_duration_and_bad_input_is_refused():
    assert ladder_rungs(DIGITS, "vp")[0].recipe.training.duration_kimg == load_recipe(DIGITS).training.duration_kimg
    with pytest.raises(UserError, match="--family"):
        ladder_rungs(DIGITS, "iddpm")
    with pytest.raises(UserError, match="--budget-kimg"):
        ladder_rungs(DIGITS, "vp", budget_kimg=0)


def test_a_ladder_recipe_missing_is_named(tmp_path):
    with pytest.raises(UserError, match="vp-A.toml"):
        ladder_rungs(DIGITS, "vp", ladder_dir=tmp_path)


TINY = ["network.model_channels=8", "training.batch=16", "training.tick_kimg=0.016", "training.snapshot_kimg=0.016",
        "eval.num=16", "eval.batch=16"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # 16 images: a singular 64x64 covariance
def test_ablate_training_trains_and_measures_every_config_as_children_of_an_ablate_run(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("EDMCTL_DB_URL", raising=False)
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "runs"))
    argv = ["ablate", "training", "--base", str(DIGITS), "--budget-kimg", "0.016", "--json",
            *(arg for item in TINY for arg in ("--set", item))]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["config"] for r in doc["rungs"]] == list("ABCDEF") and doc["metric"] == "FD (pixels)"
    assert all(r["status"] == "done" and r["value"] > 0 and r["loss"] > 0 for r in doc["rungs"])
    registry = Registry()
    ablate = registry.get(doc["run"])
    children = registry.children(ablate.id)
    assert ablate.kind == "ablate" and [c.kind for c in children] == ["train"] * 6
    assert {c.recipe_hash for c in children} == {r["recipe_hash"] for r in doc["rungs"]}
    assert [a.kind for a in registry.artifacts(ablate.id)].count("plot") == 1 and Path(doc["plot"]).is_file()
