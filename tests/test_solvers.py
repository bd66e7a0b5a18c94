"""The solvers beyond the paper, as their papers claim them: convergence orders on Gaussian data, NFE, samplers that
converge in distribution with noise that depends on the seed alone, and the new time steps."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from edmctl.design.discretizations import exponential, polyexponential
from edmctl.design.solvers import STOCHASTIC_SOLVERS, brownian_increments
from edmctl.models import GaussianDataDenoiser, GaussianMixtureDenoiser
from edmctl.recipe import load_recipe
from edmctl.sampling import SeedNoise, sample
from test_sampling import assert_depends_on_seed_alone

ROOT = Path(__file__).resolve().parents[1]


def sampler(*overrides, **fields):
    """The [sampler] section with `fields` set as the CLI sets them."""
    sets = [f"sampler.{k}={v!r}" if isinstance(v, str) else f"sampler.{k}={v}" for k, v in fields.items()]
    return load_recipe(None, [*sets, *overrides]).sampler


@pytest.fixture(scope="module")
def gaussian():
    g = torch.Generator().manual_seed(0)
    mean = 0.5 * torch.randn(1, 4, 4, generator=g, dtype=torch.float64)
    return GaussianDataDenoiser(mean, 0.2 + 1.3 * torch.rand(1, 4, 4, generator=g, dtype=torch.float64))


@pytest.fixture(scope="module")
def mixture():
    images = torch.rand(20, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    return GaussianMixtureDenoiser(images, std=0.2)


# --- convergence orders ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, steps, order", [
    # UniC raises UniP's order by one (Zhao et al. 2023, Sec. 3): UniPC-3 converges at order 4, UniPC-2 at 3.
    ({"solver": "unipc", "order": 3, "disc": "edm"}, [32, 64, 128, 256], 4),
    ({"solver": "unipc", "order": 2, "disc": "edm"}, [32, 64, 128, 256], 3),
    # k-diffusion's (and DPM-Solver's) 3M weights the second difference D2 by φ_3 where the Taylor term needs 2φ_3:
    # its local error is O(h³), so it converges at order 2 like 2M, with a smaller constant (see the README).
    ({"solver": "dpmpp-3m", "disc": "exponential"}, [32, 64, 128, 256], 2),
    # iPNDM's coefficients are those of equal steps and it starts with Euler: order 2 on EDM's steps.
    ({"solver": "ipndm", "order": 4, "disc": "edm"}, [32, 64, 128, 256], 2),
    # DEIS-tAB extrapolates ε in the VP time: order 3 with the third-order polynomial.
    ({"solver": "deis", "order": 3, "disc": "edm"}, [32, 64, 128, 256], 3),
])
def test_multistep_solver_converges_at_its_order_on_gaussian_data(gaussian, fields, steps, order):
    """Max error against the exact solve to σ_min followed by the same final denoising x_N = D(x; σ_min) (so that
    the O(σ_min²) difference between that and x(0) does not floor the fit)."""
    seeds = [0, 1, 2, 3]
    x0 = 80.0 * SeedNoise(seeds, gaussian.img_shape).latents()
    if fields["solver"] == "ipndm":  # iPNDM's last step is an ordinary step onto σ = 0
        exact = gaussian.ode_solution(x0, 80.0, 0.0)
    else:
        exact = gaussian(gaussian.ode_solution(x0, 80.0, 0.002), 0.002)
    errors = [(sample(gaussian, sampler(steps=n, **fields), seeds, batch=4).samples - exact).abs().max().item() for n in steps]
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.35, f"{fields}: errors {errors}, fitted order {slope:.2f}"


def test_the_3m_update_is_third_order_with_the_second_difference_doubled():
    """The claim behind the 3M order above, checked on the update itself: one step of x' = e^(−h)x + … against the
    exact ∫ e^(−(h−u)) D(λ_0 + u) du has local error O(h³) as k-diffusion weights D2, O(h⁴) with 2·D2."""
    from scipy.integrate import quad

    def local_error(h, weight):
        d = lambda lam: math.sin(lam) + lam**2  # noqa: E731
        m0, m1, m2 = d(0.3), d(0.3 - h), d(0.3 - 2 * h)
        d1_0, d1_1 = m0 - m1, m1 - m2  # r0 = r1 = 1
        d1, d2 = d1_0 + (d1_0 - d1_1) / 2, (d1_0 - d1_1) / 2
        phi_2 = math.expm1(-h) / h + 1
        update = -math.expm1(-h) * m0 + phi_2 * d1 - weight * (phi_2 / h - 0.5) * d2
        return update - math.exp(-h) * quad(lambda u: math.exp(u) * d(0.3 + u), 0, h, epsabs=1e-15)[0]

    for weight, order in ((1, 3), (2, 4)):
        ratio = local_error(0.05, weight) / local_error(0.025, weight)
        assert abs(math.log2(abs(ratio)) - order) < 0.2


def test_ipndm_takes_any_schedule_and_scaling(gaussian):
    """iPNDM steps dx/dt of EDM Eq. 4, so it solves the VP ODE (σ(t), s(t) of Table 1's VP column) as well."""
    from edmctl.design.sampler import sigma_range

    def error(steps):
        settings = sampler(solver="ipndm", schedule="vp", scaling="vp", disc="vp", steps=steps)
        sigma_max = sigma_range(settings, gaussian)[1]
        exact = gaussian.ode_solution(sigma_max * SeedNoise([0, 1], gaussian.img_shape).latents(), sigma_max, 0.0)
        return (sample(gaussian, settings, [0, 1], batch=2).samples - exact).abs().max().item()

    assert error(128) < error(32) / 8 and error(128) < 1e-3


# --- NFE ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("solver, nfe", [
    ("dpmpp-3m", lambda n: n), ("unipc", lambda n: n), ("ipndm", lambda n: n), ("deis", lambda n: n),
    ("euler-ancestral", lambda n: n),
    ("dpmpp-2m-sde", lambda n: n), ("dpmpp-3m-sde", lambda n: n), ("dpm2-ancestral", lambda n: 2 * n - 1),
    ("dpmpp-2s-ancestral", lambda n: 2 * n - 1), ("dpmpp-sde", lambda n: 2 * n - 1),
    ("restart", lambda n: 2 * n - 1 + 2 * 2 * (3 - 1)),  # K = 2 restarts of 3 levels: 2K(N_restart − 1) more
])
def test_nfe_counts_every_denoiser_call(mixture, solver, nfe):
    for steps in (1, 2, 7) if solver != "restart" else (7, 18):
        assert sample(mixture, sampler(solver=solver, steps=steps), [0, 1], batch=2).nfe == nfe(steps)


# --- stochastic samplers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("solver", sorted(STOCHASTIC_SOLVERS))
def test_a_stochastic_sample_depends_on_its_seed_alone(mixture, solver):
    settings = sampler(solver=solver, steps=6, **({"s_churn": 5.0} if solver == "restart" else {}))
    one_batch = assert_depends_on_seed_alone(mixture, settings)
    assert not torch.allclose(one_batch[0], one_batch[1])


MOMENT_SEEDS = 1024
Z = 4.5  # sampling-error bound in standard errors (false alarm < 1e-4 per statistic)


@pytest.fixture(scope="module")
def small_gaussian():
    mean = torch.tensor([0.5, -0.3, 0.2, 0.0], dtype=torch.float64).reshape(1, 2, 2)
    return GaussianDataDenoiser(mean, torch.tensor([0.3, 0.7, 1.0, 1.5], dtype=torch.float64).reshape(1, 2, 2))


@pytest.mark.parametrize("solver", sorted(STOCHASTIC_SOLVERS))
def test_stochastic_sampler_reaches_the_data_mean_and_covariance(small_gaussian, solver):
    """On N(μ, diag(s²)) with its exact denoiser, 1024 samples at 64 steps: each mean within Z standard errors
    s/√M, each variance within Z·sqrt(2/(M − 1)) relative, each correlation within Z/√M of 0."""
    settings = sampler(solver=solver, steps=64, **({"s_tmin": 0.01, "s_tmax": 1.0} if solver == "restart" else {}))
    x = sample(small_gaussian, settings, list(range(MOMENT_SEEDS)), batch=MOMENT_SEEDS).samples.flatten(1)
    mean, std = small_gaussian.mean.flatten(), small_gaussian.std.flatten()
    m = MOMENT_SEEDS
    z_mean = (x.mean(0) - mean) / (std / math.sqrt(m))
    variance_ratio = x.var(0) / std**2
    correlation = torch.corrcoef(x.T) - torch.eye(4, dtype=torch.float64)
    assert z_mean.abs().max() < Z, f"mean off by {z_mean.tolist()} standard errors"
    assert (variance_ratio - 1).abs().max() < Z * math.sqrt(2 / (m - 1)), f"variance ratios {variance_ratio.tolist()}"
    assert correlation.abs().max() < Z / math.sqrt(m), f"correlations {correlation.tolist()}"


def test_too_few_steps_leave_a_stochastic_sampler_visibly_off(small_gaussian):
    """The moment check can fail: Euler-ancestral at 2 steps is far from the data's variance."""
    x = sample(small_gaussian, sampler(solver="euler-ancestral", steps=2), list(range(MOMENT_SEEDS)), batch=MOMENT_SEEDS).samples
    variance_ratio = x.flatten(1).var(0) / small_gaussian.std.flatten() ** 2
    assert (variance_ratio - 1).abs().max() > Z * math.sqrt(2 / (MOMENT_SEEDS - 1))


def test_dpmpp_sde_noise_is_one_brownian_motion_per_image():
    """n_1 over [σ_s, σ] and n_2 over [σ_next, σ] are standard normal with correlation sqrt((σ − σ_s)/(σ − σ_next))."""
    sigma, sigma_s, sigma_next = torch.tensor(4.0, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    noise = SeedNoise(list(range(20000)), (1, 1, 1))
    n_1, n_2 = (n.flatten() for n in brownian_increments(noise, sigma, sigma_s, sigma_next))
    expected = math.sqrt(2 / 3)
    assert abs(n_2.std().item() - 1) < Z * math.sqrt(1 / 40000) and abs(n_1.std().item() - 1) < Z * math.sqrt(1 / 40000)
    assert abs(torch.corrcoef(torch.stack([n_1, n_2]))[0, 1].item() - expected) < Z * (1 - expected**2) / math.sqrt(20000)


# --- time steps --------------------------------------------------------------------------------------------

def test_polyexponential_is_polynomial_in_log_sigma():
    """k-diffusion's get_sigmas_polyexponential: ρ = 1 is the exponential schedule; ends at σ_max and σ_min."""
    torch.testing.assert_close(polyexponential(10, 0.002, 80.0, 1.0), exponential(10, 0.002, 80.0, 1.0), rtol=1e-14, atol=0)
    sigmas = polyexponential(5, 0.002, 80.0, 2.0)
    ramp = torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0], dtype=torch.float64) ** 2
    torch.testing.assert_close(sigmas, (ramp * math.log(80.0 / 0.002) + math.log(0.002)).exp(), rtol=1e-14, atol=0)


def test_a_table_of_levels_samples_like_the_discretization_it_lists(mixture):
    levels = sampler(disc="edm", steps=6)
    from edmctl.design.discretizations import edm

    table = sampler(f"sampler.sigmas={edm(6, 0.002, 80.0, 7.0).tolist()}", disc="table", steps=6)
    a = sample(mixture, levels, [0, 1, 2], batch=3)
    b = sample(mixture, table, [0, 1, 2], batch=3)
    assert a.nfe == b.nfe == 11
    torch.testing.assert_close(a.samples, b.samples, rtol=0, atol=1e-12)


def test_the_shipped_fast10_recipe_is_a_table_of_ten_levels_at_ten_nfe(mixture):
    recipe = load_recipe(ROOT / "recipes" / "fast10.toml")
    assert (recipe.sampler.solver, recipe.sampler.disc, recipe.sampler.steps) == ("ipndm", "table", 10)
    assert sample(mixture, recipe.sampler, [0], batch=1).nfe == 10
