"""Sweeps whose trials train: a `train` trial is a training run of its own recipe reporting the final loss, and a
`train+fid` trial also measures the FD of its EMA weights against reference statistics computed once per sweep."""

from pathlib import Path

import torch

from edmctl.fid import load_detector, load_stats
from edmctl.recipe import load_recipe
from edmctl.registry import Registry
from edmctl.sweep import read_sweep, run_sweep, sweep_results
from edmctl.sweep.trials import data_stats, reference_file
from edmctl.train import load_training_run

DIGITS = Path(__file__).resolve().parents[1] / "recipes" / "digits.toml"
# Two optimizer steps of 16 images on a tiny DDPM++, a tick each step, one snapshot at the end; 4 Heun steps.
TINY = """
[set]
"network.model_channels" = 8
"training.batch" = 16
"training.duration_kimg" = 0.032
"training.tick_kimg" = 0.016
"training.snapshot_kimg" = 0.032
"sampler.steps" = 4
"eval.num" = 24
"eval.batch" = 24
"""


def write_sweep(tmp_path, trial: str) -> Path:
    path = tmp_path / f"{trial.replace('+', '_')}.toml"
    path.write_text(f'base = "{DIGITS}"\ntrial = "{trial}"\n{TINY}\n[grid]\n"training.seed" = [0, 1]\n')
    return path


def finished(outcome, home) -> list:
    registry = Registry(home)
    return [registry.get(i) for i in outcome.plan.trial_ids.values()]


def test_train_trials_are_training_runs_that_report_their_final_loss(tmp_path, home):
    outcome = run_sweep(read_sweep(write_sweep(tmp_path, "train")), home=home)
    assert not outcome.failed and len(outcome.outcomes) == 2
    registry = Registry(home)
    for trial in finished(outcome, home):
        assert (trial.kind, trial.status) == ("train", "done")
        history = registry.history(trial.id, "loss")
        assert len(history) == 3  # two ticks in the loop, the final value logged by the trial
        assert history[-1].value == history[-2].value > 0
        assert [a.kind for a in registry.artifacts(trial.id)].count("checkpoint") == 1
    results = sweep_results(outcome.plan.sweep_id, home)
    assert results.metric == "loss" and all(row.value is not None for row in results.rows)


def test_train_fid_trials_measure_the_ema_weights_against_statistics_cached_in_the_sweep(tmp_path, home):
    spec = read_sweep(write_sweep(tmp_path, "train+fid"))
    outcome = run_sweep(spec, home=home)
    assert not outcome.failed
    registry = Registry(home)
    trials = finished(outcome, home)
    values = [registry.metrics(t.id)["fid"].value for t in trials]
    assert all(v > 0 for v in values) and values[0] != values[1]  # two seeds, two different models
    recipe = load_recipe(DIGITS)
    detector = load_detector("pixels", recipe.eval.protocol, "cpu")
    cached = reference_file(recipe, detector, registry.run_dir(outcome.plan.sweep_id))
    assert cached.is_file()
    assert torch.allclose(torch.from_numpy(load_stats(cached).mu), torch.from_numpy(data_stats(recipe, detector).mu))
    model = load_training_run(f"run{trials[0].id}")  # a trial samples like any training run
    assert model.img_shape == (1, 8, 8)
