"""`edmctl import` and `--model PATH.pkl`: an NVlabs network becomes a registry run that every command samples
like a training run — and a pickle that is not what it claims is refused, runs nothing, writes nothing."""

import json
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from test_pretrained import DATA, SAMPLE_CASES, assert_close, home, reference  # noqa: F401 (home: a fixture)

from edmctl.cli.main import main
from edmctl.registry import Registry


def run_json(capsys, argv) -> dict:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def samples_of(run: str) -> np.ndarray:
    return np.load(Path(Registry().run_dir(int(run.removeprefix("run")))) / "samples.npz")["samples"]


@pytest.mark.parametrize("name", SAMPLE_CASES)
def test_import_then_sample_gives_generate_pys_images(home, capsys, name):
    """`edmctl import` + `edmctl sample --model runN --seeds 0-3` = NVlabs generate.py (to 1e-4 of max(1, |x|))."""
    imported = run_json(capsys, ["import", str(DATA / f"{name}.pkl")])
    run = Registry().get(imported["run"])
    assert run.kind == "import" and run.status == "done" and len(run.extra["source_sha256"]) == 64
    sampled = run_json(capsys, ["sample", "--model", imported["run"], "--seeds", "0-3"])
    assert Registry().get(sampled["run"]).parent_id == run.id
    assert_close(samples_of(f"run{sampled['run']}"), reference(name)["samples"], 1e-4, f"{name} samples")


def test_the_import_records_what_it_recognised(home, capsys):
    doc = run_json(capsys, ["import", str(DATA / "ve-ncsnpp-cond.pkl"), "--name", "ve"])
    run = Registry().get(doc["run"])
    assert run.name == "ve"
    assert run.recipe["precond"].items() >= {"kind": "ve", "sigma_min": 0.02, "sigma_max": 100.0, "precision": "float32"}.items()
    assert run.recipe["network"].items() >= {"arch": "ncsnpp", "model_channels": 8, "channel_mult": [1, 2, 2],
                                          "embedding_type": "fourier", "encoder_type": "residual",
                                          "channel_mult_noise": 2, "resample_filter": [1, 3, 3, 1]}.items()
    assert run.recipe["augment"]["p"] == 0.12 and run.recipe["training"]["p_train"] == "ve"
    assert run.extra["nvlabs"]["precond"] == "VEPrecond" and run.extra["label_dim"] == 3
    artifact, = [a for a in Registry().artifacts(run.id) if a.kind == "checkpoint"]
    assert artifact.path.endswith("weights.pt")


def test_a_pickle_path_is_imported_once_and_sampled_like_a_run(home, capsys):
    """`--model PATH.pkl` imports on first use and reuses that import (same sha256) afterwards."""
    pkl = str(DATA / "edm-gray8-uncond.pkl")
    first = run_json(capsys, ["sample", "--model", pkl, "--seeds", "0-1"])
    second = run_json(capsys, ["sample", "--model", pkl, "--seeds", "0-1"])
    imports = Registry().list(kind="import")
    assert len(imports) == 1 and first["model"] == second["model"] == f"run:{imports[0].id}"
    assert np.array_equal(samples_of(f"run{first['run']}"), samples_of(f"run{second['run']}"))


def test_sample_without_model_uses_the_newest_standalone_model_and_says_which(home, capsys):
    """A throwaway config of an ablation, newer than the import, is not the default model; an explicit runN is."""
    from edmctl.registry import open_run

    imported = run_json(capsys, ["import", str(DATA / "edm-gray8-uncond.pkl")])["run"]
    with open_run(kind="ablate") as ablation, open_run(kind="train", parent=ablation.id, name="config F") as config:
        pass
    assert main(["sample", "--seeds", "0-1", "--steps", "3", "--json"]) == 0
    printed = capsys.readouterr()
    doc = json.loads(printed.out)
    assert doc["model"] == f"run:{imported.removeprefix('run')}" and doc["model_default"] is True
    assert Registry().get(doc["run"]).parent_id == int(imported.removeprefix("run"))
    assert f"model: {imported}" in printed.err  # said on stderr too
    assert main(["sample", "--seeds", "0-1", "--steps", "3"]) == 0
    printed = capsys.readouterr().out
    assert f"model run:{imported.removeprefix('run')}" in printed and "wrote " in printed and "samples.npz" in printed
    assert main(["sample", "--model", config.label, "--seeds", "0"]) == 2  # named: tried, though it has no snapshot
    assert "has no snapshot" in capsys.readouterr().err


def test_an_import_reproduces_and_a_changed_source_is_caught(home, capsys, tmp_path):
    pkl = tmp_path / "net.pkl"
    pkl.write_bytes((DATA / "edm-gray8-uncond.pkl").read_bytes())
    run = run_json(capsys, ["import", str(pkl)])["run"]
    assert run_json(capsys, ["reproduce", run])["match"]
    pkl.write_bytes((DATA / "vp-ddpmpp-uncond.pkl").read_bytes())
    assert main(["reproduce", run]) == 1


def test_class_fixes_the_label_and_changes_only_the_seeds_drawn_otherwise(home, capsys):
    """Labels are drawn per seed as generate.py draws them; `--class K` overrides the draw and keeps the noise."""
    pkl = str(DATA / "vp-ddpmpp-cond-gray.pkl")
    drawn = reference("vp-ddpmpp-cond-gray")["sample_class_labels"].argmax(1)
    free = samples_of(f"run{run_json(capsys, ['sample', '--model', pkl, '--seeds', '0-3'])['run']}")
    fixed = samples_of(f"run{run_json(capsys, ['sample', '--model', pkl, '--seeds', '0-3', '--class', '1'])['run']}")
    for seed in range(4):
        assert np.array_equal(free[seed], fixed[seed]) == (drawn[seed] == 1)
    assert 0 < (drawn == 1).sum() < 4  # both kinds of seed occur


@pytest.mark.parametrize("pkl, args, message", [
    ("vp-ddpmpp-cond-gray", ["--class", "2"], "out of range"),
    ("vp-ddpmpp-uncond", ["--class", "0"], "unconditional"),
])
def test_a_bad_class_is_refused(home, capsys, pkl, args, message):
    assert main(["sample", "--model", str(DATA / f"{pkl}.pkl"), "--seeds", "0", *args]) == 2
    assert message in capsys.readouterr().err
    assert Registry().list(kind="sample") == []


@pytest.mark.slow
def test_sample_and_fid_runs_of_an_import_reproduce(home, capsys, tmp_path):
    pkl = str(DATA / "edm-gray8-uncond.pkl")
    ref = tmp_path / "digits.npz"
    assert main(["fid", "ref", "digits", "--out", str(ref), "--detector", "pixels"]) == 0
    sampled = run_json(capsys, ["sample", "--model", pkl, "--seeds", "0-1", "--steps", "3"])
    measured = run_json(capsys, ["fid", pkl, "--ref", str(ref), "--detector", "pixels", "--num", "3", "--repeats", "1", "--steps", "3"])
    assert measured["measured"] == f"run{Registry().list(kind='import')[0].id}" and np.isfinite(measured["fid"])
    for run in (sampled["run"], measured["run"]):
        assert run_json(capsys, ["reproduce", f"run{run}"])["match"]


def test_ablate_sampler_on_a_pickle(home, capsys, tmp_path):
    """The Figure 2 ladder on an imported network, its Fréchet distance measured with --set [eval] fields."""
    ref = tmp_path / "digits.npz"
    assert main(["fid", "ref", "digits", "--out", str(ref), "--detector", "pixels"]) == 0
    doc = run_json(capsys, ["ablate", "sampler", "--model", str(DATA / "edm-gray8-uncond.pkl"), "--nfe-max", "2",
                            "--seeds", "0-3", "--set", "eval.detector=pixels", "--set", f"eval.ref={json.dumps(str(ref))}"])
    assert doc["metric"] == "fd" and doc["curves"]
    assert Registry().get(doc["run"]).parent_id == Registry().list(kind="import")[0].id
    assert doc["files"] == [str(Registry().run_dir(int(doc["run"][3:])) / "sampler_ladder.png")]


def planted(monkeypatch, meta_or_obj) -> bytes:
    """Bytes of a pickle laid out as NVlabs's: `{"ema": _reconstruct_persistent_obj(meta)}`."""
    def _reconstruct_persistent_obj(meta):  # stands for NVlabs's hook, only so that pickle can name it
        raise AssertionError("never called")

    module = types.ModuleType("torch_utils.persistence")
    _reconstruct_persistent_obj.__module__ = module.__name__
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    module._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", module)

    class Planted:
        def __reduce__(self):
            return _reconstruct_persistent_obj, (meta_or_obj,)

    return pickle.dumps({"ema": Planted(), "loss_fn": None, "augment_pipe": None, "dataset_kwargs": {}})


def meta(source: str, class_name: str = "EDMPrecond") -> dict:
    return dict(type="class", version=6, module_src=source, class_name=class_name, state={})


CODE = "import os\nos.system('touch {marker}')\nclass EDMPrecond:\n    pass\n"
SETSTATE = "import torch\nclass EDMPrecond:\n    def __setstate__(self, state):\n        torch.os.system('touch {marker}')\n"
DECORATOR = "import os\n@os.system('touch {marker}')\nclass EDMPrecond:\n    pass\n"
IN_A_METHOD = "import torch\nclass EDMPrecond:\n    def forward(self, x):\n        torch.os.system('touch {marker}')\n"
FOREIGN = "class Anything:\n    pass\n"


@pytest.mark.parametrize("source, message", [(CODE, "would run code"), (SETSTATE, "__setstate__"),
                                             (DECORATOR, "would run code"),
                                             (IN_A_METHOD, "a reference to"), (FOREIGN, "no class EDMPrecond")])
def test_a_persistence_record_whose_source_would_run_code_is_refused(home, capsys, monkeypatch, tmp_path, source, message):
    marker = tmp_path / "PWNED"
    path = tmp_path / "planted.pkl"
    path.write_bytes(planted(monkeypatch, meta(source.format(marker=marker))))
    assert main(["import", str(path)]) == 2
    assert message in capsys.readouterr().err
    assert not marker.exists() and not home.exists()


def test_an_unexpected_global_is_refused_by_name(home, capsys, tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    for argv in (["import", str(path)], ["sample", "--model", str(path), "--seeds", "0"]):
        assert main(argv) == 2
        assert "os.system" in capsys.readouterr().err
    assert not marker.exists() and not home.exists()


@pytest.mark.parametrize("content, message", [
    (lambda: (DATA / "edm-gray8-uncond.pkl").read_bytes()[:5000], "not a readable pickle"),
    (lambda: b"PK\x03\x04 this is a zip, not a pickle", "not a readable pickle"),
    (lambda: pickle.dumps({"net": 1, "loss_fn": None}), "no `ema`"),
    (lambda: pickle.dumps([1, 2, 3]), "not the dict"),
])
def test_a_broken_or_foreign_file_is_one_clear_sentence(home, capsys, tmp_path, content, message):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content())
    assert main(["import", str(path)]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and not home.exists()


def test_an_unknown_nvlabs_class_is_refused(home, capsys, monkeypatch, tmp_path):
    path = tmp_path / "other.pkl"
    path.write_bytes(planted(monkeypatch, meta("class MyPrecond:\n    pass\n", "MyPrecond")))
    assert main(["import", str(path)]) == 2
    assert "MyPrecond, which edmctl does not know" in capsys.readouterr().err and not home.exists()


@pytest.mark.slow
def test_a_sweep_samples_a_pickle(home, tmp_path):
    """`model = "PATH.pkl"` in a sweep file: each trial samples the imported network (one import for all)."""
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "digits.toml"
    sweep = tmp_path / "steps.toml"
    sweep.write_text(f'base = {json.dumps(str(recipe))}\ntrial = "sample"\nmodel = {json.dumps(str(DATA / "edm-gray8-uncond.pkl"))}\n'
                     f'seeds = "0-3"\nmetric = "fd"\n\n[grid]\n"sampler.steps" = [2, 3]\n')
    assert main(["sweep", str(sweep), "--jobs", "1"]) == 0
    trials = Registry().list(kind="sample")
    assert len(trials) == 2 and all(t.status == "done" and np.isfinite(Registry().metrics(t.id)["fd"].value) for t in trials)
    assert len(Registry().list(kind="import")) == 1
