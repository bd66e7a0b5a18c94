"""Training step cost: forward + backward of the whole loss against the bare network on the same inputs, on the CPU.

A DDPM++-shaped network (SongUNet: positional embedding, standard encoder/decoder, attention at half resolution,
9-dim augmentation label) at a CPU-sized width, in training mode. The full step is
λ(σ)‖D(y + n; σ) − y‖² (EDM Eq. 2, 8) with EDM preconditioning, p_train and λ, and non-leaky augmentation with
p = 0.12 (EDM App. B.4): it draws σ, augments, adds noise, preconditions, runs F, weights the error and
backpropagates. The bare step runs F alone, forward and backward, on inputs and a gradient of the same shapes.
Everything in the full step that is not the network (loss, preconditioning, augmentation, the draws) is its
share outside the network: (full − bare) / full. As that difference is small against the scatter of the timings,
the outside pieces are also timed directly: the full step with F replaced by a 1×1 convolution (`Pointwise`). The two are interleaved and each timed `--repeats` times after a
warm-up; medians are compared, in wall seconds and in CPU seconds of this process. On a machine shared with other
processes the wall times scatter; the CPU seconds with `--threads 1` do not (with more threads they include the
threads' spin-waiting), so they are the numbers to quote there.

    python bench/train_step.py [--repeats 10] [--batch 32] [--resolution 16] [--channels 32] [--threads N]
"""

import argparse
import statistics
import time

import torch

from edmctl.design.augment import AUGMENT_DIM, AugmentPipe
from edmctl.design.loss import DenoisingLoss
from edmctl.design.loss_weights import LOSS_WEIGHTS
from edmctl.design.p_train import P_TRAIN
from edmctl.design.precond import Denoiser, EDMPrecond
from edmctl.networks import build_network, count_parameters

SIGMA_DATA, P_MEAN, P_STD, AUGMENT_P = 0.5, -1.2, 1.2, 0.12


def ddpmpp(resolution: int, model_channels: int) -> torch.nn.Module:
    """DDPM++ with CIFAR-10's layout scaled down: channel_mult [1, 2, 2], 2 blocks per level, attention at half
    resolution, dropout 0.13, augmentation labels."""
    torch.manual_seed(0)
    return build_network("ddpmpp", img_resolution=resolution, in_channels=3, out_channels=3,
                         augment_dim=AUGMENT_DIM, dropout=0.13, model_channels=model_channels,
                         channel_mult=[1, 2, 2], num_blocks=2, attn_resolutions=[resolution // 2]).train()


def edm_loss() -> DenoisingLoss:
    """The paper's EDM objective: ln σ ~ N(P_mean, P_std²), λ = 1/c_out², augmentation with p = 0.12."""
    def p_train(n, generator, device):
        return P_TRAIN["edm"](n, generator, device, p_mean=P_MEAN, p_std=P_STD)

    def loss_weight(sigma):
        return LOSS_WEIGHTS["edm"](sigma, sigma_data=SIGMA_DATA)

    return DenoisingLoss(p_train, loss_weight, AugmentPipe(p=AUGMENT_P))


class Pointwise(torch.nn.Module):
    """A near-free F with the network's signature: the loss, preconditioning and augmentation around it are all
    that such a step costs."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, channels, 1)

    def forward(self, x, noise_labels, class_labels=None, augment_labels=None):
        return self.conv(x)


def full_step(net, denoiser, loss_fn, images, generator) -> None:
    net.zero_grad(set_to_none=True)
    loss, _ = loss_fn(denoiser, images, generator=generator)
    loss.sum().div(images.shape[0]).backward()


def bare_step(net, x, c_noise, augment_labels, grad) -> None:
    net.zero_grad(set_to_none=True)
    net(x, c_noise, None, augment_labels).backward(grad)


def seconds(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of one call of `fn`."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--channels", type=int, default=32, help="model_channels")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    net = ddpmpp(args.resolution, args.channels)
    denoiser = Denoiser(net, EDMPrecond(sigma_data=SIGMA_DATA))
    loss_fn = edm_loss()
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, 3, args.resolution, args.resolution, generator=gen) * SIGMA_DATA
    x = torch.randn(images.shape, generator=gen)
    c_noise = (P_MEAN + P_STD * torch.randn(args.batch, generator=gen)) / 4  # ¼ ln σ, σ ~ p_train
    augment_labels = AugmentPipe(p=AUGMENT_P).sample_labels(args.batch, gen)
    grad = torch.randn(images.shape, generator=gen) / images.numel()

    def full():
        return full_step(net, denoiser, loss_fn, images, gen)

    def bare():
        return bare_step(net, x, c_noise, augment_labels, grad)

    pointwise = Pointwise(3)
    pointwise_denoiser = Denoiser(pointwise, EDMPrecond(sigma_data=SIGMA_DATA))

    def outside():
        return full_step(pointwise, pointwise_denoiser, loss_fn, images, gen)

    def augment():
        return loss_fn.augment(images, gen)

    steps = {"full": full, "bare": bare, "outside": outside, "augment": augment}
    for step in steps.values():  # warm-up
        step()
    times = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            times[name].append(seconds(step))
    wall = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}

    print(f"network: ddpmpp {count_parameters(net) / 1e6:.2f}M parameters, model_channels {args.channels}, "
          f"channel_mult [1, 2, 2], {args.resolution}x{args.resolution}x3, batch {args.batch}, "
          f"{torch.get_num_threads()} threads, {args.repeats} interleaved repeats")
    for name, label in (("full", "full step (loss + precond + augment + F), fwd+bwd"),
                        ("bare", "bare network F, fwd+bwd"),
                        ("outside", "outside pieces alone (F = 1x1 conv), fwd+bwd"),
                        ("augment", "augmentation alone (p = 0.12)")):
        print(f"{label:<52} median wall {wall[name]:.4f} s   CPU {cpu[name]:.4f} s")
    for clock, values in (("wall", wall), ("CPU", cpu)):
        by_difference = (values["full"] - values["bare"]) / values["full"]
        direct = values["outside"] / (values["outside"] + values["bare"])
        print(f"{clock:>4}: full / bare = {values['full'] / values['bare']:.3f}   share of the step outside the "
              f"network = {by_difference:.1%} (full - bare), {direct:.1%} (timed directly)   augmentation = "
              f"{values['augment'] / values['full']:.1%}")


if __name__ == "__main__":
    main()
