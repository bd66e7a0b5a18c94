"""Hostile and mistaken sweep files end in one clear error (exit 2) before anything is built or recorded."""

import json
import time

import pytest

from edmctl.cli.main import main
from edmctl.errors import UserError
from edmctl.registry import Registry
from edmctl.sweep import read_sweep
from edmctl.sweep.expand import count_trials, iter_trials

MODEL = "ideal:digits?std=0.2&n=50"


def sweep_file(tmp_path, body: str, head: str = f'model = "{MODEL}"\nseeds = "0-3"\n'):
    path = tmp_path / "sweep.toml"
    path.write_text(head + body)
    return path


@pytest.mark.parametrize("field, message", [
    ('{ dist = "int", low = 1.5, high = 3 }', "low and high integers"),
    ('{ dist = "int", low = 1, high = 3.0 }', "low and high integers"),
    ('{ dist = "int", low = true, high = 3 }', "low and high integers"),
    ('{ dist = "int", low = 5, high = 3 }', "low <= high"),
    ('{ dist = "choice", values = [] }', "non-empty list"),
    ('{ dist = "choice", values = "heun" }', "non-empty list"),
    ('{ dist = "uniform", low = "a", high = 2 }', "finite numbers"),
    ('{ dist = "uniform", low = nan, high = 2 }', "finite numbers"),
    ('{ dist = "uniform", low = 1, high = inf }', "finite numbers"),
    ('{ dist = "uniform", low = 3, high = 2 }', "low <= high"),
    ('{ dist = "log-uniform", low = 0, high = 2 }', "0 < low <= high"),
])
def test_a_random_axis_with_wrong_parameters_is_refused_naming_them(tmp_path, home, capsys, field, message):
    path = sweep_file(tmp_path, f'[random]\nn = 3\n"sampler.steps" = {field}\n')
    assert main(["sweep", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and "sampler.steps" in err and err.startswith("error:")
    assert main(["sweep", str(path)]) == 2 and not home.exists()


def test_a_million_point_grid_is_counted_and_refused_at_once_unless_allowed(tmp_path, home, capsys):
    axis = list(range(100))
    path = sweep_file(tmp_path, f'[grid]\n"sampler.steps" = {axis}\n"sampler.s_churn" = {axis}\n"sampler.rho" = {axis}\n'
                                '[random]\nn = 2\n"sampler.s_noise" = { dist = "uniform", low = 1.0, high = 1.1 }\n')
    assert count_trials(read_sweep(path)) == 2_000_000
    start = time.perf_counter()
    for argv in (["sweep", str(path), "--dry-run"], ["sweep", str(path)], ["sweep", "show", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "2,000,000 trials, more than the cap of 10,000" in err and "--max-trials 2000000" in err
    assert time.perf_counter() - start < 5 and not home.exists()  # counted, not built
    with pytest.raises(UserError, match="more than the cap of 10"):
        next(iter_trials(read_sweep(path), max_trials=10))


def test_validation_reports_progress_up_to_the_count(tmp_path):
    spec = read_sweep(sweep_file(tmp_path, '[grid]\n"sampler.steps" = [4, 8, 16]\n"sampler.rho" = [5.0, 7.0]\n'))
    seen = []
    trials = list(iter_trials(spec, on_progress=lambda done, total: seen.append((done, total))))
    assert len(trials) == 6 and seen == [(i, 6) for i in range(1, 7)]


@pytest.mark.parametrize("trial, metric", [("sample", "fid"), ("sample", "loss"), ("fid", "rms"), ("train", "fid"),
                                           ("train+fid", "rms")])
def test_a_metric_the_trials_do_not_record_is_refused_before_anything_is_recorded(tmp_path, home, capsys, trial, metric):
    path = sweep_file(tmp_path, '[grid]\n"sampler.steps" = [2, 3]\n',
                      head=f'model = "{MODEL}"\nseeds = "0-3"\ntrial = "{trial}"\nmetric = "{metric}"\n')
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"metric = '{metric}' is not recorded by {trial} trials" in err
    assert Registry(home).list() == [] and not (home / "run1").exists()


def test_sweep_show_lists_the_best_trials_and_says_how_many_more(tmp_path, home, capsys, monkeypatch):
    from edmctl.sweep import trials

    monkeypatch.setitem(trials.TRIALS, "sample", lambda recipe, run, settings, device: {"rms_median": float(recipe.sampler.steps)})
    path = sweep_file(tmp_path, f'[grid]\n"sampler.steps" = {list(range(2, 9))}\n')
    assert main(["sweep", str(path), "--jobs", "1", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert "... and 4 more trial(s)" in out and out.index("run2 ") < out.index("run3 ")  # best (2 steps) first
    assert f"wrote {home / 'run1' / 'sweep.png'}" in out  # the plot the README promises, where it is
    for ref in ("latest", "1"):  # latest: the newest sweep, not its last trial
        assert main(["sweep", "show", ref, "--limit", "0"]) == 0
        out = capsys.readouterr().out
        assert "sweep" in out and "run1 " in out and "more trial" not in out and f"file {home / 'run1' / 'sweep.png'}" in out
    assert main(["sweep", "show", "latest", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == [str(home / "run1" / "sweep.png")]


def test_a_trial_that_kept_no_samples_is_refused_by_reproduce_before_any_work(tmp_path, home, capsys):
    """A sweep's sample trials keep their metrics, not samples.npz: a reproduction has nothing to compare with."""
    assert main(["sweep", str(sweep_file(tmp_path, '[grid]\n"sampler.steps" = [2]\n'))]) == 0
    trial = Registry(home).latest(kind="sample", status=None)
    runs = len(Registry(home).list(limit=None))
    assert main(["reproduce", trial.label]) == 2
    assert "recorded no samples.npz" in capsys.readouterr().err
    assert len(Registry(home).list(limit=None)) == runs


@pytest.mark.parametrize("trial", ["train", "train+fid"])
@pytest.mark.parametrize("grid, says", [
    ('"network.model_channels" = [8, 132]', "trial 1 (network.model_channels=132): network.model_channels 132"),  # 32 groups
    ('"network.channel_mult" = [[1, 2], [1, 2, 2, 2, 2]]', "network.channel_mult=[1, 2, 2, 2, 2]): network.channel_mult "
                                                          "has 5 levels, so img_resolution 8 must be divisible by 16"),
])
def test_a_training_grid_point_whose_network_cannot_be_built_is_refused_before_anything_is_recorded(
        tmp_path, home, capsys, trial, grid, says):
    from pathlib import Path

    digits = Path(__file__).resolve().parents[1] / "recipes" / "digits.toml"
    path = sweep_file(tmp_path, f'[grid]\n{grid}\n', head=f'base = "{digits}"\ntrial = "{trial}"\n')
    for argv in (["sweep", str(path), "--dry-run"], ["sweep", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path} ") and err.count("\n") == 1 and says in err, err
    assert not home.exists()
