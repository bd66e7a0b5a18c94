"""The sampler ladder (EDM Figure 2) on an analytic model: every rung and solver, each over the step count."""

import json

from edmctl.cli.main import main
from edmctl.registry import Registry
from edmctl.sweep.ablation import Curve, ladder_samplers, sampler_ladder

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


def test_the_knee_is_the_lowest_nfe_within_3_percent_of_the_best():
    curve = Curve("c", {}, [(2, 3, 1.0), (4, 7, 0.102), (8, 15, 0.1), (16, 31, 0.1001)])
    assert curve.best()[1] == 15 and curve.knee()[1] == 7


def test_heun_with_edm_steps_converges_towards_the_reference_on_an_analytic_model():
    result = sampler_ladder(MODEL, "vp", nfe_max=16, seeds=range(4), batch=4)
    assert result.metric == "rms"
    edm = {c.label: c for c in result.curves}["+ σ(t)=t & s(t)=1"]
    assert [p[1] for p in edm.points] == [3, 5, 7, 9, 11, 15]  # NFE = 2N − 1, all <= 16
    assert edm.points[-1][2] < edm.points[0][2] / 10
    for curve in result.curves:
        assert curve.points and max(p[1] for p in curve.points) <= 16
        assert curve.knee()[2] <= curve.best()[2] * 1.03


def test_ablate_sampler_records_an_ablate_run_with_a_plot(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("EDMCTL_DB_URL", raising=False)
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "runs"))
    assert main(["ablate", "sampler", "--model", MODEL, "--family", "ve", "--nfe-max", "6", "--seeds", "0-1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["family"] == "ve" and len(doc["curves"]) == 10 and all(c["knee"] for c in doc["curves"])
    run = Registry(tmp_path / "runs").get(doc["run"])
    assert run.kind == "ablate" and run.status == "done"
    assert [a.kind for a in Registry(tmp_path / "runs").artifacts(run.id) if a.path.endswith(".png")] == ["plot"]
    assert main(["ablate", "sampler", "--model", MODEL, "--family", "edm"]) == 2
