"""The analytic models: the Gaussian-mixture / ideal denoiser (EDM App. B.3) and Gaussian data in closed form."""

import numpy as np
import pytest
import torch

from edmctl.errors import UserError
from edmctl.models import GaussianDataDenoiser, GaussianMixtureDenoiser, load_model


def direct_mixture_denoiser(images, std, x, sigma):
    """The mixture formula written out term by term, one image at a time (the definition, not the fast form)."""
    out = []
    for x_n, sigma_n in zip(x, sigma):
        logits = torch.stack([-((x_n - y) ** 2).sum() / (2 * (sigma_n**2 + std**2)) for y in images])
        w = torch.softmax(logits, dim=0)
        out.append(sum(w_k * (y + std**2 / (std**2 + sigma_n**2) * (x_n - y)) for w_k, y in zip(w, images)))
    return torch.stack(out)


@pytest.fixture
def images():
    return torch.rand(12, 2, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1


@pytest.mark.parametrize("std", [0.0, 0.2])
def test_mixture_denoiser_is_the_posterior_mean_formula(images, std):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 2, 3, 3, generator=g, dtype=torch.float64)
    sigma = torch.tensor([0.05, 0.3, 1.0, 4.0, 80.0], dtype=torch.float64)
    model = GaussianMixtureDenoiser(images, std=std)
    torch.testing.assert_close(model(x, sigma), direct_mixture_denoiser(images, std, x, sigma), rtol=0, atol=1e-12)
    torch.testing.assert_close(model(x, sigma[2]), direct_mixture_denoiser(images, std, x, sigma[2].expand(5)), rtol=0, atol=1e-12)


def test_ideal_denoiser_at_vanishing_noise_returns_the_nearest_image(images):
    model = GaussianMixtureDenoiser(images, std=0.0)
    x = images[[3, 7, 0]] + 0.01 * torch.randn(3, 2, 3, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for sigma in (1e-4, 0.0):
        torch.testing.assert_close(model(x, sigma), images[[3, 7, 0]], rtol=0, atol=1e-12)


def test_ideal_denoiser_at_huge_noise_returns_the_dataset_mean(images):
    x = torch.randn(2, 2, 3, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(GaussianMixtureDenoiser(images)(x, 1e8), images.mean(0).expand(2, -1, -1, -1), rtol=0, atol=1e-9)


def test_one_component_mixture_is_gaussian_data(images):
    mean, std = images[0], 0.7
    x = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    sigma = torch.tensor([0.01, 0.5, 2.0, 50.0], dtype=torch.float64)
    gaussian = GaussianDataDenoiser(mean, torch.full_like(mean, std))
    torch.testing.assert_close(GaussianMixtureDenoiser(mean[None], std=std)(x, sigma), gaussian(x, sigma), rtol=0, atol=1e-12)


def test_gaussian_ode_solution_solves_the_probability_flow_ode():
    """dx/dσ = (x − D(x; σ))/σ (EDM Eq. 4, σ(t) = t, s = 1), checked by a central difference."""
    g = torch.Generator().manual_seed(5)
    model = GaussianDataDenoiser(torch.randn(1, 4, 4, generator=g, dtype=torch.float64), torch.rand(1, 4, 4, generator=g, dtype=torch.float64) + 0.2)
    x0 = 80 * torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    for sigma in (0.1, 1.0, 10.0):
        h = 1e-5 * sigma
        dx = (model.ode_solution(x0, 80.0, sigma + h) - model.ode_solution(x0, 80.0, sigma - h)) / (2 * h)
        x = model.ode_solution(x0, 80.0, sigma)
        torch.testing.assert_close(dx, (x - model(x, sigma)) / sigma, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(model.ode_solution(x0, 80.0, 80.0), x0)


def test_ideal_digits_loads_the_bundled_dataset_with_options():
    model = load_model("ideal:digits?std=0.2&n=200")
    assert (model.std, model.images.shape, model.img_channels, model.img_resolution) == (0.2, (200, 64), 1, 8)
    assert model.sigma_min == 0 and model.sigma_max == float("inf") and model.label_dim == 0
    full = load_model("ideal:digits")
    assert full.std == 0.0 and full.images.shape == (1797, 64)
    assert full.images.min() == -1.0 and full.images.max() == 1.0


def test_npz_model_reads_images_and_std(tmp_path, images):
    path = tmp_path / "mix.npz"
    np.savez(path, images=images.numpy(), std=np.float64(0.3))
    model = load_model(f"ideal:{path}")
    assert model.std == 0.3 and torch.equal(model.images, images.flatten(1))
    assert load_model(f"ideal:{path}?std=0").std == 0.0
    np.savez(tmp_path / "plain.npz", images=images.numpy())
    assert load_model(f"ideal:{tmp_path / 'plain.npz'}").std == 0.0


@pytest.mark.parametrize(
    "spec, message",
    [
        ("digits", "not recognised"),
        ("nosuch:thing", "not recognised"),
        ("ideal:cifar", "digits"),
        ("ideal:digits?std=-1", "std"),
        ("ideal:digits?std=abc", "std"),
        ("ideal:digits?n=0", "n must be"),
        ("ideal:digits?colour=red", "not one of"),
        ("ideal:{tmp}/missing.npz", "does not exist"),
        ("ideal:{tmp}/noimages.npz", "no `images`"),
        ("ideal:{tmp}/flat.npz", "(N, C, H, W)"),
        ("ideal:{tmp}/range.npz", "[-1, 1]"),
        ("ideal:{tmp}/garbage.npz", "not a readable npz"),
    ],
)
def test_bad_model_specs_are_user_errors(tmp_path, spec, message):
    np.savez(tmp_path / "noimages.npz", pictures=np.zeros((2, 1, 8, 8)))
    np.savez(tmp_path / "flat.npz", images=np.zeros((2, 64)))
    np.savez(tmp_path / "range.npz", images=np.full((2, 1, 8, 8), 3.0))
    (tmp_path / "garbage.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError) as info:
        load_model(spec.format(tmp=tmp_path))
    assert message in str(info.value)
