"""Watching training (issue 18): sample grids of fixed seeds at their kimg, an FID series, TensorBoard event
files readable by TensorBoard's own reader, all of it without changing a bit of the training, and a run
resumed after kill -9 continuing every series with no point twice and none dropped."""

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

from edmctl.cli.main import main
from edmctl.registry import Registry
from edmctl.train.curves import grids, series
from edmctl.train.loop import due

ROOT = Path(__file__).resolve().parents[1]
RECIPE = str(ROOT / "recipes" / "digits.toml")
# A tiny DDPM++ on 8x8 digits, 16 images a step: ticks every 2 steps, grids every 3, FID and snapshots every 4.
TINY = ["network.model_channels=16", "network.attn_resolutions=[]", "training.batch=16", "training.tick_kimg=0.032",
        "training.snapshot_kimg=0.064", "training.duration_kimg=0.16"]
WATCHED = ["training.grid_kimg=0.048", "training.grid_seeds=16", "eval.every_kimg=0.064", "eval.num=32", "eval.batch=32",
           "training.tensorboard=true"]


def sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def events(run_dir: Path):
    """The run's TensorBoard event files, read by TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    """run1: TINY watched (grids, FID, TensorBoard); run2: TINY unwatched; and the FID reference statistics."""
    folder = tmp_path_factory.mktemp("watch")
    patch = pytest.MonkeyPatch()
    patch.setenv("EDMCTL_HOME", str(folder / "home"))
    ref = folder / "digits_pixels.npz"
    assert main(["fid", "ref", "digits", "--out", str(ref), "--detector", "pixels"]) == 0
    assert main(["train", RECIPE, *sets(TINY + WATCHED + [f"eval.ref={ref}"])]) == 0
    assert main(["train", RECIPE, *sets(TINY)]) == 0
    yield folder / "home", ref
    patch.undo()


def test_an_event_every_kimg_falls_on_its_multiples_and_the_end_and_0_means_never():
    assert due(32, 48, 0.048, done=False) and not due(48, 64, 0.048, done=False) and due(144, 160, 0.048, done=True)
    assert not due(144, 160, 0.0, done=True)


def test_grids_of_fixed_seeds_are_written_at_their_kimg_and_listed_by_show(watched, capsys):
    registry = Registry()
    run = registry.get("run1")
    recorded = [(a.step, registry.artifact_path(a)) for a in registry.artifacts(run.id) if a.kind == "grid"]
    assert [step for step, _ in recorded] == [48, 96, 144, 160]  # every 0.048 kimg, and the end
    for _, path in recorded:
        with Image.open(path) as image:  # 16 seeds: 4 x 4 cells of 8x8 digits shown at 32 px, 2 px apart
            assert image.format == "PNG" and image.size == (4 * 32 + 3 * 2,) * 2 and image.mode == "L"
    assert len({sha256(path) for _, path in recorded}) == 4  # the samples change as the EMA trains
    assert main(["show", "run1", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["grids"]
    assert listed == [{"kimg": step / 1000, "path": str(path)} for step, path in recorded]


def test_fid_is_a_series_with_its_kimg_and_is_plotted(watched, capsys, tmp_path):
    registry = Registry()
    fid = registry.history(1, "fid")
    assert [p.step for p in fid] == [64, 128, 160] and all(p.value > 0 for p in fid)
    assert [p.step for p in registry.history(1, "kid")] == [64, 128, 160]
    extra = registry.get("run1").extra
    assert extra["fid_detector"] == "pixels" and extra["fid_num"] == 32 and extra["fid_ref_sha256"] == sha256(watched[1])
    out = tmp_path / "fid.png"
    assert main(["plot", "run1", "--metric", "fid", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plot"] == str(out)
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 400 and image.size[1] > 300
    assert main(["show", "run1", "--plot", "--json"]) == 0  # the FID panel beside the loss panels
    with Image.open(json.loads(capsys.readouterr().out)["plot"]) as image:
        assert image.size[0] > 1500 and image.size[1] > 700


def test_tensorboard_events_carry_the_registrys_series_and_the_grids(watched, capsys):
    home, _ = watched
    registry, board = Registry(), events(home / "run1")
    for key in ("loss", "loss_sigma0.1-1", "lr", "ema_beta", "images_per_s", "fid"):
        recorded = registry.history(1, key)
        assert [e.step for e in board.Scalars(key)] == [p.step for p in recorded], key
        assert [e.value for e in board.Scalars(key)] == pytest.approx([p.value for p in recorded], rel=1e-6), key
    assert [e.step for e in board.Images("grid")] == [48, 96, 144, 160]
    assert main(["runs", "tensorboard", "run1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["logdirs"] == {"run1": str((home / "run1" / "tensorboard").resolve())}
    assert doc["command"] == f"tensorboard --logdir_spec run1:{doc['logdirs']['run1']}"
    assert main(["runs", "tensorboard", "run2"]) == 2  # trained without training.tensorboard
    assert "run2 wrote no TensorBoard events" in capsys.readouterr().err


def test_the_docs_script_draws_the_grids_over_training(watched, tmp_path):
    spec = importlib.util.spec_from_file_location("make_training_pictures", ROOT / "docs" / "make_training_pictures.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    registry = Registry()
    path = script.grid_strip(registry, registry.get("run1"), tmp_path / "grids.png", count=3)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 2 * image.size[1] > 300


def test_watching_a_run_does_not_change_its_bits(watched):
    registry = Registry()
    states = []
    for run in ("run1", "run2"):
        newest = max((a for a in registry.artifacts(registry.get(run).id) if a.kind == "checkpoint"), key=lambda a: a.step)
        states.append(torch.load(registry.artifact_path(newest), weights_only=True))
    for part in ("net", "ema"):
        assert all(torch.equal(states[0][part][k], states[1][part][k]) for k in states[0][part]), part
    assert [p.value for p in registry.history(1, "loss")] == [p.value for p in registry.history(2, "loss")]


def test_tensorboard_without_the_extra_exits_2_naming_it_and_records_nothing(watched, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` now fails
    before = len(Registry().list())
    assert main(["train", RECIPE, *sets(TINY + ["training.tensorboard=true"])]) == 2
    assert "pip install 'edmctl[tensorboard]'" in capsys.readouterr().err
    assert len(Registry().list()) == before
    assert main(["runs", "tensorboard", "run1"]) == 2
    assert "edmctl runs tensorboard needs TensorBoard" in capsys.readouterr().err


def test_fid_during_training_needs_reference_statistics(watched, capsys, tmp_path):
    assert main(["train", RECIPE, *sets(TINY + ["eval.every_kimg=0.064"])]) == 2
    assert "eval.every_kimg = 0.064 needs eval.ref" in capsys.readouterr().err
    missing = tmp_path / "missing.npz"
    before = len(Registry().list())
    assert main(["train", RECIPE, *sets(TINY + ["eval.every_kimg=0.064", f"eval.ref={missing}"])]) == 2
    assert f"eval.ref {missing} is not a file" in capsys.readouterr().err
    assert len(Registry().list()) == before


KILLED_AT_SNAPSHOT = textwrap.dedent("""
    import os, signal, sys
    from edmctl.cli.main import main
    from edmctl.train.record import Recorder

    def snapshot(self, state, write=Recorder.snapshot):
        if state["nimg"] == 128:  # after the tick, grid and FID of 128 images, before their snapshot
            os.kill(os.getpid(), signal.SIGKILL)
        write(self, state)

    Recorder.snapshot = snapshot
    sys.exit(main(["train", *sys.argv[1:]]))
""")


@pytest.mark.slow
def test_a_run_resumed_after_kill_9_continues_every_series_without_repeating_or_dropping_a_point(watched):
    home, ref = watched
    recipe = [RECIPE, *sets(TINY + WATCHED + [f"eval.ref={ref}"])]
    env = dict(os.environ, EDMCTL_HOME=str(home), OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    victim = subprocess.run([sys.executable, "-c", KILLED_AT_SNAPSHOT, *recipe], env=env, cwd=ROOT, capture_output=True)
    assert victim.returncode == -signal.SIGKILL, victim.stderr.decode()[-2000:]
    killed = Registry().latest(kind="train", status=None)
    assert [p.step for p in Registry().history(killed.id, "fid")] == [64, 128]  # 128 is redone from the snapshot at 64
    assert main(["train", "--resume", killed.label]) == 0
    registry = Registry()
    resumed, whole = registry.latest(kind="train", status="done"), registry.get("run1")
    assert resumed.parent_id == killed.id and resumed.extra["resumed_from_nimg"] == 64
    for key in ("loss", "loss_sigma0.1-1", "lr", "ema_beta", "fid", "kid"):
        assert series(registry, resumed, key) == series(registry, whole, key), key  # every step, every bit
    assert [(step, sha256(path)) for step, path in grids(registry, resumed)] == \
           [(step, sha256(path)) for step, path in grids(registry, whole)]
    board = events(home / resumed.label)  # its parent's series replayed up to 64 images, then its own
    for key in ("loss", "lr", "fid"):
        assert [e.step for e in board.Scalars(key)] == [step for step, _ in series(registry, whole, key)], key
    assert [e.step for e in board.Images("grid")] == [48, 96, 144, 160]


def test_a_fid_series_dearer_than_the_training_on_eval_nums_default_is_refused_and_on_a_given_one_warned(
        watched, capsys, tmp_path):
    from edmctl.recipe import load_recipe
    from edmctl.recipe.schema import fid_series_cost

    home, ref = watched
    plain = tmp_path / "plain.toml"  # eval.num left at its default, 50,000
    plain.write_text("[training]\nduration_kimg = 30\n")
    series = [f"eval.every_kimg=5", f"eval.ref={ref}", "eval.detector='pixels'"]
    before = len(Registry().list())
    for argv in (["recipe", "show", str(plain)], ["train", str(plain), "--dry-run"], ["train", str(plain)]):
        assert main([*argv, *sets(series)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "takes 6 FID(s) of eval.num = 50,000 images at 35 network evaluations" in err
        assert "116.7x the network evaluations of training 30 kimg; eval.num = 428 or less" in err, err
    assert len(Registry().list()) == before
    assert main(["recipe", "show", str(plain), *sets([*series[1:], "training.duration_kimg=200000", "eval.every_kimg=40000"])]) == 0
    capsys.readouterr()  # 6 FIDs of 50k images cost less than 200 Mimg of training: accepted
    recipe = load_recipe(RECIPE, [*series, "eval.num=1797"])  # digits.toml gives eval.num: the user's choice, warned
    assert fid_series_cost(recipe) == (6, 35, 6 * 1797 * 35, 30_000 * 3)
    assert main(["train", RECIPE, "--dry-run", *sets([*TINY, *series, "eval.num=8"])]) == 0  # 1 FID: 280 < 480
    assert "FID(s) of" not in capsys.readouterr().err
    assert main(["train", RECIPE, "--dry-run", *sets([*TINY, *series[1:], "eval.every_kimg=0.064", "eval.num=32"])]) == 0
    assert "warning: eval.every_kimg = 0.064 takes 3 FID(s) of eval.num = 32 images" in capsys.readouterr().err


@pytest.mark.slow
def test_under_nproc_every_rank_measures_the_fid_series_and_it_is_what_one_process_measures(tmp_path, monkeypatch,
                                                                                             capsys):
    """Two gloo processes share each FID of the series, 4 batches of 8 images: its last point, at the end of
    training, equals `edmctl fid RUN` of the final EMA measured alone with the same batches, bit for bit."""
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    ref = tmp_path / "digits_pixels.npz"
    assert main(["fid", "ref", "digits", "--out", str(ref), "--detector", "pixels"]) == 0
    shared = ["eval.every_kimg=0.064", "eval.num=32", "eval.batch=8", f"eval.ref={ref}", "training.batch_gpu=8"]
    assert main(["train", RECIPE, "--nproc", "2", *sets(TINY + shared)]) == 0
    registry = Registry()
    fid, kid = registry.history(1, "fid"), registry.history(1, "kid")
    assert [p.step for p in fid] == [64, 128, 160] and registry.get("run1").world_size == 2
    capsys.readouterr()
    assert main(["fid", "run1", "--num", "32", "--batch", "8", "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert (alone["fid"], alone["kid"]) == (fid[-1].value, kid[-1].value)
