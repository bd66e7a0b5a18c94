"""`edmctl sample`: flags are recipe overrides, outputs match the library, runs are recorded, bad input exits 2
and writes nothing."""

import json

import numpy as np
import pytest
import torch

from edmctl.cli.main import main
from edmctl.models import load_model
from edmctl.recipe import load_recipe
from edmctl.registry import Registry
from edmctl.sampling import sample


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def mixture_npz(tmp_path):
    images = torch.rand(10, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    np.savez(tmp_path / "mixture.npz", images=images.numpy(), std=np.float64(0.1))
    return tmp_path / "mixture.npz"


def run_json(argv, capsys) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_sample_writes_what_the_library_computes_and_records_the_run(home, mixture_npz, tmp_path, capsys):
    model = f"ideal:{mixture_npz}"
    doc = run_json(["sample", "--model", model, "--seeds", "3,1,7-8", "--batch", "3", "--solver", "euler", "--steps", "5",
                    "--s-churn", "2", "--out", str(tmp_path / "out")], capsys)
    settings = load_recipe(None, ["sampler.solver='euler'", "sampler.steps=5", "sampler.s_churn=2.0"]).sampler
    expected = sample(load_model(model), settings, [3, 1, 7, 8], batch=4).samples
    with np.load(tmp_path / "out" / "samples.npz") as npz:
        np.testing.assert_allclose(npz["samples"], expected.numpy(), rtol=0, atol=1e-12)
        assert npz["seeds"].tolist() == [3, 1, 7, 8]
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"samples.npz", "grid.png", "000003.png", "000001.png", "000007.png", "000008.png"}
    assert doc["nfe"] == 5 and doc["images"] == 4 and doc["out"] == str(tmp_path / "out")
    assert sorted(doc["files"]) == sorted(str(p) for p in (tmp_path / "out").iterdir())
    record = Registry(home).get(doc["run"])
    assert (record.kind, record.status, record.seeds) == ("sample", "done", [3, 1, 7, 8])
    assert record.recipe["sampler"]["solver"] == "euler" and record.recipe["sampler"]["steps"] == 5
    assert [a.kind for a in Registry(home).artifacts(doc["run"]) if a.kind == "samples"] == ["samples"]


def test_default_output_is_the_run_folder_and_stdout_names_nfe_and_folder(home, mixture_npz, capsys):
    assert main(["sample", "--model", f"ideal:{mixture_npz}", "--seeds", "0-1", "--steps", "3"]) == 0
    printed = capsys.readouterr().out
    run_dir = Registry(home).latest(kind="sample").id
    folder = home / f"run{run_dir}"
    assert "NFE 5" in printed and str(folder) in printed and "img/s" in printed
    assert (folder / "samples.npz").exists() and (folder / "000001.png").exists()


def test_set_and_recipe_file_feed_the_sampler_and_flags_win_over_the_file(home, mixture_npz, tmp_path, capsys):
    (tmp_path / "r.toml").write_text('[sampler]\nsolver = "heun"\nsteps = 4\n')
    doc = run_json(["sample", "--model", f"ideal:{mixture_npz}", "--seeds", "0", "--recipe", str(tmp_path / "r.toml"),
                    "--set", "sampler.s_churn=1", "--steps", "7"], capsys)
    assert doc["nfe"] == 13 and doc["sampler"]["steps"] == 7 and doc["sampler"]["s_churn"] == 1


def test_a_flag_and_a_set_of_the_same_field_are_refused_naming_both(home, mixture_npz, capsys):
    assert main(["sample", "--model", f"ideal:{mixture_npz}", "--set", "sampler.steps=6", "--steps", "7"]) == 2
    assert "--steps and --set sampler.steps=... both set sampler.steps" in capsys.readouterr().err
    assert not home.exists()


BAD_INPUTS = [
    (["--solver", "rk4"], "rk4"),
    (["--steps", "0"], "sampler.steps"),
    (["--sigma-min", "5", "--sigma-max", "1"], "sigma_min"),
    (["--solver", "dpm2", "--schedule", "vp"], "dpm2"),
    (["--solver", "lms", "--scaling", "vp"], "lms"),
    (["--solver", "heun", "--eta", "0.5"], "sampler.eta applies to solver euler-ancestral"),
    (["--solver", "unipc", "--order", "4"], "sampler.order for solver unipc must be 1..3"),
    (["--seeds", "9-3"], "backwards"),
    (["--batch", "0"], "--batch"),
    (["--class", "2"], "unconditional"),
    (["--model", "ideal:{tmp}/noimages.npz"], "no `images`"),
    (["--model", "ideal:{tmp}/missing.npz"], "does not exist"),
    (["--model", "mystery:1"], "not recognised"),
    (["--set", "sampler.nosuch=1"], "nosuch"),
]


@pytest.mark.parametrize("args, message", BAD_INPUTS, ids=[a[1] for a in BAD_INPUTS])
def test_bad_input_exits_2_and_writes_nothing(home, mixture_npz, tmp_path, capsys, args, message):
    np.savez(tmp_path / "noimages.npz", pictures=np.zeros((2, 1, 4, 4)))
    argv = ["sample", "--model", f"ideal:{mixture_npz}", "--out", str(tmp_path / "out"), *[a.format(tmp=tmp_path) for a in args]]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert not home.exists() or not list(home.glob("run*"))


def test_no_model_and_no_training_run_is_a_clear_error(home, capsys):
    assert main(["sample", "--seeds", "0"]) == 2
    assert "no finished training or import run outside sweeps and ablations in the registry; pass --model ideal:digits" \
        in capsys.readouterr().err
    assert not home.exists()


def test_out_folder_with_samples_is_refused_before_sampling(home, mixture_npz, tmp_path, capsys):
    argv = ["sample", "--model", f"ideal:{mixture_npz}", "--seeds", "0", "--steps", "2", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    before = (tmp_path / "out" / "samples.npz").read_bytes()
    assert main(argv) == 2
    assert "already holds samples.npz" in capsys.readouterr().err
    assert (tmp_path / "out" / "samples.npz").read_bytes() == before and len(list(home.glob("run*"))) == 1
