"""`edmctl steps optimize`: searches the levels of a solver at an NFE budget, writes them as a recipe that
`edmctl sample` takes, records how they were found; bad input exits 2 and writes nothing."""

import json

import numpy as np
import pytest
import torch

from edmctl.cli.main import main
from edmctl.evaluate import REFERENCE_STEPS, rms_median
from edmctl.models import load_model
from edmctl.recipe import load_recipe
from edmctl.registry import Registry
from edmctl.sampling import sample


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def model_spec(tmp_path):
    images = torch.rand(10, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    np.savez(tmp_path / "mixture.npz", images=images.numpy(), std=np.float64(0.2))
    return f"ideal:{tmp_path / 'mixture.npz'}"


def run_json(argv, capsys) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_optimize_writes_a_table_recipe_that_beats_its_start_and_records_the_search(home, model_spec, tmp_path, capsys):
    out = tmp_path / "fast.toml"
    doc = run_json(["steps", "optimize", "--model", model_spec, "--solver", "dpmpp-2m", "--nfe", "5", "--seeds", "0-7",
                    "--max-evals", "40", "--out", str(out)], capsys)
    assert doc["nfe"] == 5 and doc["steps"] == 5 and doc["error"] < doc["start_error"] and doc["evaluations"] <= 41
    recipe = load_recipe(out)
    assert (recipe.sampler.solver, recipe.sampler.disc, recipe.sampler.sigmas) == ("dpmpp-2m", "table", doc["sigmas"])
    assert recipe.sampler.sigmas[0] == 80.0

    record = Registry().get(doc["run"])
    assert record.kind == "steps" and record.status == "done" and record.seeds == list(range(8))
    assert record.recipe["sampler"]["sigmas"] == doc["sigmas"] and record.extra["reference"] == f"Heun {REFERENCE_STEPS} edm steps"
    assert [a.kind for a in Registry().artifacts(record.id) if a.kind == "recipe"] == ["recipe"]

    code = main(["sample", "--model", model_spec, "--recipe", str(out), "--seeds", "0-7", "--out", str(tmp_path / "s"), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["nfe"] == 5
    model = load_model(model_spec)
    reference = sample(model, load_recipe(None, [f"sampler.steps={REFERENCE_STEPS}"]).sampler, list(range(8)), batch=8).samples
    found = torch.from_numpy(np.load(tmp_path / "s" / "samples.npz")["samples"])
    assert rms_median(found, reference) == pytest.approx(doc["error"], rel=1e-9)


def test_optimize_fits_to_a_recorded_sample_run(home, model_spec, tmp_path, capsys):
    run = run_json(["sample", "--model", model_spec, "--seeds", "3-6", "--steps", "64", "--out", str(tmp_path / "ref")], capsys)["run"]
    doc = run_json(["steps", "optimize", "--model", model_spec, "--solver", "unipc", "--nfe", "4", "--reference", f"run{run}",
                    "--max-evals", "10"], capsys)
    record = Registry().get(doc["run"])
    assert record.seeds == [3, 4, 5, 6] and doc["reference"] == f"the samples of run{run}"
    assert load_recipe(doc["out"]).sampler.steps == 4


@pytest.mark.parametrize("argv, message", [
    (["--solver", "heun", "--nfe", "1"], "--nfe must be 2..10,000"),
    (["--solver", "rk4", "--nfe", "5"], "rk4"),
    (["--solver", "heun", "--nfe", "5", "--seeds", "0-3", "--reference", "run1"], "exclude each other"),
    (["--solver", "heun", "--nfe", "5", "--reference", "run99"], "run99"),
])
def test_bad_input_exits_2_and_writes_nothing(home, model_spec, tmp_path, capsys, argv, message):
    assert main(["steps", "optimize", "--model", model_spec, *argv, "--out", str(tmp_path / "x.toml")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.toml").exists()
    assert not Registry().exists or not Registry().list(kind="steps")


def test_an_existing_out_file_is_never_overwritten(home, model_spec, tmp_path, capsys):
    (tmp_path / "x.toml").write_text("mine")
    assert main(["steps", "optimize", "--model", model_spec, "--solver", "heun", "--nfe", "5", "--out", str(tmp_path / "x.toml")]) == 2
    assert (tmp_path / "x.toml").read_text() == "mine" and "already exists" in capsys.readouterr().err
