"""One seed block's statistics measured by every rank of a training together (`eval.every_kimg` under
`--nproc`): batch j of the block is generated and passed through the detector on rank j mod world_size, and rank
0 accumulates the features batch by batch in order j. The batches are those one process would make, so the
images, features and statistics are the ones it would get, in about 1/world_size of its time; and no rank waits
at the next gradient all-reduce for rank 0's measurement, where a collective timeout (NCCL's 10 minutes) would
end the training."""

import time
from typing import Callable, Iterable

import torch

from edmctl.fid.detectors import Detector
from edmctl.fid.pipeline import Measured
from edmctl.fid.stats import StatsAccumulator
from edmctl.train.distributed import Dist, gather_rows


def shared_stats(make_batches: Callable[[range], Iterable[torch.Tensor]], detector: Detector, dim: int,
                 seeds: range, batch: int, dist: Dist) -> Measured | None:
    """The statistics of the images `make_batches` yields for `seeds`, `batch` at a time, their `dim`-dimensional
    features measured across the ranks of `dist`; on rank 0 (None on the others). Every rank must call it."""
    start = time.perf_counter()
    batches = [seeds[i:i + batch] for i in range(0, len(seeds), batch)]
    acc = StatsAccumulator() if dist.is_main else None
    for first in range(0, len(batches), dist.world_size):
        j = first + dist.rank
        rows = torch.zeros(0, dim, dtype=torch.float64)
        if j < len(batches):
            (images,) = make_batches(batches[j])
            rows = torch.from_numpy(detector.features(images))
        for features in gather_rows(dist, rows, batch):
            if acc is not None and len(features):
                acc.add(features.numpy())
    if acc is None:
        return None
    return Measured(acc.finish(meta=detector.describe()), acc.n, time.perf_counter() - start)
