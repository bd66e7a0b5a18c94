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
from torch.nn.functional import affine_grid, grid_sample

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
        self.probs = {name: min(1.0, self.p * float(values[name]))
                      for name in ("xflip", "yflip", "scale", "rotate", "aniso", "translate")}
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
        """Draw n augmentation labels (float32, on the generator's device): which transforms apply, and how."""
        device = generator.device if generator is not None else torch.device("cpu")

        def draw(kind: str, *shape: int) -> torch.Tensor:
            make = {"uniform": torch.rand, "normal": torch.randn}[kind]
            return make(*shape, n, generator=generator, device=device)

        def gate(values: torch.Tensor, prob: float) -> torch.Tensor:
            return torch.where(draw("uniform") < prob, values, torch.zeros_like(values))

        xflip = gate(torch.randint(2, [n], generator=generator, device=device).float(), self.probs["xflip"])
        yflip = gate(torch.randint(2, [n], generator=generator, device=device).float(), self.probs["yflip"])
        w_scale = gate(draw("normal"), self.probs["scale"])
        theta = gate((draw("uniform") * 2 - 1) * math.pi, self.probs["rotate"])
        w_aniso = gate(draw("normal"), self.probs["aniso"])
        phi = gate((draw("uniform") * 2 - 1) * math.pi, self.aniso_rotate_prob)
        w_translate = gate(draw("normal", 2), self.probs["translate"])
        return torch.stack([xflip, yflip, w_scale, theta.cos() - 1, theta.sin(), w_aniso * phi.cos(),
                            w_aniso * phi.sin(), w_translate[0], w_translate[1]], dim=1)

    def apply(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The transform that `labels` describe: exact pixel flips, then one bilinear warp with reflection at
        the border for the images whose geometric part is not the identity (the others stay bit-exact)."""
        if labels.shape != (images.shape[0], AUGMENT_DIM):
            raise ValueError(f"labels of shape {tuple(labels.shape)} do not describe {images.shape[0]} images")
        flip_x = labels[:, 0].bool().reshape(-1, 1, 1, 1)
        flip_y = labels[:, 1].bool().reshape(-1, 1, 1, 1)
        images = torch.where(flip_x, images.flip(3), images)
        images = torch.where(flip_y, images.flip(2), images)
        warped = labels[:, 2:].ne(0).any(dim=1).nonzero().flatten()
        if len(warped) == 0:
            return images
        height, width = images.shape[2:]
        g_inv = self.inverse_matrix(labels[warped].to(torch.float32), height, width)
        out = images.clone()
        out[warped] = warp(images[warped], g_inv)
        return out

    def inverse_matrix(self, labels: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """G⁻¹ (N, 3, 3) in pixel coordinates centred on the image (x right, y down), mapping each output pixel
        to where it samples the input: G = T(t)·R(−φ)·S(a, 1/a)·R(φ)·R(−θ)·S(s), as EDM composes it."""
        s = torch.exp2(labels[:, 2] * self.scale_std)
        cos_theta, sin_theta = labels[:, 3] + 1, labels[:, 4]
        w_aniso = labels[:, 5:7].norm(dim=1)
        phi = torch.atan2(labels[:, 6], labels[:, 5])
        a = torch.exp2(w_aniso * self.aniso_std)
        t_x = labels[:, 7] * width * self.translate_std
        t_y = labels[:, 8] * height * self.translate_std
        return (scale2d(1 / s, 1 / s) @ rotate2d(cos_theta, sin_theta) @ rotate2d(phi.cos(), -phi.sin())
                @ scale2d(1 / a, a) @ rotate2d(phi.cos(), phi.sin()) @ translate2d(-t_x, -t_y))


def warp(images: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
    """Resample images (N, C, H, W) so that output pixel p reads input pixel G⁻¹p (centred pixel coordinates),
    bilinear, reflecting at the border."""
    height, width = images.shape[2:]
    to_unit = scale2d(*torch.tensor([2 / width, 2 / height], dtype=g_inv.dtype, device=g_inv.device))
    theta = to_unit @ g_inv @ torch.linalg.inv(to_unit)
    grid = affine_grid(theta[:, :2, :].to(images.dtype), list(images.shape), align_corners=False)
    return grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


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
