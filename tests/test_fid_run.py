"""`edmctl fid RUN`: the paper's protocol on a training run — seed blocks, the minimum, recorded with its
protocol — and the streamed path agrees with sampling PNGs and measuring the folder."""

import json

import pytest

from edmctl.cli.main import main
from edmctl.registry import Registry

TINY = ["network.model_channels=16", "network.attn_resolutions=[]", "training.batch=16",
        "training.tick_kimg=0.032", "training.snapshot_kimg=0.064", "training.duration_kimg=0.032",
        "sampler.steps=4"]


@pytest.fixture(scope="module")
def trained(tiny_training):
    return tiny_training("fidrun", TINY)


def run_json(capsys, args):
    capsys.readouterr()
    code = main(args)
    return code, (json.loads(capsys.readouterr().out) if code == 0 else None)


def test_fid_of_a_run_reports_each_seed_block_and_the_minimum(trained, capsys):
    home, ref = trained
    code, doc = run_json(capsys, ["fid", "run1", "--ref", str(ref), "--detector", "pixels", "--num", "12", "--repeats", "2", "--batch", "5", "--json"])
    assert code == 0
    fids = [r["fid"] for r in doc["repeats"]]
    assert doc["fid"] == min(fids) and len(set(fids)) == 2
    assert [r["seeds"] for r in doc["repeats"]] == [[0, 11], [12, 23]]
    record = Registry().get(str(doc["run"]))
    assert record.kind == "fid" and record.parent_id == 1
    assert record.extra["protocol"] == "edm" and record.extra["ref_sha256"] and record.extra["nfe"] == 7
    assert record.extra["sampler"]["steps"] == 4


def test_streamed_run_and_png_folder_give_the_same_number(trained, capsys, tmp_path):
    home, ref = trained
    code, streamed = run_json(capsys, ["fid", "run1", "--ref", str(ref), "--detector", "pixels", "--num", "10", "--repeats", "1", "--json"])
    assert code == 0
    assert main(["sample", "--model", "run1", "--seeds", "0-9", "--out", str(tmp_path / "png")]) == 0
    code, folder = run_json(capsys, ["fid", str(tmp_path / "png"), "--ref", str(ref), "--detector", "pixels", "--json"])
    assert code == 0
    assert folder["fid"] == pytest.approx(streamed["fid"], rel=1e-9, abs=1e-9)


def test_sampler_flags_override_the_runs_recipe(trained, capsys):
    home, ref = trained
    code, doc = run_json(capsys, ["fid", "run1", "--ref", str(ref), "--detector", "pixels", "--num", "4", "--repeats", "1", "--steps", "2", "--json"])
    assert code == 0 and doc["nfe"] == 3


def test_bad_input_exits_2_and_records_nothing(trained, capsys, tmp_path):
    home, ref = trained
    before = len(Registry().list(limit=1000))
    assert main(["fid", "run1", "--detector", "pixels", "--num", "4"]) == 2  # digits recipe sets no eval.ref
    assert "eval.ref" in capsys.readouterr().err
    assert main(["fid", "run999", "--ref", str(ref)]) == 2
    assert main(["fid", "run1", "--ref", str(ref), "--num", "4", "--protocol", "clean"]) == 2  # ref made under edm
    assert main(["fid", str(tmp_path), "--ref", str(ref), "--steps", "3"]) == 2  # sampler flags on a folder
    assert len(Registry().list(limit=1000)) == before


def test_text_output_shows_kid_and_warns_about_fewer_images_than_features(trained, capsys):
    home, ref = trained
    capsys.readouterr()
    assert main(["fid", "run1", "--ref", str(ref), "--detector", "pixels", "--num", "12", "--repeats", "1"]) == 0
    printed = capsys.readouterr()
    kid = float(printed.out.split("KID ")[1].split()[0])
    assert -1 < kid < 8  # pixels in [0, 1]: the cubic kernel lies in [1, 8]
    assert "warning: 12 measured images for 64-dimensional features" in printed.err  # digits: 8 x 8 pixels


def test_latest_is_the_newest_model_run_not_the_newest_fid_run(trained, capsys):
    home, ref = trained
    args = ["--ref", str(ref), "--detector", "pixels", "--num", "4", "--repeats", "1", "--json"]
    assert run_json(capsys, ["fid", "run1", *args])[0] == 0  # the newest run is now a fid run
    code, doc = run_json(capsys, ["fid", "latest", *args])
    assert code == 0 and doc["measured"] == "run1"
