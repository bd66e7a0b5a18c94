"""Non-leaky augmentation (EDM Appendix B.4): each transform's exact geometry, labels that describe the
transform applied, zeros when off, probabilities as configured, reproducible from the generator; the draws,
transforms and resampled images of NVlabs/edm's `AugmentPipe`.

`data/nvlabs_augment_reference.npz` holds NVlabs/edm's outputs: its own `training/augment.py`, unmodified, run on
CPU in float32 outside this project, driven with fixed parameter values in place of its random draws (each of the
six transforms alone on two images, whole-pixel shifts, all combined) and once from torch.manual_seed(1) with its
own draws; `data/nvlabs_augment_reference.py` is the script that made it, with the values."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from edmctl.design.augment import AUGMENT_DIM, AugmentPipe, aniso_from_label
from edmctl.design.resample import SYM6, downsample2x, upsample2x
from edmctl.errors import UserError

REFERENCE = Path(__file__).parent / "data" / "nvlabs_augment_reference.npz"
ROUND_OFF = 2e-6  # float32 round-off on images in [-1, 1] after a dozen-tap filter each way and a bilinear lookup

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


@pytest.mark.parametrize("theta, turns", [(math.pi / 2, 1), (-math.pi / 2, -1), (math.pi, 2)])
def test_quarter_turns_are_exact_pixel_rotations(theta, turns):
    images = smooth_images(2, size=8)
    quarter = label(cos_theta_m1=round(math.cos(theta)) - 1, sin_theta=round(math.sin(theta)))
    assert torch.equal(AugmentPipe(1.0).apply(images, quarter), images.rot90(turns, dims=(2, 3)))


def test_whole_pixel_shifts_are_exact_and_mirror_at_the_border():
    images = smooth_images(2, size=8)
    shifted = AugmentPipe(1.0, translate_std=0.125).apply(images, label(tx=2.0, ty=-3.0))  # 2 px right, 3 up
    expected = torch.nn.functional.pad(images, [2, 0, 0, 3], mode="reflect")[:, :, 3:, :8]
    assert torch.equal(shifted, expected)


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
    (-1.0, -1.2, -1.0, 1.1, -0.3, 0.5),
    (0.0, 0.0, -1.5, 0.0, 0.0, 0.0),
])
def test_labels_describe_the_geometry_applied(w_scale, theta, w_aniso, phi, tx, ty):
    """An anisotropic Gaussian blob of covariance Σ becomes one of covariance AΣAᵀ centred at t, where the
    forward map is G = T(t)·R(−φ)·S(a, 1/a)·R(φ)·R(−θ)·s, with s = 2^(0.2 w_scale), a = 2^(0.2 w_aniso) and
    t = 0.125·64·(w_tx, w_ty) pixels (EDM's AugmentPipe), for φ in (−π/2, π/2] and w_aniso of either sign. The
    centre to 0.12 px: sym6 is not symmetric, so a turn that reverses an axis moves the image by up to 0.1 px in
    EDM's resampling (measured 0.098 px at θ = π − 0.01)."""
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
    assert torch.allclose(mean[0], torch.tensor([tx, ty], dtype=torch.float64) * 0.125 * size, atol=0.12)
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


def test_aniso_draws_stretch_along_the_axis_edm_draws():
    """The bug this guards against: a negative w_aniso was applied as a positive one, so an unrotated draw always
    stretched x. The transform applied is EDM's G⁻¹ = R(−r)·S(2^(−0.2 w), 2^(0.2 w))·R(r) for EDM's draws from the
    same stream (w ~ N(0,1), r ~ U(−π, π) kept with probability 1/2), so the stretch axis is x half the time."""
    n = 4000
    pipe = AugmentPipe(1.0, **{**ONLY, "aniso": 1})
    g_inv = pipe.inverse_matrix(pipe.sample_labels(n, torch.Generator().manual_seed(3)), 16, 16)[:, :2, :2]
    stream = torch.Generator().manual_seed(3)
    w, r, _, keep_r = torch.randn(n, generator=stream), *torch.rand(3, n, generator=stream)
    r = torch.where(keep_r < 0.5, (r * 2 - 1) * math.pi, torch.zeros(n))
    a = torch.exp2(0.2 * w.double())
    rot = lambda angle: torch.stack([angle.cos(), -angle.sin(), angle.sin(), angle.cos()], 1).reshape(-1, 2, 2)
    expected = rot(-r.double()) @ torch.diag_embed(torch.stack([1 / a, a], 1)) @ rot(r.double())
    assert torch.allclose(g_inv.double(), expected, atol=1e-6)

    stretch = torch.linalg.eigh(torch.linalg.inv(g_inv.double())).eigenvectors[:, :, 1]  # forward map's long axis
    along_x = stretch[:, 0].abs() > stretch[:, 1].abs()
    unrotated = r == 0
    tolerance = 5 * math.sqrt(0.25 / unrotated.sum().item())
    assert abs(along_x[unrotated].double().mean().item() - 0.5) < tolerance  # edmctl measured 1.000 before
    assert abs(along_x.double().mean().item() - 0.5) < 5 * math.sqrt(0.25 / n)  # 0.75 before


@pytest.mark.parametrize("w, phi", [(1.3, 0.4), (-1.3, 0.4), (0.7, math.pi / 2), (-0.7, math.pi / 2), (-2.0, 0.0),
                                    (0.5, -1.5), (0.0, 0.0)])
def test_aniso_label_decodes_to_its_one_transform(w, phi):
    cos, sin = (0.0, 1.0) if phi == math.pi / 2 else (math.cos(phi), math.sin(phi))
    w_back, cos_back, sin_back = aniso_from_label(torch.tensor([w * cos]), torch.tensor([w * sin]))
    expected = [w, cos, sin] if w else [0.0, 1.0, 0.0]
    assert torch.allclose(torch.cat([w_back, cos_back, sin_back]), torch.tensor(expected), atol=1e-6)


def test_sym6_upsampling_then_downsampling_is_the_identity():
    """h is an orthogonal wavelet's low-pass filter: Σh = √2, Σ_k h[k]h[k+2l] = δ_l, so analysis undoes synthesis
    (the half-pixel canvas drops SUPPORT − 1 = 5 upsampled pixels each side, then the filter reads 12)."""
    h = torch.tensor(SYM6, dtype=torch.float64)
    assert math.isclose(h.sum().item(), math.sqrt(2)) and math.isclose((h * h).sum().item(), 1.0)
    x = torch.randn(2, 3, 20, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    inner = downsample2x(upsample2x(x, h)[:, :, 1:-1, 1:-1], h)  # canvas of x[3:-3] = upsampled rows 1 .. 2H−2
    assert torch.allclose(inner, x[:, :, 3:-2, 3:-2][:, :, :-1, :-1], atol=1e-12)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return dict(np.load(REFERENCE))


@pytest.mark.parametrize("case", ["xflip", "yflip", "scale", "rotate", "aniso", "translate", "whole_pixels",
                                  "combined"])
def test_each_transform_resamples_as_nvlabs_edm_to_float_round_off(reference, case):
    images, labels = torch.from_numpy(reference["images"][:2]), torch.from_numpy(reference[f"{case}_labels"])
    out = AugmentPipe(1.0).apply(images, labels)
    assert (out - torch.from_numpy(reference[f"{case}_out"])).abs().max() < ROUND_OFF


def test_exact_transforms_stay_exact_where_nvlabs_is_round_off_close(reference):
    images = torch.from_numpy(reference["images"][:2])
    flipped = AugmentPipe(1.0).apply(images, torch.from_numpy(reference["xflip_labels"]))
    assert torch.equal(flipped, torch.stack([images[0].flip(2), images[1]]))
    shifted = AugmentPipe(1.0).apply(images, torch.from_numpy(reference["whole_pixels_labels"]))  # (3, 1), (−3, −2) px
    padded = torch.nn.functional.pad(images, [3, 3, 2, 2], mode="reflect")
    assert torch.equal(shifted[0], padded[0, :, 1:17, 0:12]) and torch.equal(shifted[1], padded[1, :, 4:20, 6:18])


def test_same_seed_draws_nvlabs_edm_transforms_and_images(reference):
    """torch.manual_seed(1) then EDM's pipe (p = 0.6) vs a generator seeded 1: the same draws, so the same labels
    except that an aniso label may name φ + π with −w (the same transform), and the same images to round-off."""
    images, expected = torch.from_numpy(reference["images"]), torch.from_numpy(reference["seeded_labels"])
    out, labels = AugmentPipe(0.6)(images, torch.Generator().manual_seed(1))
    assert torch.equal(labels[:, :5], expected[:, :5]) and torch.equal(labels[:, 7:], expected[:, 7:])
    assert torch.equal(labels[:, 5:7].abs(), expected[:, 5:7].abs())
    assert (labels[:, 5:7] != expected[:, 5:7]).any()  # this seed draws one φ outside (−π/2, π/2]
    assert (out - torch.from_numpy(reference["seeded_out"])).abs().max() < ROUND_OFF
