"""The solvers beyond the paper agree with their reference implementations, run outside edmctl on the same
analytic models and the same per-seed noise (tests/data/reference/beyond_edm_samplers.md says how the vectors were made).

Deterministic solvers on Gaussian data (exact denoiser) and on a small mixture; the stochastic ones on the mixture,
with the reference fed each image's own draws in edmctl's order. Everything is float64 on both sides, so the only
differences are rounding: 1e-9 is far above it and far below any real discrepancy.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edmctl.models import GaussianDataDenoiser, GaussianMixtureDenoiser
from edmctl.recipe import load_recipe
from edmctl.sampling import sample

DATA = Path(__file__).parent / "data" / "reference"
CASES = json.loads((DATA / "beyond_edm_samplers.json").read_text())
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def reference():
    with np.load(DATA / "beyond_edm_samplers.npz") as npz:
        return {key: npz[key] for key in npz.files}


def model_for(name: str, reference):
    if name == "gaussian":
        return GaussianDataDenoiser(torch.from_numpy(reference["mean"]), torch.from_numpy(reference["std"]))
    return GaussianMixtureDenoiser(torch.from_numpy(reference["images"]), std=float(reference["mix_std"]))


def test_every_new_solver_has_a_reference_case():
    solvers = {case["flags"]["solver"] for case in CASES}
    assert solvers == {"dpmpp-3m", "unipc", "ipndm", "euler-ancestral", "dpm2-ancestral", "dpmpp-2s-ancestral",
                       "dpmpp-sde", "dpmpp-2m-sde", "dpmpp-3m-sde", "restart"}


@pytest.mark.parametrize("case", CASES, ids=[case["key"] for case in CASES])
def test_solver_matches_its_reference_implementation(reference, case):
    overrides = [f"sampler.{name}={json.dumps(value)}" for name, value in case["flags"].items()]
    result = sample(model_for(case["model"], reference), load_recipe(None, overrides).sampler, case["seeds"], batch=2)
    assert result.nfe == case["nfe"]
    np.testing.assert_allclose(result.samples.numpy(), reference[case["key"]], rtol=0, atol=TOLERANCE)
