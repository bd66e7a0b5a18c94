"""How `nvlabs_augment_reference.npz` was made (not run by the tests): NVlabs/edm's own `training/augment.py`
(commit of github.com/NVlabs/edm fetched 2026-12-01), unmodified, run outside this project on CPU in float32:

    cd <NVlabs/edm checkout> && python <this file> <output.npz>

`images`: four 2×16×12 images of 1/f noise scaled to [−1, 1] (numpy seed 0). Each fixed case drives EDM's
`AugmentPipe(p=1, xflip=1e8, yflip=1, scale=1, rotate_frac=1, aniso=1, translate_frac=1)` on images[:2] with the
values below in place of its random draws (torch.rand/randn/randint replaced inside the module only; every gate
draw 0, i.e. applied; a zero value leaves that transform the identity). `seeded`: the same pipe with p = 0.6 on all
four images after torch.manual_seed(1), its own random draws. Saved: `<case>_labels` (N, 9) and `<case>_out`."""

import math
import sys

import numpy as np
import torch

from training import augment

CASES = {  # name -> (xflip, yflip, w_scale, θ, w_aniso, φ, w_tx, w_ty), one value per image
    "xflip": dict(xflip=[1, 0]),
    "yflip": dict(yflip=[0, 1]),
    "scale": dict(w_scale=[0.8, -1.3]),
    "rotate": dict(theta=[0.3, -2.0]),
    "aniso": dict(w_aniso=[1.2, -0.9], phi=[0.4, -1.0]),
    "translate": dict(w_tx=[0.37, -0.52], w_ty=[0.21, 0.9]),
    "whole_pixels": dict(w_tx=[2.0, -2.0], w_ty=[0.5, -1.0]),  # (3, 1) and (−3, −2) pixels on 16×12
    "combined": dict(xflip=[1, 0], yflip=[1, 1], w_scale=[0.5, -0.4], theta=[1.0, -0.6], w_aniso=[-0.7, 1.5],
                     phi=[0.2, -1.3], w_tx=[0.3, -0.2], w_ty=[-0.1, 0.25]),
}


class DrivenTorch:
    """torch, except that rand/randn/randint return the next queued values (in the order EDM draws them)."""

    def __init__(self, queue):
        self.queue = list(queue)

    def __getattr__(self, name):
        return getattr(torch, name)

    def rand(self, shape, device=None):
        return torch.as_tensor(self.queue.pop(0), dtype=torch.float32).reshape(shape)

    randn = rand

    def randint(self, high, shape, device=None):
        return self.rand(shape).long()


def draws(xflip=(0, 0), yflip=(0, 0), w_scale=(0, 0), theta=(0, 0), w_aniso=(0, 0), phi=(0, 0), w_tx=(0, 0),
          w_ty=(0, 0)):
    applied = [0.0, 0.0]
    uniform_for = lambda angles: [(a / math.pi + 1) / 2 for a in angles]  # EDM: angle = (u·2 − 1)·π
    return [xflip, applied, yflip, applied, w_scale, applied, uniform_for(theta), applied, w_aniso, uniform_for(phi),
            applied, applied, [w_tx, w_ty], applied]


def one_over_f_images(n=4, channels=2, height=16, width=12):
    rng = np.random.default_rng(0)
    spectrum = np.fft.fft2(rng.standard_normal((n, channels, height, width)))
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(height), np.fft.fftfreq(width), indexing="ij"))
    images = np.fft.ifft2(spectrum / np.maximum(f, 1 / max(height, width))).real
    images = images / np.abs(images).max(axis=(1, 2, 3), keepdims=True)
    return torch.tensor(images, dtype=torch.float32)


def main(path):
    edm = dict(xflip=1e8, yflip=1, scale=1, rotate_frac=1, aniso=1, translate_frac=1)
    images = one_over_f_images()
    saved = {"images": images.numpy()}
    for name, values in CASES.items():
        augment.torch = DrivenTorch(draws(**values))
        out, labels = augment.AugmentPipe(p=1, **edm)(images[:2])
        augment.torch = torch
        saved[f"{name}_out"], saved[f"{name}_labels"] = out.numpy(), labels.numpy()
    torch.manual_seed(1)
    out, labels = augment.AugmentPipe(p=0.6, **edm)(images)
    saved["seeded_out"], saved["seeded_labels"] = out.numpy(), labels.numpy()
    np.savez_compressed(path, **saved)


if __name__ == "__main__":
    main(sys.argv[1])
