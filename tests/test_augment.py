"""Non-leaky augmentation (EDM Appendix B.4): each transform's exact geometry, labels that describe the
transform applied, zeros when off, probabilities as configured, reproducible from the generator."""

import math

import pytest
import torch

from edmctl.design.augment import AUGMENT_DIM, AugmentPipe, rotate2d, warp
from edmctl.errors import UserError

ONLY = dict(xflip=0, yflip=0, scale=0, rotate=0, aniso=0, translate=0)


def smooth_images(n: int = 2, channels: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Band-limited random images (bicubic upsampling of 6×6 noise): interpolation errors stay small."""
    coarse = torch.randn(n, channels, 6, 6, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(coarse, size=size, mode="bicubic", align_corners=True)


def label(n: int = 2, **entries: float) -> torch.Tensor:
    """The same augmentation label for n images."""
    names = ["xflip", "yflip", "scale", "cos_theta_m1", "sin_theta", "aniso_cos", "aniso_sin", "tx", "ty"]
    return torch.tensor([[entries.get(name, 0.0) for name in names]] * n)


def rotation_label(theta: float) -> torch.Tensor:
    return label(cos_theta_m1=math.cos(theta) - 1, sin_theta=math.sin(theta))


def test_p_zero_gives_zero_labels_and_unchanged_images():
    images = smooth_images(8)
    out, labels = AugmentPipe(0.0)(images, torch.Generator().manual_seed(0))
    assert labels.shape == (8, AUGMENT_DIM)
    assert torch.equal(labels, torch.zeros(8, AUGMENT_DIM))
    assert torch.equal(out, images)


def test_xflip_and_yflip_flip_exactly_the_images_their_labels_say():
    images = smooth_images(64, channels=1, size=8)
    out, labels = AugmentPipe(1.0, **{**ONLY, "xflip": 1, "yflip": 1})(images, torch.Generator().manual_seed(1))
    for image, result, (fx, fy) in zip(images, out, labels[:, :2].tolist()):
        expected = image.flip(2) if fx else image
        assert torch.equal(result, expected.flip(1) if fy else expected)
    assert {tuple(v) for v in labels[:, :2].tolist()} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert torch.equal(labels[:, 2:], torch.zeros(64, 7))


def test_quarter_turn_is_an_exact_pixel_rotation():
    images = smooth_images(1, size=8)
    quarter = rotate2d(torch.zeros(1), torch.ones(1))
    assert torch.allclose(warp(images, quarter), images.rot90(1, dims=(2, 3)), atol=1e-5)


@pytest.mark.parametrize("theta", [0.3, 1.0, -2.5])
def test_rotation_by_theta_then_minus_theta_gives_back_the_image_inside_the_border(theta):
    pipe = AugmentPipe(1.0)
    images = smooth_images(2, size=32)
    back = pipe.apply(pipe.apply(images, rotation_label(theta)), rotation_label(-theta))
    centre = torch.arange(32) - 15.5
    inside = (centre[:, None] ** 2 + centre[None, :] ** 2).sqrt() < 14
    error = (back - images)[..., inside].abs()
    assert error.max() < 0.05 * images.abs().max()
    assert not torch.allclose(pipe.apply(images, rotation_label(theta))[..., inside], images[..., inside], atol=0.05)


def test_translation_label_moves_the_image_by_label_times_std_times_size():
    pipe = AugmentPipe(1.0, translate_std=0.125)
    images = smooth_images(2, size=32)
    shifted = pipe.apply(images, label(tx=0.5, ty=-0.25))  # 0.5·0.125·32 = 2 px right, 1 px up
    assert torch.allclose(shifted[:, :, :-1, 2:], images[:, :, 1:, :-2], atol=1e-5)


def blob_moments(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (x, y) and 2×2 covariance of each image's intensity, in centred pixel coordinates."""
    size = images.shape[-1]
    c = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    y, x = torch.meshgrid(c, c, indexing="ij")
    w = images[:, 0].double()
    w = w / w.sum(dim=(1, 2), keepdim=True)
    mean = torch.stack([(w * x).sum((1, 2)), (w * y).sum((1, 2))], dim=1)
    dx, dy = x - mean[:, 0, None, None], y - mean[:, 1, None, None]
    cov = torch.stack([(w * dx * dx).sum((1, 2)), (w * dx * dy).sum((1, 2)),
                       (w * dx * dy).sum((1, 2)), (w * dy * dy).sum((1, 2))], dim=1).reshape(-1, 2, 2)
    return mean, cov


def rot(angle: float) -> torch.Tensor:
    return torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]],
                        dtype=torch.float64)


@pytest.mark.parametrize("w_scale, theta, w_aniso, phi, tx, ty", [
    (1.5, 0.0, 0.0, 0.0, 0.0, 0.0),
    (0.0, 0.7, 0.0, 0.0, 0.0, 0.0),
    (0.0, 0.0, 2.0, 0.5, 0.0, 0.0),
    (0.0, 0.0, 0.0, 0.0, 0.6, -0.4),
    (-1.0, -1.2, 1.0, -2.0, -0.3, 0.5),
])
def test_labels_describe_the_geometry_applied(w_scale, theta, w_aniso, phi, tx, ty):
    """An anisotropic Gaussian blob of covariance Σ becomes one of covariance AΣAᵀ centred at t, where the
    forward map is G = T(t)·R(−φ)·S(a, 1/a)·R(φ)·R(−θ)·s, with s = 2^(0.2 w_scale), a = 2^(0.2 w_aniso) and
    t = 0.125·64·(w_tx, w_ty) pixels (EDM's AugmentPipe)."""
    size, sigma = 64, torch.tensor([[16.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    c = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    y, x = torch.meshgrid(c, c, indexing="ij")
    blob = torch.exp(-0.5 * (x ** 2 / sigma[0, 0] + y ** 2 / sigma[1, 1])).float()[None, None]
    lab = label(1, scale=w_scale, cos_theta_m1=math.cos(theta) - 1, sin_theta=math.sin(theta),
                aniso_cos=w_aniso * math.cos(phi), aniso_sin=w_aniso * math.sin(phi), tx=tx, ty=ty)
    mean, cov = blob_moments(AugmentPipe(1.0).apply(blob, lab))

    a = 2 ** (0.2 * w_aniso)
    linear = rot(-phi) @ torch.diag(torch.tensor([a, 1 / a], dtype=torch.float64)) @ rot(phi) @ rot(-theta)
    linear = linear * 2 ** (0.2 * w_scale)
    expected_cov = linear @ sigma @ linear.T
    assert torch.allclose(mean[0], torch.tensor([tx, ty], dtype=torch.float64) * 0.125 * size, atol=0.05)
    assert torch.allclose(cov[0], expected_cov, atol=0.03 * expected_cov.abs().max() + 0.1)


def test_call_applies_exactly_the_transform_its_labels_describe():
    pipe = AugmentPipe(0.7)
    images = smooth_images(16, size=16)
    out, labels = pipe(images, torch.Generator().manual_seed(5))
    assert torch.equal(out, pipe.apply(images, labels))


def test_same_generator_seed_gives_the_same_images_and_labels():
    pipe = AugmentPipe(0.5)
    images = smooth_images(16, size=16)
    first = pipe(images, torch.Generator().manual_seed(7))
    second = pipe(images, torch.Generator().manual_seed(7))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[1], pipe(images, torch.Generator().manual_seed(8))[1])


def test_each_transform_applies_with_probability_min_1_p_times_multiplier():
    n, p = 20000, 0.3
    pipe = AugmentPipe(p, xflip=1e8, yflip=1, scale=2, rotate=1, aniso=0.5, translate=0)
    labels = pipe.sample_labels(n, torch.Generator().manual_seed(0))
    applied = {
        "xflip": (labels[:, 0] != 0, 0.5 * 1.0),   # min(1, p·1e8) = 1, then a fair coin
        "yflip": (labels[:, 1] != 0, 0.5 * p),
        "scale": (labels[:, 2] != 0, 2 * p),
        "rotate": (labels[:, 4] != 0, p),
        "aniso": (labels[:, 5:7].ne(0).any(dim=1), 0.5 * p),
        "translate": (labels[:, 7:9].ne(0).any(dim=1), 0.0),
    }
    for name, (mask, prob) in applied.items():
        tolerance = 5 * math.sqrt(prob * (1 - prob) / n) + 1e-9
        assert abs(mask.float().mean().item() - prob) <= tolerance, name


def test_scale_draws_are_lognormal_with_the_configured_log2_std():
    labels = AugmentPipe(1.0, **{**ONLY, "scale": 1}).sample_labels(20000, torch.Generator().manual_seed(2))
    log2_scale = labels[:, 2] * 0.2
    assert abs(log2_scale.std().item() - 0.2) < 0.01 and abs(log2_scale.mean().item()) < 0.01


@pytest.mark.parametrize("field, value", [("p", -0.1), ("rotate", -1), ("translate_std", float("nan"))])
def test_bad_probabilities_raise_user_error_naming_the_field(field, value):
    with pytest.raises(UserError, match=f"augment.{field}"):
        AugmentPipe(**{"p": 0.5, field: value})
