"""Training curves (`edmctl plot`, `edmctl show --plot`): read back from the registry, a resumed run continuing
its parent's series, written as readable PNGs."""

import json

import pytest
from PIL import Image

from edmctl.cli.main import main
from edmctl.registry import Registry, open_run
from edmctl.train.curves import series
from edmctl.train.stats import bin_names


def train_run(lr: float, ticks: range, parent=None, resumed_from: int = 0) -> int:
    """A recorded training run with a tick every 1000 images: loss per σ bin, loss and images/s."""
    with open_run(kind="train", recipe={"training": {"lr": lr, "batch": 16}}, parent=parent) as run:
        run.update(resumed_from_nimg=resumed_from)
        for tick in ticks:
            values = {name: 1.0 / (tick + k + 1) for k, name in enumerate(bin_names())}
            loss = 1.0 / tick + (0.5 if parent else 0.0)  # the resumed run's values differ from its parent's
            run.log_metrics({**values, "loss": loss, "images_per_s": 100.0 + tick, "lr": min(tick / 2, 1) * lr,
                             "ema_beta": 0.99}, step=tick * 1000)
        return run.id


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path))
    monkeypatch.delenv("EDMCTL_DB_URL", raising=False)
    first = train_run(0.01, range(1, 5))  # ticks 1..4; killed after the snapshot at 3 kimg, say
    train_run(0.01, range(4, 7), parent=first, resumed_from=3000)  # resumed: ticks 4..6 again from 3 kimg
    train_run(0.02, range(1, 4))
    return tmp_path


def test_a_resumed_run_continues_its_parents_series_without_repeating_or_dropping_a_point(home):
    registry = Registry(home)
    points = series(registry, registry.get("run2"), "loss")
    assert [step for step, _ in points] == [1000, 2000, 3000, 4000, 5000, 6000]
    assert points[2] == (3000, 1 / 3) and points[3] == (4000, 0.75)  # the parent's up to 3 kimg, then its own
    assert registry.history(1, "loss")[3].step == 4000  # the parent's tick at 4 kimg is left out, not repeated
    assert [step for step, _ in series(registry, registry.get("run1"), "loss")] == [1000, 2000, 3000, 4000]


def test_show_plot_writes_one_runs_curves_and_prints_the_path(home, capsys):
    assert main(["show", "run2", "--plot", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    path = doc["plot"]
    assert path == str(Registry(home).run_dir(2) / "curves.png") and doc["files"] == [path]
    with Image.open(path) as image:
        assert image.size[0] > 800 and image.size[1] > 300


def test_plot_puts_several_runs_on_one_metric_with_the_differing_recipe_fields(home, capsys, tmp_path):
    out = tmp_path / "lr.png"
    assert main(["plot", "run2", "run3", "--metric", "loss_sigma0.1-1", "--out", str(out)]) == 0
    assert f"plot: {out}" in capsys.readouterr().out.replace("\n", "")
    assert main(["plot", "run2", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == [str(out)]
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[1] > 300
    from edmctl.train.curves import differing_fields

    assert differing_fields([Registry(home).get(r) for r in ("run2", "run3")]) == ["training.lr"]
    assert main(["plot", "run2", "--metric", "fid"]) == 2  # never logged
    assert "logged no 'fid'" in capsys.readouterr().err
