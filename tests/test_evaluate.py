"""The sampler-error measure of analytic models: per-seed RMS to the converged reference (median, 90th
percentile), mode flips as their own event, and the Fréchet distance to the model's exact distribution."""

import pytest
import torch

from edmctl.evaluate import per_seed_rms, reference_sampler, sampler_error
from edmctl.models import GaussianDataDenoiser, GaussianMixtureDenoiser
from edmctl.recipe.schema import Sampler

CORNERS = torch.tensor([[-1.0, -1.0, -1.0, -1.0], [1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0]], dtype=torch.float64)


def three_components(std=0.2) -> GaussianMixtureDenoiser:
    return GaussianMixtureDenoiser(CORNERS.reshape(3, 1, 2, 2), std=std)


def test_one_seed_that_flips_mode_is_a_flip_not_a_larger_error():
    model, g = three_components(), torch.Generator().manual_seed(0)
    picks = torch.arange(20) % 3
    reference = (CORNERS[picks] + 0.2 * torch.randn(20, 4, generator=g, dtype=torch.float64)).reshape(20, 1, 2, 2)
    samples = reference + 0.01 * torch.randn(reference.shape, generator=g, dtype=torch.float64)
    samples[7] = CORNERS[(picks[7] + 1) % 3].reshape(1, 2, 2)  # seed 7 ends at another component
    error = sampler_error(model, samples, reference)
    assert error["flips"] == pytest.approx(1 / 20)
    unflipped = sampler_error(model, torch.cat([samples[:7], samples[8:]]), torch.cat([reference[:7], reference[8:]]))
    assert error["rms_median"] < unflipped["rms_median"] * 1.1 and error["rms_p90"] < unflipped["rms_p90"] * 1.2
    over_all_pixels = float((samples - reference).pow(2).mean().sqrt())  # what the ladder used to report
    assert over_all_pixels > 15 * error["rms_median"]
    assert unflipped["flips"] == 0


def test_per_seed_rms_is_the_rms_over_each_images_pixels():
    x, ref = torch.zeros(2, 1, 2, 2, dtype=torch.float64), torch.zeros(2, 1, 2, 2, dtype=torch.float64)
    x[1, 0, 0, 0] = 2.0
    torch.testing.assert_close(per_seed_rms(x, ref), torch.tensor([0.0, 1.0], dtype=torch.float64))


def test_a_mixtures_moments_are_those_of_its_exact_draws_and_exact_draws_score_near_zero():
    model, g = three_components(std=0.3), torch.Generator().manual_seed(1)
    draws = CORNERS[torch.randint(3, (200_000,), generator=g)] + 0.3 * torch.randn(200_000, 4, generator=g, dtype=torch.float64)
    mean, covariance = model.moments()
    torch.testing.assert_close(mean, draws.mean(0), atol=0.01, rtol=0)
    torch.testing.assert_close(covariance, torch.cov(draws.T), atol=0.02, rtol=0)
    near = sampler_error(model, draws[:4000].reshape(-1, 1, 2, 2), draws[:4000].reshape(-1, 1, 2, 2))
    shifted = sampler_error(model, draws[:4000].reshape(-1, 1, 2, 2) + 0.5, draws[:4000].reshape(-1, 1, 2, 2))
    assert near["fd_exact"] < 0.01 and shifted["fd_exact"] > 0.9  # ‖Δμ‖² = 4 · 0.5²
    assert (near["rms_median"], near["flips"]) == (0.0, 0.0)


def test_a_mixture_sample_belongs_to_the_component_of_its_nearest_image():
    model = three_components()
    x = torch.tensor([[0.9, 0.8, 1.1, 0.7], [0.9, -0.8, 1.1, -0.7], [-2.0, -2.0, -2.0, -2.0]], dtype=torch.float64)
    assert model.components(x.reshape(3, 1, 2, 2)).tolist() == [1, 2, 0]


def test_gaussian_data_has_one_component_and_closed_form_moments():
    model = GaussianDataDenoiser(torch.zeros(1, 2, 2), torch.full((1, 2, 2), 0.5))
    assert model.components(torch.randn(5, 1, 2, 2)).tolist() == [0] * 5
    mean, covariance = model.moments()
    torch.testing.assert_close(covariance, 0.25 * torch.eye(4, dtype=torch.float64))
    assert mean.tolist() == [0.0] * 4


def test_the_reference_is_deterministic_heun_with_edm_steps_over_the_samplers_own_sigma_range():
    ref = reference_sampler(Sampler(solver="euler", disc="vp", schedule="vp", scaling="vp", steps=8, s_churn=5.0),
                            three_components())
    assert (ref.solver, ref.disc, ref.schedule, ref.scaling, ref.s_churn, ref.steps) == ("heun", "edm", "linear", "none", 0.0, 256)
    assert ref.sigma_max == pytest.approx(152.0, abs=0.2) and ref.sigma_min == pytest.approx(0.0105, abs=1e-3)


def test_fd_exact_is_the_fid_formula_and_stays_real_for_two_samples():
    import numpy as np

    from edmctl.evaluate.sampler_error import fd_exact
    from edmctl.fid import Stats, frechet_distance

    model = GaussianDataDenoiser(torch.full((1, 2, 3), 0.3), torch.linspace(0.5, 1.5, 6).reshape(1, 2, 3))
    mean, covariance = (m.numpy() for m in model.moments())
    x = torch.randn(200, 1, 2, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    flat = x.flatten(1).numpy()
    assert fd_exact(model, x) == pytest.approx(frechet_distance(Stats(flat.mean(0), np.cov(flat, rowvar=False)),
                                                                Stats(mean, covariance)), rel=1e-9)
    two, d = flat[:2], flat[0] - flat[1]  # Σ_s = d dᵀ/2 has rank 1: Tr((Σ_s Σ)^½) = √(dᵀ Σ d / 2)
    by_hand = ((two.mean(0) - mean) ** 2).sum() + d @ d / 2 + np.trace(covariance) - 2 * np.sqrt(d @ covariance @ d / 2)
    assert fd_exact(model, x[:2]) == pytest.approx(by_hand, rel=1e-6)
