"""`edmctl train`: EDM's loop constants, snapshots that are plain data, resume after kill -9 bit for bit, bad input
exits 2 with nothing recorded, every digits recipe trains, and `edmctl sample` picks up the trained run."""

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from edmctl.cli.main import main
from edmctl.recipe import load_recipe
from edmctl.registry import Registry
from edmctl.train.data import IndexStream
from edmctl.train.ema import ema_beta, make_ema, update_ema
from edmctl.train.loop import accumulation, adam, apply_gradients, lr_at

ROOT = Path(__file__).resolve().parents[1]
# A tiny DDPM++ on 8x8 digits: 16 images a step, a tick and a snapshot every few steps.
TINY = ["network.model_channels=16", "network.attn_resolutions=[]", "training.batch=16",
        "training.tick_kimg=0.032", "training.snapshot_kimg=0.064", "training.duration_kimg=0.16"]


def sets(*overrides: str) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "home"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocesses (OMP_NUM_THREADS=1): same arithmetic, same bits
    yield tmp_path / "home"
    torch.set_num_threads(threads)


def snapshot_of(run: str) -> dict:
    registry = Registry()
    record = registry.get(run)
    newest = max((a for a in registry.artifacts(record.id) if a.kind == "checkpoint"), key=lambda a: a.step)
    return torch.load(registry.artifact_path(newest), weights_only=True)


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_ema_beta_is_edms_half_life_with_ramp_up():
    # 0.5 ** (batch / halflife_nimg), halflife = min(halflife_kimg * 1000, cur_nimg * ratio)
    assert ema_beta(512, 10_000_000, 500, 0.05) == pytest.approx(0.5 ** (512 / 500_000))
    assert ema_beta(512, 1_000_000, 500, 0.05) == pytest.approx(0.5 ** (512 / 50_000))
    assert ema_beta(512, 1_000_000, 500, None) == pytest.approx(0.5 ** (512 / 500_000))
    assert ema_beta(512, 0, 500, 0.05) == 0.0  # first step: the EMA takes the weights


@pytest.mark.parametrize("beta", [0.0, 0.3, 0.5, 0.50000006, 0.9, 0.99991, 1 - 1e-12, 1.0])
def test_ema_update_is_edms_lerp_bit_for_bit(beta):
    """In place for β > ½, EDM's θ.lerp(θ_ema, β) otherwise: the same bits either way, on tensors of odd sizes
    (lerp's vectorised body and its scalar tail) and values over many orders of magnitude."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(37, 129), torch.nn.Conv2d(3, 67, 3))
    ema = make_ema(net)
    with torch.no_grad():
        for p in ema.parameters():
            p.mul_(torch.randn_like(p).exp2().mul(8)).add_(torch.randn_like(p))
    expected = [p.detach().lerp(p_ema, beta) for p_ema, p in zip(ema.parameters(), net.parameters())]
    update_ema(ema, net, beta)
    assert all(torch.equal(p_ema, e) for p_ema, e in zip(ema.parameters(), expected))


def test_lr_ramps_up_linearly_then_holds():
    assert lr_at(1e-3, 0, 10) == 0 and lr_at(1e-3, 5000, 10) == pytest.approx(5e-4) and lr_at(1e-3, 20_000, 10) == 1e-3


def test_gradient_accumulation_reaches_the_global_batch():
    assert accumulation(512, None, 8) == (64, 1)
    assert accumulation(512, 16, 8) == (16, 4)
    with pytest.raises(Exception, match="multiple"):
        accumulation(512, 24, 8)


def test_image_order_resumes_from_its_position():
    whole = IndexStream(10, seed=3).take(25)
    first = IndexStream(10, seed=3)
    head = first.take(13)
    tail = IndexStream(10, seed=3, position=first.position).take(12)
    assert torch.equal(torch.cat([head, tail]), whole)
    assert sorted(whole[:10].tolist()) == list(range(10))  # each epoch is a permutation


def test_snapshots_are_plain_data_recorded_with_sha256(home, capsys):
    assert main(["train", str(ROOT / "recipes/digits.toml"), *sets(*TINY), "--json"]) == 0
    registry = Registry()
    run = registry.latest(kind="train", status="done")
    snapshots = [a for a in registry.artifacts(run.id) if a.kind == "checkpoint"]
    assert [a.step for a in snapshots] == [64, 128, 160]
    from edmctl.train.checkpoint import file_sha256

    for artifact in snapshots:
        path = registry.artifact_path(artifact)
        assert file_sha256(path) == artifact.sha256
        state = torch.load(path, weights_only=True)  # no pickled objects: would raise otherwise
        assert state["nimg"] == artifact.step and state["ema"].keys() == state["net"].keys()
        assert len(state["rng"]["torch_cpu"]) == 1 and state["optimizer"]["state"]
    metrics = registry.metrics(run.id)
    assert {"loss", "images_per_s", "memory_gib", "kimg", "lr", "ema_beta"} <= set(metrics)
    assert 0 < metrics["lr"].value <= run.recipe["training"]["lr"] and 0 <= metrics["ema_beta"].value < 1
    assert any(key.startswith("loss_sigma") for key in metrics)
    assert not list(home.glob("run*/.*tmp*"))  # nothing half-written left behind


def run_cli(args: list[str], home: Path) -> subprocess.Popen:
    env = dict(os.environ, EDMCTL_HOME=str(home), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "edmctl", "train", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def recorded_snapshots(run_id: int) -> list:
    registry = Registry()
    return [a for a in registry.artifacts(run_id) if a.kind == "checkpoint"] if registry.exists else []


@pytest.mark.slow
def test_resume_after_kill_9_is_bitwise_identical_to_an_uninterrupted_run(home, tmp_path):
    longer = [s for s in TINY if not s.startswith("training.duration_kimg=")] + ["training.duration_kimg=0.24"]
    recipe = [str(ROOT / "recipes/digits.toml"), *sets(*longer)]
    assert main(["train", *recipe]) == 0
    uninterrupted = snapshot_of("latest")
    victim = run_cli(recipe, home)
    try:
        deadline = time.time() + 120
        while not recorded_snapshots(2) and victim.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.wait()
    assert victim.returncode == -signal.SIGKILL  # killed mid-way, not finished
    assert main(["train", "--resume", "run2"]) == 0
    resumed = Registry().get("run3")
    assert resumed.parent_id == 2 and resumed.status == "done"
    final = snapshot_of("run3")
    assert final["nimg"] == uninterrupted["nimg"] == 240
    assert_same_weights(final["net"], uninterrupted["net"])
    assert_same_weights(final["ema"], uninterrupted["ema"])


@pytest.mark.parametrize("name", ["digits.toml", "digits_vp.toml", "digits_p2.toml"])
def test_every_digits_recipe_trains_a_few_steps(home, name):
    assert main(["train", str(ROOT / "recipes" / name), *sets("training.batch=16", "training.duration_kimg=0.032")]) == 0
    run = Registry().latest(kind="train", status="done")
    assert np.isfinite(Registry().metrics(run.id)["loss"].value)


def test_bad_input_exits_2_and_records_nothing(home, tmp_path, capsys):
    recipe = str(ROOT / "recipes/digits.toml")
    np.savez(tmp_path / "unlabelled.npz", images=np.zeros((4, 1, 8, 8), np.uint8))
    cases = [
        [recipe, *sets("data.source=\"/no/such/dataset.zip\"")],
        [recipe, *sets(f"data.source=\"{tmp_path / 'unlabelled.npz'}\"", "data.conditional=true")],
        [recipe, *sets("training.batch=24", "training.batch_gpu=16")],
        ["--resume", "run7"],
        [],
    ]
    for args in cases:
        assert main(["train", *args]) == 2, args
        assert "error" in capsys.readouterr().err
    assert not Registry().exists or not Registry().list(kind=None, status=None)
    assert not list(home.glob("run*"))


def test_dry_run_measures_and_writes_nothing(home, capsys):
    assert main(["train", str(ROOT / "recipes/digits.toml"), *sets(*TINY), "--dry-run", "--json"]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    assert doc["parameters"] > 0 and doc["seconds_per_kimg"] > 0 and doc["recipe"]["training"]["batch"] == 16
    assert main(["train", str(ROOT / "recipes/digits.toml"), *sets(*TINY), "--dry-run"]) == 0
    dumped = home.parent / "dry-run.toml"
    dumped.write_text(capsys.readouterr().out)  # the text output is the resolved recipe, a loadable TOML file
    assert load_recipe(dumped).hash() == doc["recipe_hash"] and "s/kimg measured" in dumped.read_text()
    assert not home.exists()


def test_sample_without_model_uses_the_newest_training_run_and_its_sampler(home, capsys):
    assert main(["train", str(ROOT / "recipes/digits.toml"), *sets(*TINY, "sampler.steps=4")]) == 0
    snapshots = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"wrote {home / 'run1'}")]
    assert snapshots and all(".pt" in line for line in snapshots)  # every file it wrote: its snapshots
    assert main(["sample", "--seeds", "0-1", "--json"]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == "run:1" and doc["nfe"] == 7  # the run's [sampler]: 4 Heun steps
    assert Registry().get(doc["run"]).parent_id == 1
    assert main(["sample", "--model", "run1", "--seeds", "0", "--json"]) == 0


DDP_SCRIPT = """
import sys, torch
from edmctl.recipe import load_recipe
from edmctl.train.distributed import init_distributed, shutdown
from edmctl.train.loop import Trainer
from edmctl.train.session import open_training_data
recipe = load_recipe(sys.argv[1], overrides=sys.argv[3:])
dist = init_distributed()
dataset, _ = open_training_data(recipe)
trainer = Trainer(recipe, dataset, dist)
for _ in range(3):
    trainer.step()
torch.save({"net": trainer.net.state_dict(), "ema": trainer.ema.state_dict()}, f"{sys.argv[2]}/rank{dist.rank}.pt")
shutdown(dist)
"""


@pytest.mark.slow
def test_two_gloo_processes_keep_identical_replicas(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
               str(ROOT / "recipes/digits.toml"), str(tmp_path), *TINY, "training.batch_gpu=4"]
    subprocess.run(command, check=True, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert_same_weights(rank0["net"], rank1["net"])
    assert_same_weights(rank0["ema"], rank1["ema"])
    from edmctl.recipe import load_recipe
    from edmctl.train.objective import build_net

    torch.manual_seed(0)
    initial = build_net(load_recipe(ROOT / "recipes/digits.toml", TINY), (1, 8, 8), 0).state_dict()
    assert any(not torch.equal(initial[k], rank0["net"][k]) for k in initial)  # they trained, in step


def test_the_weight_update_zeroes_nan_gradients_and_clamps_infinite_ones_to_1e5_as_edms_loop():
    """EDM's training_loop.py: nan_to_num(grad, nan=0, posinf=1e5, neginf=-1e5) before Adam's step."""
    torch.manual_seed(0)
    net = torch.nn.Linear(2, 2)
    twin, ema = copy.deepcopy(net), make_ema(net)
    grad = torch.tensor([[float("nan"), float("inf")], [-float("inf"), 0.25]])
    for module in (net, twin):
        module.weight.grad, module.bias.grad = grad.clone(), torch.zeros(2)
    apply_gradients(adam(net.parameters(), 1e-3, (0.9, 0.999), 1e-8), net, ema, 1e-3, 0.5)
    assert torch.equal(net.weight.grad, torch.tensor([[0.0, 1e5], [-1e5, 0.25]]))
    edms = adam(twin.parameters(), 1e-3, (0.9, 0.999), 1e-8)
    twin.weight.grad = torch.nan_to_num(twin.weight.grad, nan=0, posinf=1e5, neginf=-1e5)
    edms.step()
    assert torch.equal(net.weight, twin.weight) and torch.equal(net.bias, twin.bias)
