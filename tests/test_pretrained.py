"""NVlabs/edm network pickles: opened without running their code, they denoise and sample as NVlabs's own classes.

`tests/data/nvlabs_pickles/` holds pickles written by NVlabs/edm's code with its D(x; σ) on fixed inputs and its
`generate.edm_sampler` images for seeds 0-3 (README.md there says how). Agreement: D to 1e-5 and samples to 1e-4,
each relative to max(1, the largest |value|).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edmctl.design.discretizations import iddpm_u_float32
from edmctl.models import load_model
from edmctl.pretrained.recognise import flat_state, network_weights
from edmctl.pretrained.store import prepare_import
from edmctl.pretrained.unpickle import read_pickle
from edmctl.recipe import validate
from edmctl.train.objective import build_denoiser, build_net

DATA = Path(__file__).parent / "data" / "nvlabs_pickles"
CASES = [case["name"] for case in json.loads((DATA / "cases.json").read_text())]
# The largest network (ADM, 64 channels at 16x16, 3.3M parameters) samples for tens of seconds on a busy machine.
SAMPLE_CASES = [pytest.param(name, marks=pytest.mark.slow) if name == "iddpm-adm-cond" else name for name in CASES]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDMCTL_HOME", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "runs"


def reference(name: str) -> dict:
    with np.load(DATA / f"{name}.npz") as npz:
        return {key: npz[key] for key in npz.files}


def assert_close(actual, expected, rtol: float, what: str) -> None:
    scale = max(1.0, float(np.abs(expected).max()))
    worst = float(np.abs(np.asarray(actual, dtype=np.float64) - expected).max())
    assert worst <= rtol * scale, f"{what}: max |difference| {worst:.3g} > {rtol:g} x {scale:.3g}"


def test_every_case_has_its_files():
    assert len(CASES) == 7
    for name in CASES:
        assert (DATA / f"{name}.pkl").is_file() and (DATA / f"{name}.npz").is_file()


@pytest.mark.parametrize("name", CASES)
def test_D_equals_nvlabs(home, name):
    """D(x; σ, class) of the imported network equals NVlabs's `net(x, sigma, class_labels)` to 1e-5."""
    ref = reference(name)
    model = load_model(str(DATA / f"{name}.pkl"))
    labels = torch.from_numpy(ref["class_labels"]) if ref["class_labels"].shape[1] else None
    with torch.no_grad():
        D = model(torch.from_numpy(ref["x"]), torch.from_numpy(ref["sigma"]), labels).to(torch.float64)
    assert_close(D.numpy(), ref["D"], 1e-5, f"{name} D")


@pytest.mark.parametrize("name", SAMPLE_CASES)
def test_samples_equal_generate_py(home, name):
    """The default sampler (Heun, 18 EDM steps, ρ = 7) on seeds 0-3 gives NVlabs generate.py's images, labels
    drawn per seed as generate.py draws them."""
    from edmctl.recipe import Recipe
    from edmctl.sampling import sample

    ref = reference(name)
    model = load_model(str(DATA / f"{name}.pkl"))
    result = sample(model, Recipe().sampler, [int(s) for s in ref["seeds"]], batch=4)
    assert_close(result.samples.numpy(), ref["samples"], 1e-4, f"{name} samples")


def test_the_iddpm_table_is_nvlabss_float32_recurrence():
    """u_j as NVlabs's iDDPMPrecond tabulates them (its pickled `u` buffer), with `precision = "float32"`: the same
    float32 recurrence. Bit for bit on the machine that made the pickle; elsewhere torch's float32 sin may differ by
    an ulp, which the recurrence carries to < 1e-6 relative (8 ulp measured on an AVX-512 Xeon) — hence imports
    use the pickled table itself (next test)."""
    pickled = flat_state(read_pickle(DATA / "iddpm-adm-cond.pkl")["ema"])["u"]
    assert torch.allclose(iddpm_u_float32(1000, 0.001, 0.008), pickled, rtol=1e-6, atol=0)


def test_an_imported_iddpm_uses_the_pickled_table_as_nvlabs_does():
    """NVlabs's loaded iDDPMPrecond keeps its pickled `u` (no __init__ runs): the import carries it, bit for bit,
    into σ_min, σ_max, round_sigma and c_noise, also after the weights go through the registry."""
    pickled = flat_state(read_pickle(DATA / "iddpm-adm-cond.pkl")["ema"])["u"]
    _, found, model = prepare_import(DATA / "iddpm-adm-cond.pkl")
    assert torch.equal(found.u, pickled) and torch.equal(model.precond.u, pickled)
    assert (model.sigma_min, model.sigma_max) == (float(pickled[-2]), float(pickled[0]))
    assert torch.equal(model.round_sigma(pickled[::7] * (1 + 1e-7)), pickled[::7])


def iddpm_recipe(**network):
    return validate({"precond": {"kind": "iddpm"}, "network": {"arch": "adm", **network},
                     "data": {"resolution": 16, "channels": 3, "conditional": True}}, "test")


def test_an_iddpm_recipe_builds_adm_with_2C_outputs_as_nvlabs_so_weights_move_both_ways():
    """EDM issue 15.4: F of an iDDPM recipe has NVlabs's parameter names and shapes (2C output channels), so an
    edmctl iDDPM checkpoint loads into NVlabs's iDDPMPrecond.model and NVlabs's into edmctl's."""
    nvlabs = network_weights(read_pickle(DATA / "iddpm-adm-cond.pkl")["ema"])
    torch.manual_seed(0)
    net = build_net(iddpm_recipe(model_channels=64, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8]), (3, 16, 16), 5)
    ours = net.state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in nvlabs.items()}
    assert ours["out_conv.weight"].shape[0] == 6
    net.load_state_dict(nvlabs, strict=True)


def test_the_denoiser_uses_the_first_C_of_the_2C_outputs():
    """D depends on F's first C output channels only (the learned-variance half is not part of D)."""
    torch.manual_seed(0)
    recipe = iddpm_recipe(model_channels=64, channel_mult=[1], num_blocks=1, attn_resolutions=[])
    net = build_net(recipe, (3, 16, 16), 5).eval()
    D = build_denoiser(recipe, net, (3, 16, 16), 5)
    x, sigma, labels = torch.randn(2, 3, 16, 16), torch.tensor([0.5, 3.0]), torch.eye(5)[[1, 3]]
    with torch.no_grad():
        before = D(x, sigma, labels)
        net.out_conv.weight[3:] += 1.0
        net.out_conv.bias[3:] += 1.0
        after = D(x, sigma, labels)
        F_first = net(x / (sigma.reshape(-1, 1, 1, 1) ** 2 + 1).sqrt(), 999 - D.precond._index(sigma).float(), labels)[:, :3]
    assert torch.equal(before, after)
    assert torch.allclose(after, x - sigma.reshape(-1, 1, 1, 1) * F_first, atol=1e-5)


@pytest.mark.parametrize("name", CASES)
def test_the_sigma_range_is_nvlabss(name):
    """σ_min and σ_max of the imported denoiser are those NVlabs's precond object holds (VP's computed in float32)."""
    state = read_pickle(DATA / f"{name}.pkl")["ema"].state
    _, _, model = prepare_import(DATA / f"{name}.pkl")
    assert (model.sigma_min, model.sigma_max) == (float(state["sigma_min"]), float(state["sigma_max"]))
