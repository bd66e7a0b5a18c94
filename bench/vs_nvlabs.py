"""edmctl against the reference itself: NVlabs/edm's networks, sampler and loss, same weights, one process.

Needs an NVlabs/edm checkout named by `EDM_SRC` (never vendored; its `training/` and `torch_utils/` are
imported from there, its `generate.py` too, which needs `click` installed). One DDPM++ (SongUNet) behind EDM
preconditioning is built by NVlabs's `EDMPrecond`, and its weights are loaded into edmctl's network (strict,
the `model.` prefix stripped), so both compute the same function. Then, interleaved, each timed `--repeats`
times after a warm-up:

- sampling: NVlabs `generate.edm_sampler` (Heun, 18 steps, NFE 35) against `edmctl.sampling.sample` with the
  recipe's EDM sampler, the same seeds and batch; wall and CPU seconds;
- a training step, each as its own training loop does it: the EDM loss (EDM Eq. 2 with p_train and λ of
  Table 1, no augmentation) forward and backward, then the weight update (learning rate, NaN/inf gradients
  zeroed, Adam, EMA with EDM's CIFAR-10 half-life of 500 kimg): NVlabs's `EDMLoss` + `EDMPrecond` and the
  update written as in its `training_loop.py`, against edmctl's `DenoisingLoss` + `Denoiser` and
  `edmctl.train.loop.apply_gradients` with its `adam` (what `Trainer.step` runs); images/s (wall and CPU), and
  the peak resident memory the step adds on top of what the process held before it (glibc's free memory
  returned with `malloc_trim(0)` before each step, RSS sampled every 0.5 ms by a thread); and the bytes of the
  activations one training forward keeps for backward (`torch.autograd.graph.saved_tensors_hooks`), which
  does not depend on the allocator.

Ratios are edmctl ÷ NVlabs per interleaved pair; printed as the median and the spread (min..max) over pairs.
Sampling and memory: lower is better; training images/s: higher is better. Run with OMP_NUM_THREADS=1 (as
`bench/run_all.py` does) so the two see the same single core.

    EDM_SRC=/path/to/edm python bench/vs_nvlabs.py [--repeats 5] [--batch 64] [--resolution 16] [--channels 64]
                                                   [--parts sampling training memory]
"""

import argparse
import copy
import ctypes
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

from edmctl.design.loss import DenoisingLoss
from edmctl.design.loss_weights import LOSS_WEIGHTS
from edmctl.design.p_train import P_TRAIN
from edmctl.design.precond import Denoiser, EDMPrecond
from edmctl.networks import build_network, count_parameters
from edmctl.recipe import load_recipe
from edmctl.sampling import sample
from edmctl.train.ema import make_ema
from edmctl.train.loop import adam, apply_gradients

SIGMA_DATA, P_MEAN, P_STD = 0.5, -1.2, 1.2
PARTS = ["sampling", "training", "memory"]
LR, BETAS, EPS, EMA_HALFLIFE_KIMG = 1e-4, (0.9, 0.999), 1e-8, 500  # EDM's CIFAR-10 training (train.py)


def nvlabs_modules(source: str):
    """NVlabs's `training.networks`, `training.loss` and `generate` imported from the checkout `source`."""
    root = Path(source).expanduser().resolve()
    if not (root / "training" / "networks.py").is_file():
        sys.exit(f"EDM_SRC={source} is not an NVlabs/edm checkout (no training/networks.py there).")
    sys.path.insert(0, str(root))
    try:
        import generate
        from training import loss, networks
    except ImportError as e:
        sys.exit(f"NVlabs/edm at {root} does not import here ({e}); install what its environment.yml lists "
                 f"(e.g. pip install click).")
    return networks, loss, generate


def song_kwargs(channels: int, resolution: int) -> dict:
    """DDPM++ with CIFAR-10's layout at a CPU size: channel_mult [1, 2, 2], 2 blocks, attention at half res."""
    return dict(model_channels=channels, channel_mult=[1, 2, 2], num_blocks=2, attn_resolutions=[resolution // 2],
                dropout=0.13, embedding_type="positional", encoder_type="standard", decoder_type="standard",
                channel_mult_noise=1, resample_filter=[1, 1])


def twin_networks(networks, resolution: int, channels: int):
    """(NVlabs EDMPrecond, edmctl Denoiser) computing the same function: NVlabs's initial weights in both."""
    kwargs = song_kwargs(channels, resolution)
    torch.manual_seed(0)
    theirs = networks.EDMPrecond(img_resolution=resolution, img_channels=3, sigma_data=SIGMA_DATA,
                                 model_type="SongUNet", **kwargs)
    net = build_network("ddpmpp", img_resolution=resolution, in_channels=3, out_channels=3, **kwargs)
    net.load_state_dict({k.removeprefix("model."): v for k, v in theirs.state_dict().items()}, strict=True)
    ours = Denoiser(net, EDMPrecond(sigma_data=SIGMA_DATA))
    ours.img_channels, ours.img_resolution = 3, resolution
    return theirs, ours


def seconds(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of one call of `fn`."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


class PeakRSS:
    """Peak resident set size (bytes) during a `with` block, above the RSS at its start, sampled by a thread."""

    PAGE = os.sysconf("SC_PAGE_SIZE")

    def __enter__(self):
        _malloc_trim()
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.growth = self.peak - self.start

    def _watch(self):
        while not self._stop.wait(0.0005):
            self.peak = max(self.peak, self._rss())

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.PAGE


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc: nothing to return
        pass


def sampling_pair(generate, theirs, ours, batch: int, resolution: int):
    """Callables sampling `batch` seeds with Heun at 18 steps: NVlabs generate.edm_sampler and edmctl."""
    sampler = load_recipe(None).sampler  # EDM's sampler: heun, edm steps, rho 7, 18 steps, no churn
    seeds = list(range(batch))

    @torch.no_grad()
    def nvlabs():
        latents = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
        generate.edm_sampler(theirs, latents, num_steps=18)

    def edmctl():
        sample(ours, sampler, seeds, batch=batch)

    return nvlabs, edmctl


def training_pair(loss_module, theirs, ours, batch: int, resolution: int):
    """Callables doing one EDM training step on each implementation: loss forward and backward, weight update."""
    images = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(1)) * SIGMA_DATA
    their_loss = loss_module.EDMLoss(P_mean=P_MEAN, P_std=P_STD, sigma_data=SIGMA_DATA)
    our_loss = DenoisingLoss(lambda n, g, d: P_TRAIN["edm"](n, g, d, p_mean=P_MEAN, p_std=P_STD),
                             lambda sigma: LOSS_WEIGHTS["edm"](sigma, sigma_data=SIGMA_DATA))
    their_adam = torch.optim.Adam(theirs.parameters(), lr=LR, betas=BETAS, eps=EPS)  # train.py's optimizer_kwargs
    our_adam = adam(ours.net.parameters(), LR, BETAS, EPS)
    their_ema, our_ema = copy.deepcopy(theirs).eval().requires_grad_(False), make_ema(ours.net)
    ema_beta = 0.5 ** (batch / (EMA_HALFLIFE_KIMG * 1000))  # past the ramp-ups of lr and EMA
    generator = torch.Generator().manual_seed(2)
    theirs.train(), ours.net.train()

    def nvlabs():  # training_loop.py: the accumulation round, "Update weights." and "Update EMA."
        their_adam.zero_grad(set_to_none=True)
        their_loss(theirs, images).sum().mul(1 / batch).backward()
        for g in their_adam.param_groups:
            g["lr"] = LR
        for param in theirs.parameters():
            if param.grad is not None:
                torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
        their_adam.step()
        for p_ema, p_net in zip(their_ema.parameters(), theirs.parameters()):
            p_ema.copy_(p_net.detach().lerp(p_ema, ema_beta))
        for b_ema, b_net in zip(their_ema.buffers(), theirs.buffers()):
            b_ema.copy_(b_net)

    def edmctl():  # Trainer.step
        our_adam.zero_grad(set_to_none=True)
        our_loss(ours, images, generator=generator)[0].sum().mul(1 / batch).backward()
        apply_gradients(our_adam, ours.net, our_ema, LR, ema_beta)

    return nvlabs, edmctl


def spread(ratios: list[float]) -> str:
    return f"median {statistics.median(ratios):.3f} (spread {min(ratios):.3f}..{max(ratios):.3f}, {len(ratios)} pairs)"


def compare_times(name: str, pair, repeats: int, per_second: int = 0) -> None:
    """Interleave the two callables `repeats` times after a warm-up; print per-pair edmctl/NVlabs ratios of wall
    and CPU seconds (or of images/s when `per_second` gives the images per call)."""
    nvlabs, edmctl = pair
    nvlabs(), edmctl()
    times = [(seconds(nvlabs), seconds(edmctl)) for _ in range(repeats)]
    for clock, index in (("wall", 0), ("CPU", 1)):
        ratios = [ours[index] / theirs[index] for theirs, ours in times]
        if per_second:
            ratios = [1 / r for r in ratios]
        theirs = statistics.median(t[index] for t, _ in times)
        ours = statistics.median(o[index] for _, o in times)
        unit = (f"NVlabs {per_second / theirs:.1f} img/s, edmctl {per_second / ours:.1f} img/s" if per_second
                else f"NVlabs {theirs:.3f} s, edmctl {ours:.3f} s")
        what = "images/s" if per_second else "seconds"
        print(f"{name} {clock} {what} edmctl / NVlabs: {spread(ratios)}   [{unit}]")


def compare_memory(pair, repeats: int) -> None:
    """Peak RSS growth of a training step, interleaved; per-pair ratio edmctl / NVlabs."""
    nvlabs, edmctl = pair
    growth = []
    for _ in range(repeats):
        with PeakRSS() as theirs:
            nvlabs()
        with PeakRSS() as ours:
            edmctl()
        growth.append((theirs.growth, ours.growth))
    mib = 2**20
    ratios = [o / t for t, o in growth]
    print(f"training peak memory growth per step edmctl / NVlabs: {spread(ratios)}   [NVlabs "
          f"{statistics.median(t for t, _ in growth) / mib:.0f} MiB, edmctl {statistics.median(o for _, o in growth) / mib:.0f} MiB]")


def kept_for_backward(step_forward) -> int:
    """Bytes of the tensors autograd keeps for backward during `step_forward()` (each storage once): what the
    network holds between its forward and backward passes, independent of the allocator, unlike the RSS."""
    kept = {}
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.setdefault(t.untyped_storage().data_ptr(), t),
                                                  lambda t: t):
        step_forward()
    return sum(t.untyped_storage().nbytes() for t in kept.values())


def compare_kept(theirs, ours, batch: int, resolution: int) -> None:
    """Activations kept for backward by one training forward (same inputs, σ and dropout seed), edmctl / NVlabs."""
    x = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(3)) * SIGMA_DATA
    sigma = torch.full((batch,), 1.0)
    kept = [kept_for_backward(lambda: net(x, sigma)) for net in (theirs, ours)]
    mib = 2**20
    print(f"training activations kept for backward edmctl / NVlabs: {kept[1] / kept[0]:.3f}   "
          f"[NVlabs {kept[0] / mib:.1f} MiB, edmctl {kept[1] / mib:.1f} MiB]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--channels", type=int, default=64, help="model_channels (a multiple of 32; 64: 7.0M parameters)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS, help="what to compare (default: all)")
    args = parser.parse_args()
    source = os.environ.get("EDM_SRC")
    if not source:
        sys.exit("EDM_SRC is not set: point it at an NVlabs/edm checkout (git clone of NVlabs/edm) to compare.")
    networks, loss_module, generate = nvlabs_modules(source)
    theirs, ours = twin_networks(networks, args.resolution, args.channels)
    print(f"network: DDPM++ {count_parameters(ours.net) / 1e6:.2f}M parameters, {args.resolution}x{args.resolution}x3, "
          f"batch {args.batch}, {torch.get_num_threads()} torch threads, {args.repeats} interleaved repeats, "
          f"load average {os.getloadavg()[0]:.1f}")
    theirs.eval(), ours.net.eval()
    if "sampling" in args.parts:
        compare_times("sampling (heun, 18 steps, NFE 35)", sampling_pair(generate, theirs, ours, args.batch,
                                                                         args.resolution), args.repeats)
    train = training_pair(loss_module, theirs, ours, args.batch, args.resolution)
    if "training" in args.parts:
        compare_times("training", train, args.repeats, per_second=args.batch)
    if "memory" in args.parts:
        compare_memory(train, args.repeats)
        compare_kept(theirs, ours, args.batch, args.resolution)
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
