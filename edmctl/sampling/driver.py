"""Running a sampler over seeds in batches: per-seed noise in, samples in seed order and the NFE out."""

import time
from dataclasses import dataclass
from typing import Callable

import torch

from edmctl.design.sampler import run_sampler
from edmctl.errors import CheckFailed, UserError
from edmctl.sampling.noise import SeedNoise


@dataclass
class SampleResult:
    samples: torch.Tensor  # float64 (N, C, H, W), unclipped, on the CPU, in the order of `seeds`
    seeds: list[int]
    nfe: int  # denoiser calls per image (every batch makes the same number)
    seconds: float  # wall time of the sampling itself

    @property
    def images_per_second(self) -> float:
        return len(self.seeds) / self.seconds if self.seconds > 0 else float("inf")


def image_shape(model) -> tuple[int, int, int]:
    """(C, H, W) of the model's images: its `img_shape` if it has one, else square `img_resolution`."""
    shape = getattr(model, "img_shape", None)
    return tuple(shape) if shape is not None else (model.img_channels, model.img_resolution, model.img_resolution)


def check_class_label(model, class_label: int | None) -> None:
    """`--class K` needs a conditional model and 0 <= K < label_dim."""
    if class_label is None:
        return
    label_dim = getattr(model, "label_dim", 0)
    if label_dim == 0:
        raise UserError(f"--class {class_label} was given but the model is unconditional; drop --class.")
    if not 0 <= class_label < label_dim:
        raise UserError(f"--class {class_label} is out of range; the model has classes 0..{label_dim - 1}.")


@torch.no_grad()
def sample_batch(model, sampler, seeds: list[int], class_label: int | None = None, device="cpu") -> tuple[torch.Tensor, int]:
    """One batch: latents, labels and churn noise from each seed's own generator, then `run_sampler` (no autograd)."""
    noise = SeedNoise(seeds, image_shape(model), device)
    latents = noise.latents()
    class_labels = noise.class_labels(getattr(model, "label_dim", 0), class_label)
    x, nfe = run_sampler(model, sampler, latents, class_labels, noise)
    check_finite_samples(x, seeds, sampler)
    return x, nfe


def check_finite_samples(x: torch.Tensor, seeds: list[int], sampler) -> None:
    """A sample that turned NaN or inf fails the run (CheckFailed), naming the seed and the sampler settings."""
    finite = x.flatten(1).isfinite().all(dim=1)
    if not finite.all():
        seed = seeds[int((~finite).nonzero()[0])]
        raise CheckFailed(f"the sample of seed {seed} turned non-finite (NaN or inf): the model diverged under solver "
                          f"{sampler.solver}, {sampler.steps} steps, sigma_min={sampler.sigma_min}, "
                          f"sigma_max={sampler.sigma_max}, s_churn={sampler.s_churn:g}.")


def sample(
    model,
    sampler,
    seeds: list[int],
    batch: int,
    class_label: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    device="cpu",
) -> SampleResult:
    """Sample one image per seed, `batch` seeds at a time; `progress(done, total)` is called after each batch.

    Image `seed` depends on its seed alone, not on `batch` or the order of `seeds`.
    """
    if batch < 1:
        raise UserError(f"--batch must be at least 1, got {batch}.")
    if not seeds:
        raise UserError("no seeds given; pass e.g. --seeds 0-63.")
    check_class_label(model, class_label)
    start, chunks, nfe = time.perf_counter(), [], 0
    for first in range(0, len(seeds), batch):
        x, nfe = sample_batch(model, sampler, seeds[first : first + batch], class_label, device)
        chunks.append(x.cpu())
        if progress is not None:
            progress(min(first + batch, len(seeds)), len(seeds))
    return SampleResult(torch.cat(chunks), list(seeds), nfe, time.perf_counter() - start)


def generated_batches(model, sampler, batch: int, device="cpu"):
    """`make_batches(seeds)` yielding uint8 NCHW batches generated for those seeds (quantised by `to_uint8`,
    as PNGs are written), for streaming into FID; the NFE per image lands in the returned one-item list."""
    from edmctl.sampling.writers import to_uint8

    nfe = [0]

    def make_batches(seeds):
        seeds = list(seeds)
        for first in range(0, len(seeds), batch):
            x, nfe[0] = sample_batch(model, sampler, seeds[first : first + batch], None, device)
            yield to_uint8(x.cpu())

    return make_batches, nfe
