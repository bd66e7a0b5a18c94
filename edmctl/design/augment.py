"""Non-leaky augmentation (EDM Appendix B.4, after Karras et al. 2020 "ADA"): each image is flipped and then
warped once by a random geometric transform; the network is told which transform through a 9-dim
augmentation label, and receives zeros at sampling, so the augmentations do not leak into the samples.

The label fully determines the transform (`apply(images, labels)` is deterministic):
[xflip, yflip, w_scale, cos θ − 1, sin θ, w_aniso·cos φ, w_aniso·sin φ, w_tx, w_ty], with the isotropic scale
2^(w_scale·scale_std), rotation θ, anisotropic scale 2^(w_aniso·aniso_std) along the axis at angle φ, and
translation (w_tx·W, w_ty·H)·translate_std pixels. Zero means "not applied" for every entry.
"""

import math

import torch

from edmctl.design.resample import exact_sources, gather_pixels, warp, warp_margins
from edmctl.errors import UserError

AUGMENT_DIM = 9


class AugmentPipe:
    """Flips, isotropic scale, rotation, anisotropic scale and translation, each applied with probability
    min(1, p·multiplier) (EDM `train.py`: xflip 1e8, i.e. always a fair coin once p > 0; the others 1);
    a multiplier of 0 disables the transform. Randomness comes only from the given generator."""

    def __init__(self, p: float, xflip: float = 1e8, yflip: float = 1, scale: float = 1, rotate: float = 1,
                 aniso: float = 1, translate: float = 1, scale_std: float = 0.2, aniso_std: float = 0.2,
                 translate_std: float = 0.125, aniso_rotate_prob: float = 0.5):
        values = dict(p=p, xflip=xflip, yflip=yflip, scale=scale, rotate=rotate, aniso=aniso, translate=translate,
                      scale_std=scale_std, aniso_std=aniso_std, translate_std=translate_std)
        for field, value in values.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise UserError(f"augment.{field} must be a number >= 0, got {value!r}.")
        if not 0 <= aniso_rotate_prob <= 1:
            raise UserError(f"augment.aniso_rotate_prob must be in [0, 1], got {aniso_rotate_prob!r}.")
        self.p = float(p)
        self.multipliers = {name: float(values[name]) for name in LABEL_DRAWS}
        self.probs = {name: min(1.0, self.p * multiplier) for name, multiplier in self.multipliers.items()}
        self.scale_std = float(scale_std)
        self.aniso_std = float(aniso_std)
        self.translate_std = float(translate_std)
        self.aniso_rotate_prob = float(aniso_rotate_prob)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """(augmented images, labels (N, 9)) for images (N, C, H, W)."""
        labels = self.sample_labels(images.shape[0], generator).to(images.device)
        return self.apply(images, labels), labels

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n augmentation labels (float32, on the generator's device): which transforms apply, and how.
        The draws come in EDM's order and shapes, and a transform whose multiplier is 0 draws nothing, so the
        generator's stream gives the transforms that EDM's `AugmentPipe` gives from the same stream."""
        device = generator.device if generator is not None else torch.device("cpu")
        draws = _Draws(n, generator, device)
        labels = torch.zeros(n, AUGMENT_DIM, device=device)
        for name, (columns, draw) in LABEL_DRAWS.items():
            if self.multipliers[name] > 0:
                labels[:, columns] = torch.stack(draw(self, draws, self.probs[name]), dim=1)
        return labels

    def _flip(self, draws: "_Draws", prob: float) -> list[torch.Tensor]:
        """A fair coin, applied with probability `prob`."""
        return [draws.gate(draws.coin(), prob)]

    def _scale(self, draws: "_Draws", prob: float) -> list[torch.Tensor]:
        """w_scale ~ N(0, 1): isotropic scale 2^(w_scale·scale_std)."""
        return [draws.gate(draws.normal(), prob)]

    def _rotate(self, draws: "_Draws", prob: float) -> list[torch.Tensor]:
        """θ ~ U(−π, π): label (cos θ − 1, sin θ)."""
        theta = draws.gate(draws.angle(), prob)
        return [theta.cos() - 1, theta.sin()]

    def _aniso(self, draws: "_Draws", prob: float) -> list[torch.Tensor]:
        """w_aniso ~ N(0, 1) along the axis at φ ~ U(−π, π) (φ = 0 with probability 1 − aniso_rotate_prob).
        Stretching along φ and along φ + π is the same transform, so φ is labelled in (−π/2, π/2] with w_aniso
        signed: the label (w_aniso·cos φ, w_aniso·sin φ) then names one transform (EDM's names two)."""
        w, phi = draws.normal(), draws.angle()
        w, phi = draws.gate(w, prob), draws.gate(phi, self.aniso_rotate_prob)
        cos, sin = phi.cos(), phi.sin()
        other_half = (cos < 0) | ((cos == 0) & (sin < 0))
        cos, sin = torch.where(other_half, -cos, cos), torch.where(other_half, -sin, sin)
        return [w * cos, w * sin]

    def _translate(self, draws: "_Draws", prob: float) -> list[torch.Tensor]:
        """(w_tx, w_ty) ~ N(0, I): translation (w_tx·W, w_ty·H)·translate_std pixels."""
        w = draws.normal(2)
        return list(draws.gate(w, prob).unbind(0))

    def apply(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The transform that `labels` describe: exact pixel flips, then the geometric part G — an exact pixel
        permutation where G maps pixels onto pixels (identity, quarter turns, whole-pixel shifts), otherwise
        EDM's 2× wavelet resampling (`resample.warp`)."""
        if labels.shape != (images.shape[0], AUGMENT_DIM):
            raise ValueError(f"labels of shape {tuple(labels.shape)} do not describe {images.shape[0]} images")
        flip_x = labels[:, 0].bool().reshape(-1, 1, 1, 1)
        flip_y = labels[:, 1].bool().reshape(-1, 1, 1, 1)
        images = torch.where(flip_x, images.flip(3), images)
        images = torch.where(flip_y, images.flip(2), images)
        if not labels[:, 2:].ne(0).any():
            return images
        height, width = images.shape[2:]
        g_inv = self.inverse_matrix(labels.to(torch.float32), height, width)
        exact, rows, cols = exact_sources(g_inv, height, width)
        out = gather_pixels(images, rows, cols) if exact.any() else images.clone()
        warped = (~exact).nonzero().flatten()
        if len(warped):
            out[warped] = warp(images[warped], g_inv[warped], warp_margins(g_inv, height, width))
        return out

    def inverse_matrix(self, labels: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """G⁻¹ (N, 3, 3) in pixel coordinates centred on the image (x right, y down), mapping each output pixel
        to where it samples the input: G = T(t)·R(−φ)·S(a, 1/a)·R(φ)·R(−θ)·S(s), as EDM composes it."""
        s = torch.exp2(labels[:, 2] * self.scale_std)
        cos_theta, sin_theta = labels[:, 3] + 1, labels[:, 4]
        w_aniso, cos_phi, sin_phi = aniso_from_label(labels[:, 5], labels[:, 6])
        a = torch.exp2(w_aniso * self.aniso_std)
        t_x = labels[:, 7] * (width * self.translate_std)
        t_y = labels[:, 8] * (height * self.translate_std)
        return (scale2d(1 / s, 1 / s) @ rotate2d(cos_theta, sin_theta) @ rotate2d(cos_phi, -sin_phi)
                @ scale2d(1 / a, a) @ rotate2d(cos_phi, sin_phi) @ translate2d(-t_x, -t_y))


LABEL_DRAWS = {  # transform -> (its label columns, its draws), in EDM's order of draws
    "xflip": ([0], AugmentPipe._flip),
    "yflip": ([1], AugmentPipe._flip),
    "scale": ([2], AugmentPipe._scale),
    "rotate": ([3, 4], AugmentPipe._rotate),
    "aniso": ([5, 6], AugmentPipe._aniso),
    "translate": ([7, 8], AugmentPipe._translate),
}


class _Draws:
    """Random draws for n images from one generator, in the shapes EDM draws them (so the streams agree)."""

    def __init__(self, n: int, generator: torch.Generator | None, device: torch.device):
        self.n, self.generator, self.device = n, generator, device

    def uniform(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, self.n, generator=self.generator, device=self.device)

    def normal(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, self.n, generator=self.generator, device=self.device)

    def coin(self) -> torch.Tensor:
        return torch.randint(2, [self.n], generator=self.generator, device=self.device).float()

    def angle(self) -> torch.Tensor:
        return (self.uniform() * 2 - 1) * math.pi

    def gate(self, values: torch.Tensor, prob: float) -> torch.Tensor:
        """`values` where a uniform draw per image falls below `prob`, else 0 (the transform is not applied)."""
        return torch.where(self.uniform() < prob, values, torch.zeros_like(values))


def aniso_from_label(label_cos: torch.Tensor, label_sin: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(w_aniso, cos φ, sin φ) from the label (w_aniso·cos φ, w_aniso·sin φ) with φ in (−π/2, π/2]: w_aniso is
    positive where cos φ > 0, or cos φ = 0 and sin φ > 0, and (cos φ, sin φ) = (1, 0) when w_aniso = 0."""
    norm = torch.hypot(label_cos, label_sin)
    positive = (label_cos > 0) | ((label_cos == 0) & (label_sin > 0))
    w = torch.where(positive, norm, -norm)
    safe = torch.where(norm > 0, w, torch.ones_like(w))
    return w, torch.where(norm > 0, label_cos / safe, 1.0), torch.where(norm > 0, label_sin / safe, 0.0)


def _matrix(rows: list[list[torch.Tensor | float]], like: torch.Tensor) -> torch.Tensor:
    """A batch of 3×3 matrices (like.shape + (3, 3)) from entries that are tensors shaped like `like` or floats."""
    entries = [v if isinstance(v, torch.Tensor) else torch.full_like(like, v) for row in rows for v in row]
    return torch.stack(entries, dim=-1).reshape(*like.shape, 3, 3)


def scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], like=sx)


def rotate2d(cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotation by the angle whose cosine and sine are given (counter-clockwise for y up)."""
    return _matrix([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], like=cos)


def translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], like=tx)
