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

from edmctl.cli.main import main
from edmctl.errors import UserError
from edmctl.models import load_model

DATA = Path(__file__).parent / "data" / "nvlabs_pickles"
CASES = [case["name"] for case in json.loads((DATA / "cases.json").read_text())]


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


@pytest.mark.parametrize("name", CASES)
def test_samples_equal_generate_py(home, name):
    """The default sampler (Heun, 18 EDM steps, ρ = 7) on seeds 0-3 gives NVlabs generate.py's images, labels
    drawn per seed as generate.py draws them."""
    from edmctl.recipe import Recipe
    from edmctl.sampling import sample

    ref = reference(name)
    model = load_model(str(DATA / f"{name}.pkl"))
    result = sample(model, Recipe().sampler, [int(s) for s in ref["seeds"]], batch=4)
    assert_close(result.samples.numpy(), ref["samples"], 1e-4, f"{name} samples")
