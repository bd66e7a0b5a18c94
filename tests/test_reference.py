"""edmctl's samplers agree number for number with NVlabs/edm and k-diffusion (tests/data/reference/README.md).

Each case's `flags` are edmctl's own `--flag` names; they become recipe overrides `sampler.<field>=<value>`, the
mixture is loaded through `ideal:PATH.npz` like a user's model, and the samples and NFE must match.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edmctl.models import load_model
from edmctl.recipe import load_recipe
from edmctl.sampling import sample

# The project's own copy (a clone of the repository alone passes), or wherever EDMCTL_REFERENCE points.
REFERENCE = Path(os.environ.get("EDMCTL_REFERENCE", Path(__file__).resolve().parent / "data" / "reference"))
SOURCES = ("edm_samplers", "kdiffusion_samplers")
TOLERANCE = {"iddpm": 1e-4}  # the NVlabs iDDPM table is float32 inside (README); every other case 1e-5
DEFAULT_TOLERANCE = 1e-5


def reference_cases() -> list:
    cases = []
    for source in SOURCES:
        path = REFERENCE / f"{source}.json"
        if path.exists():
            cases += [pytest.param(source, case, id=f"{source}-{case['key']}") for case in json.loads(path.read_text())]
    return cases


def test_the_reference_vectors_are_there():
    """Every case below comes from these files: their absence must fail, not silently test nothing."""
    assert len(reference_cases()) == 17, f"expected 10 NVlabs/edm + 7 k-diffusion cases in {REFERENCE}"


def flags_to_overrides(flags: dict) -> list[str]:
    """`{"s-churn": 40, "solver": "heun"}` → `["sampler.s_churn=40", "sampler.solver='heun'"]` (what the CLI does)."""
    return [f"sampler.{name.replace('-', '_')}={json.dumps(value)}" for name, value in flags.items()]


@pytest.fixture(scope="module")
def reference_npz():
    return {source: np.load(REFERENCE / f"{source}.npz") for source in SOURCES if (REFERENCE / f"{source}.npz").exists()}


@pytest.mark.parametrize("source, case", reference_cases())
def test_sampler_matches_reference_implementation(tmp_path, reference_npz, source, case):
    data = reference_npz[source]
    np.savez(tmp_path / "mixture.npz", images=data["dataset"], std=np.float64(case["std"]))
    model = load_model(f"ideal:{tmp_path / 'mixture.npz'}")
    sampler = load_recipe(None, overrides=flags_to_overrides(case["flags"])).sampler
    result = sample(model, sampler, case["seeds"], batch=len(case["seeds"]))
    expected = data[case["key"]]
    tolerance = TOLERANCE.get(case["flags"].get("disc"), DEFAULT_TOLERANCE)
    assert result.nfe == case["nfe"]
    assert result.samples.shape == expected.shape
    np.testing.assert_allclose(result.samples.numpy(), expected, rtol=0, atol=tolerance)
