"""The FID pipeline: uint8 NCHW batches -> detector features -> streaming statistics -> FID and KID.

`compute_stats` consumes any iterator of batches (a folder, a zip, or a sampler generating from seeds), so the
RUN path is `measure_blocks(lambda seeds: generate(seeds), ...)`. Batches are pulled in a background thread,
so decoding (or sampling) the next batch overlaps the detector on this one.
"""

import math
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from edmctl.errors import CheckFailed, UserError
from edmctl.fid.detectors import Detector, kid_scale
from edmctl.fid.distance import frechet_distance, kernel_distance
from edmctl.fid.stats import KID_RESERVOIR, Stats, StatsAccumulator

_DONE = object()


@dataclass
class Measured:
    """Statistics of `num_images` images and how long the whole pipeline took."""

    stats: Stats
    num_images: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.num_images / max(self.seconds, 1e-9)


@dataclass
class FidResult:
    """One FID value with its KID, the seed block (None for folders and zips), the throughput and a warning
    when too few images were measured (`few_images`)."""

    fid: float
    kid: float | None
    num_images: int
    seconds: float
    images_per_s: float
    seeds: range | None = None
    warning: str | None = None

    def as_dict(self) -> dict:
        seeds = None if self.seeds is None else [self.seeds.start, self.seeds.stop - 1]
        return {"fid": self.fid, "kid": self.kid, "num_images": self.num_images, "seconds": self.seconds,
                "images_per_s": self.images_per_s, "seeds": seeds, "warning": self.warning}


def few_images(dim: int, counts: dict[str, int | None]) -> str | None:
    """A warning when a side (`counts`: what -> images, None unknown) has fewer images than feature dimensions:
    its covariance is then singular (rank ≤ n − 1 < d), so the Fréchet distance is biased and not comparable."""
    short = [f"{n} {what}" for what, n in counts.items() if n is not None and n < dim]
    if not short:
        return None
    return (f"{' and '.join(short)} images for {dim}-dimensional features: the covariance is singular (rank below "
            f"{dim}), so the Fréchet distance is biased upward and not comparable; use at least {dim} images.")


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Iterate `items` in a background thread, keeping up to `depth` ready; exceptions re-raise here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def fill() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
            q.put(_DONE)
        except BaseException as e:  # handed to the consumer, which raises it
            q.put(e)

    thread = threading.Thread(target=fill, daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.01)


def compute_stats(
    batches: Iterable[torch.Tensor],
    detector: Detector,
    on_batch: Callable[[int], None] | None = None,
    kid_reservoir: int = KID_RESERVOIR,
) -> Measured:
    """Features of every uint8 NCHW batch, accumulated in float64 into (mu, sigma) and a KID reservoir."""
    start = time.perf_counter()
    acc = StatsAccumulator(kid_reservoir=kid_reservoir)
    with torch.no_grad():
        for batch in prefetch(batches):
            if batch.dtype != torch.uint8 or batch.ndim != 4:
                raise UserError(f"Images for FID must be uint8 NCHW batches, got {batch.dtype} of shape {tuple(batch.shape)}.")
            acc.add(detector.features(batch))
            if on_batch is not None:
                on_batch(len(batch))
    stats = acc.finish(meta=detector.describe())
    return Measured(stats, acc.n, time.perf_counter() - start)


def compare(measured: Measured, ref: Stats, seeds: range | None = None) -> FidResult:
    """FID (clean-fid's Fréchet distance) and KID of `measured` against the reference statistics; a distance
    that is not a finite number fails the run (CheckFailed), naming whether the features were to blame."""
    fid = frechet_distance(measured.stats, ref)
    if not math.isfinite(fid):
        features = measured.stats
        cause = ("the detector's features of the measured images are not finite"
                 if not (np.isfinite(features.mu).all() and np.isfinite(features.sigma).all())
                 else "the square root of the covariance product did not converge")
        raise CheckFailed(f"the Fréchet distance came out {fid}: {cause} ({measured.num_images} images).")
    return FidResult(
        fid=fid,
        kid=kernel_distance(measured.stats, ref, scale=kid_scale(measured.stats.meta)),
        num_images=measured.num_images,
        seconds=measured.seconds,
        images_per_s=measured.images_per_s,
        seeds=seeds,
        warning=few_images(ref.dim, {"measured": measured.num_images, "reference": ref.num_images}),
    )


def seed_blocks(num: int, repeats: int = 1) -> list[range]:
    """The paper's protocol: `repeats` disjoint seed blocks [0, num), [num, 2 num), ...; report each and the min."""
    from edmctl.recipe.schema import FID_IMAGES_MAX, FID_REPEATS_MAX

    if not (2 <= num <= FID_IMAGES_MAX and 1 <= repeats <= FID_REPEATS_MAX):
        raise UserError(f"--num must be 2..{FID_IMAGES_MAX:,} and --repeats 1..{FID_REPEATS_MAX} (eval.num, eval.repeats), "
                        f"got num={num}, repeats={repeats}.")
    return [range(r * num, (r + 1) * num) for r in range(repeats)]


def measure_blocks(
    make_batches: Callable[[range], Iterable[torch.Tensor]],
    detector: Detector,
    ref: Stats,
    num: int,
    repeats: int = 1,
    on_batch: Callable[[int], None] | None = None,
) -> list[FidResult]:
    """FID of the images `make_batches(seeds)` yields for each seed block of `seed_blocks(num, repeats)`."""
    return [compare(compute_stats(make_batches(seeds), detector, on_batch), ref, seeds) for seeds in seed_blocks(num, repeats)]


def best(results: list[FidResult]) -> FidResult:
    """The paper reports the minimum FID over its three repeats."""
    return min(results, key=lambda r: r.fid)
