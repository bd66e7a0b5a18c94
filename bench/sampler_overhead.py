"""Sampler overhead: wall time of `edmctl.sampling.sample` ÷ (NFE × one denoiser forward), on the CPU.

A small DDPM++ (SongUNet) behind EDM preconditioning, batch 64, the paper's EDM sampler (Heun, 18 steps,
NFE 35). Everything that is not the network (per-seed noise, the float64 ODE state, the solver, the step
schedule) is overhead; the target is a ratio <= 1.05. Forward passes and sampling runs are interleaved and each
timed several times; the minimum of each is used (the least disturbed by other processes on the machine).

    python bench/sampler_overhead.py [--repeats 3] [--batch 64] [--resolution 16] [--threads N]
"""

import argparse
import time

import torch

from edmctl.design.precond import Denoiser, EDMPrecond
from edmctl.networks import build_network, count_parameters
from edmctl.recipe import load_recipe
from edmctl.sampling import sample


def small_denoiser(resolution: int, channels: int = 3) -> Denoiser:
    """A DDPM++ of CIFAR-10's layout at a small width and depth, wrapped as D(x; σ) (EDM Eq. 7)."""
    torch.manual_seed(0)
    net = build_network("ddpmpp", img_resolution=resolution, in_channels=channels, out_channels=channels,
                        model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[resolution // 2])
    model = Denoiser(net.eval(), EDMPrecond(sigma_data=0.5))
    model.img_channels, model.img_resolution = channels, resolution
    return model


class TimedModel:
    """The model with a stopwatch around every call: the time inside the network during one sampling run."""

    def __init__(self, model):
        self.model, self.inside = model, 0.0
        for name in ("sigma_min", "sigma_max", "round_sigma", "label_dim", "img_channels", "img_resolution"):
            setattr(self, name, getattr(model, name))

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        result = self.model(*args, **kwargs)
        self.inside += time.perf_counter() - start
        return result


@torch.no_grad()
def time_forwards(model, batch: int, count: int) -> float:
    """Seconds of `count` consecutive denoiser calls on a float64 batch at a mid-range σ, as the sampler makes them."""
    x = torch.randn(batch, model.img_channels, model.img_resolution, model.img_resolution, dtype=torch.float64)
    sigma = torch.tensor(1.0, dtype=torch.float64)
    start = time.perf_counter()
    for _ in range(count):
        model(x, sigma)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = small_denoiser(args.resolution)
    sampler = load_recipe(None).sampler  # the paper's EDM sampler: heun, edm steps, 18 steps
    seeds = list(range(args.batch))
    nfe = sample(model, sampler, seeds[:1], batch=1).nfe  # warm-up, and the NFE of this sampler
    forwards, runs, in_run = [], [], []
    for _ in range(args.repeats):
        forwards.append(time_forwards(model, args.batch, nfe))
        timed = TimedModel(model)
        runs.append(sample(timed, sampler, seeds, batch=args.batch).seconds)
        in_run.append(runs[-1] / timed.inside)

    forward, run = min(forwards), min(runs)
    print(f"network: ddpmpp {count_parameters(model.net) / 1e6:.2f}M parameters, {args.resolution}x{args.resolution}x3, "
          f"batch {args.batch}, {torch.get_num_threads()} CPU threads, EDM sampler (heun, 18 steps), NFE {nfe}")
    print(f"{nfe} forwards alone: {forward:.3f} s   sampling: {run:.3f} s   (min of {args.repeats} interleaved repeats)")
    print(f"overhead ratio = sampling / (NFE x forward) = {run / forward:.3f}   (target <= 1.05)")
    print(f"within each run, wall time / time inside the network = {', '.join(f'{r:.3f}' for r in in_run)}")

if __name__ == "__main__":
    main()
