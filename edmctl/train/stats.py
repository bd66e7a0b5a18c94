"""What a tick reports: the loss overall and per noise level (log-spaced σ bins, as EDM's Fig. 5 loss-vs-σ
plots), images per second and memory."""

import math
import resource
import sys

import torch

SIGMA_EDGES = (0.01, 0.1, 1.0, 10.0)  # decades: σ < 0.01, [0.01, 0.1), …, σ ≥ 10


def bin_names(edges=SIGMA_EDGES) -> list[str]:
    """Metric keys of the σ bins: `loss_sigma<0.01`, `loss_sigma0.01-0.1`, …, `loss_sigma>=10`."""
    inner = [f"loss_sigma{lo:g}-{hi:g}" for lo, hi in zip(edges[:-1], edges[1:])]
    return [f"loss_sigma<{edges[0]:g}", *inner, f"loss_sigma>={edges[-1]:g}"]


class LossByNoise:
    """Running sums of the per-image loss, overall and per σ bin, over the images of one tick."""

    def __init__(self, edges=SIGMA_EDGES):
        self.edges = torch.tensor(edges, dtype=torch.float64)
        self.names = bin_names(edges)
        self.reset()

    def reset(self) -> None:
        self.sums = torch.zeros(len(self.names) + 1, dtype=torch.float64)  # last: all images
        self.counts = torch.zeros_like(self.sums)

    def add(self, per_image_loss: torch.Tensor, sigma: torch.Tensor) -> None:
        loss, sigma = per_image_loss.detach().double().cpu(), sigma.detach().double().cpu().reshape(-1)
        bins = torch.bucketize(sigma, self.edges, right=True)
        self.sums.index_add_(0, bins, loss)
        self.counts.index_add_(0, bins, torch.ones_like(loss))
        self.sums[-1] += loss.sum()
        self.counts[-1] += len(loss)

    def packed(self) -> torch.Tensor:
        """Sums then counts in one tensor, to be summed over ranks."""
        return torch.cat([self.sums, self.counts])

    def metrics(self, packed: torch.Tensor | None = None) -> dict[str, float]:
        """`loss` and every non-empty bin's mean loss."""
        packed = self.packed() if packed is None else packed
        sums, counts = packed.chunk(2)
        values = {"loss": float(sums[-1] / counts[-1]) if counts[-1] else math.nan}
        for name, total, count in zip(self.names, sums[:-1], counts[:-1]):
            if count:
                values[name] = float(total / count)
        return values


def memory_gib(device: torch.device) -> float:
    """Peak memory: the GPU's allocated peak on CUDA, else the process's peak resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20
