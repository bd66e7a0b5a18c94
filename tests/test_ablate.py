"""The sampler ladder (EDM Figure 2) on an analytic model: every rung and solver, each over the step count."""

import json

import numpy as np
import pytest
import torch

from edmctl.cli.main import main
from edmctl.evaluate import SAMPLER_ERRORS, sampler_error
from edmctl.models import load_model
from edmctl.registry import Registry
from edmctl.sweep.ablation import Curve, LadderResult, Point, ladder_samplers, paper_order_from, sampler_ladder

MODEL = "ideal:digits?std=0.2&n=50"


def test_the_ladder_starts_from_each_familys_original_sampler():
    vp = dict(ladder_samplers("vp"))
    assert {k: vp["original (Euler)"][k] for k in ("solver", "disc", "schedule", "scaling")} == {
        "solver": "euler", "disc": "vp", "schedule": "vp", "scaling": "vp"}
    assert (vp["+ Heun & EDM t_i"]["disc"], vp["+ Heun & EDM t_i"]["schedule"]) == ("edm", "vp")
    assert (vp["+ σ(t)=t & s(t)=1"]["schedule"], vp["+ σ(t)=t & s(t)=1"]["scaling"]) == ("linear", "none")
    assert {fields["solver"] for fields in vp.values()} == {"euler", "heun", "dpm2", "lms", "dpmpp-2m", "dpmpp-3m", "unipc", "ipndm"}
    assert dict(ladder_samplers("ve"))["original (Euler)"]["schedule"] == "ve"
    assert len(ladder_samplers("iddpm")) == len(vp) - 1  # iDDPM's σ(t) is already t: one rung fewer


def test_the_knee_is_the_lowest_nfe_within_3_percent_of_the_best_of_the_chosen_measure():
    values = [(1.0, 0.5), (0.102, 0.0), (0.1, 0.25), (0.1001, 0.0)]
    points = [Point(steps, nfe, {"rms_median": rms, "flips": flips}) for (steps, nfe), (rms, flips) in
              zip([(2, 3), (4, 7), (8, 15), (16, 31)], values)]
    assert Curve("c", {}, "rms_median", points).best().nfe == 15 and Curve("c", {}, "rms_median", points).knee().nfe == 7
    assert Curve("c", {}, "flips", points).knee().nfe == 7


def rung(label: str, values: dict[int, float]) -> Curve:
    return Curve(label, {}, "rms_median", [Point(0, nfe, {"rms_median": v}) for nfe, v in values.items()])


def test_the_papers_order_holds_from_the_nfe_after_which_no_rung_is_worse_than_the_one_before():
    euler = rung("original (Euler)", {3: 1.0, 5: 0.5, 8: 0.3, 10: 0.2})  # Euler beside Heun's 2N − 1: NFE + 1
    heun = rung("+ Heun & EDM t_i", {3: 80.0, 5: 0.4, 7: 0.1, 9: 0.05})
    edm = rung("+ σ(t)=t & s(t)=1", {3: 70.0, 5: 0.45, 7: 0.05, 9: 0.01})
    other = rung("lms, EDM t_i & σ(t)=t", {3: 99.0, 5: 99.0, 7: 99.0, 9: 99.0})  # not a rung: ignored
    result = LadderResult("m", "vp", "rms_median", ["rms_median"], 10, [euler, heun, edm, other])
    assert paper_order_from(result, "rms_median") == 7  # at 3 Heun diverges, at 5 the EDM rung is worse than Heun's
    edm.points[-1].values["rms_median"] = 0.5
    assert paper_order_from(result, "rms_median") is None  # not in order at the largest NFE


def test_heun_with_edm_steps_converges_towards_the_reference_on_an_analytic_model():
    result = sampler_ladder(MODEL, "vp", nfe_max=16, seeds=range(4), batch=4)
    assert result.metric == "rms_median" and result.measures == list(SAMPLER_ERRORS)
    edm = {c.label: c for c in result.curves}["+ σ(t)=t & s(t)=1"]
    assert [p.nfe for p in edm.points] == [3, 5, 7, 9, 11, 15]  # NFE = 2N − 1, all <= 16
    assert edm.value(edm.points[-1]) < edm.value(edm.points[0]) / 10
    for curve in result.curves:
        assert curve.points and max(p.nfe for p in curve.points) <= 16
        assert curve.value(curve.knee()) <= curve.value(curve.best()) * 1.03
        assert all(set(p.values) == set(SAMPLER_ERRORS) for p in curve.points)


def sample_cli(tmp_path, name: str, fields: dict, steps: int, seeds: str) -> torch.Tensor:
    """`edmctl sample` with the sampler `fields` and `steps`: its samples.npz, float64 as written."""
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in fields.items()]
    assert main(["sample", "--model", MODEL, *flags, "--steps", str(steps), "--seeds", seeds, "--out", str(tmp_path / name)]) == 0
    with np.load(tmp_path / name / "samples.npz") as npz:
        return torch.from_numpy(npz["samples"])


def test_the_ladders_values_are_edmctl_sample_plus_the_same_measure(tmp_path, monkeypatch):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "runs"))
    result = sampler_ladder(MODEL, "vp", nfe_max=5, seeds=range(3), batch=3)
    curve = result.curves[1]  # + Heun & EDM t_i: VP σ(t) and s(t)
    point = curve.points[-1]
    fields = {key: value for key, value in curve.sampler.items()}
    samples = sample_cli(tmp_path, "ladder", fields, point.steps, "0-2")
    reference = sample_cli(tmp_path, "reference", {"solver": "heun", "disc": "edm", "schedule": "linear", "scaling": "none",
                                                   "rho": 7.0, "sigma_min": fields["sigma_min"], "sigma_max": fields["sigma_max"]},
                           256, "0-2")
    assert point.values == pytest.approx(sampler_error(load_model(MODEL), samples, reference), rel=1e-12, abs=1e-12)


def test_ablate_sampler_records_an_ablate_run_with_a_plot(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("EDMCTL_DB_URL", raising=False)
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "runs"))
    assert main(["ablate", "sampler", "--model", MODEL, "--family", "ve", "--nfe-max", "6", "--seeds", "0-1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["family"] == "ve" and len(doc["curves"]) == 10 and all(c["knee"] for c in doc["curves"])
    assert set(doc["paper_order_from"]) == set(SAMPLER_ERRORS) == set(doc["curves"][0]["points"][0]) - {"steps", "nfe", "value"}
    run = Registry(tmp_path / "runs").get(doc["run"])
    assert run.kind == "ablate" and run.status == "done"
    assert {f"curve0.{name}" for name in SAMPLER_ERRORS} <= set(Registry(tmp_path / "runs").metrics(run.id))
    assert [a.kind for a in Registry(tmp_path / "runs").artifacts(run.id) if a.path.endswith(".png")] == ["plot"]
    assert main(["ablate", "sampler", "--model", MODEL, "--family", "edm"]) == 2
    assert main(["ablate", "sampler", "--model", MODEL, "--metric", "fd"]) == 2  # fd needs a trained model's data
    assert main(["ablate", "sampler", "--model", MODEL, "--seeds", "3"]) == 2  # one seed has no covariance
    assert len(Registry(tmp_path / "runs").list()) == 1  # refused before a run was opened
