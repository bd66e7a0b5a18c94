"""The training loop (EDM training_loop.py): Adam with a linear lr ramp-up, gradient accumulation up to the
global batch, loss = Σ per-element loss / batch, NaN gradients zeroed and ±inf ones clamped to ±1e5, EMA with a
half-life in kimg.

Every random number comes from generators seeded from `training.seed` and the rank — the torch CPU (and CUDA)
default generator for dropout and label dropout, one `torch.Generator` for σ, noise and augmentation — and
the image order from `IndexStream`; a snapshot stores all of them, so a resumed run continues bit for bit.
"""

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch

from edmctl.data import to_model_range
from edmctl.errors import CheckFailed, UserError
from edmctl.networks import count_parameters
from edmctl.train.data import IndexStream
from edmctl.train.distributed import Dist, all_gather_bytes, all_sum, no_sync
from edmctl.train.ema import ema_beta, make_ema, update_ema
from edmctl.train.objective import build_denoiser, build_loss, build_net, one_hot
from edmctl.train.stats import LossByNoise, memory_gib


def accumulation(batch: int, batch_gpu: int | None, world_size: int) -> tuple[int, int]:
    """(per-device batch, accumulation rounds) so that batch_gpu · rounds · world_size = batch."""
    if batch % world_size:
        raise UserError(f"training.batch ({batch}) must be a multiple of the number of processes ({world_size}).")
    per_device = batch // world_size
    batch_gpu = per_device if batch_gpu is None or batch_gpu > per_device else batch_gpu
    if per_device % batch_gpu:
        raise UserError(f"training.batch / processes ({per_device}) must be a multiple of training.batch_gpu ({batch_gpu}).")
    return batch_gpu, per_device // batch_gpu


def rank_seeds(seed: int, rank: int) -> tuple[int, int]:
    """(default-generator seed, loss-generator seed) of a rank: distinct streams from one recipe seed."""
    return (seed << 16) + 2 * rank + 1, (seed << 16) + 2 * rank


def adam(params, lr: float, betas: tuple[float, float], eps: float) -> torch.optim.Adam:
    """EDM's optimizer, Adam, as one fused kernel per parameter (`fused=True`): a single pass over a parameter, its
    gradient and moments instead of the for-loop's six, 1.5-1.7x faster on CPU (bench/vs_nvlabs.py). Deterministic,
    but not the for-loop's bits: the fused kernel rounds differently (fused multiply-adds), within a few float32
    ulps of it per step. A snapshot records its `fused` flag, so a resumed run keeps the arithmetic it began with."""
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, fused=True)


def apply_gradients(optimizer: torch.optim.Optimizer, net: torch.nn.Module, ema: torch.nn.Module, lr: float,
                    beta: float) -> None:
    """EDM training_loop.py's weight update: the learning rate set, NaN gradients zeroed and ±inf ones clamped to
    ±1e5 (as EDM's loop does), the optimizer step, the EMA update."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    for param in net.parameters():
        if param.grad is not None:
            torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
    optimizer.step()
    update_ema(ema, net, beta)


def lr_at(lr: float, cur_nimg: int, rampup_kimg: float) -> float:
    """lr · min(cur_nimg / (rampup_kimg · 1000), 1) (EDM's linear ramp-up)."""
    return lr * min(cur_nimg / max(rampup_kimg * 1000, 1e-8), 1)


@dataclass
class Tick:
    """What one tick reports (through `on_tick`)."""

    nimg: int
    metrics: dict[str, float] = field(default_factory=dict)


class Trainer:
    """Everything one process trains with. Build it, optionally `restore` a snapshot, then call `step` until
    `done`; `state()` is the snapshot (a collective call under DDP)."""

    def __init__(self, recipe, dataset, dist: Dist):
        self.recipe, self.dataset, self.dist = recipe, dataset, dist
        training = recipe.training
        self.batch_gpu, self.rounds = accumulation(training.batch, training.batch_gpu, dist.world_size)
        self.label_dim = dataset.num_classes if recipe.data.conditional else 0
        torch.manual_seed(training.seed)  # same initial weights on every rank
        self.net = build_net(recipe, dataset.shape, self.label_dim).to(dist.device).train()
        self.ema = make_ema(self.net)
        self.model = self._wrap(self.net)
        self.denoiser = build_denoiser(recipe, self.model, dataset.shape, self.label_dim).train()
        self.loss_fn = build_loss(recipe)
        self.optimizer = adam(self.net.parameters(), training.lr, tuple(training.betas), training.eps)
        self.stream = IndexStream(len(dataset), training.seed)
        default_seed, loss_seed = rank_seeds(training.seed, dist.rank)
        torch.manual_seed(default_seed)
        self.generator = torch.Generator(dist.device).manual_seed(loss_seed)
        self.nimg, self.steps = 0, 0
        self.losses = LossByNoise()

    def ema_denoiser(self) -> torch.nn.Module:
        """D(x; σ) around the EMA weights (EDM Eq. 7), in eval mode: the model the paper evaluates. It shares
        the EMA's tensors, so it follows the training."""
        return build_denoiser(self.recipe, self.ema, self.dataset.shape, self.label_dim).eval()

    def _wrap(self, net: torch.nn.Module) -> torch.nn.Module:
        model = net
        if self.dist.active:
            device_ids = [self.dist.device] if self.dist.device.type == "cuda" else None
            # Conv backward gives 1x1 kernels' grads strides that differ from the bucket's only on size-1 dims (the
            # same memory layout), which DDP reports every step; nothing to act on, so that one warning is hidden.
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
            # gradient_as_bucket_view: grads live in the all-reduce buckets, no extra copy.
            model = torch.nn.parallel.DistributedDataParallel(net, device_ids=device_ids, gradient_as_bucket_view=True)
        return torch.compile(model) if self.recipe.training.compile else model

    @property
    def parameter_count(self) -> int:
        return count_parameters(self.net)

    @property
    def total_nimg(self) -> int:
        return round(self.recipe.training.duration_kimg * 1000)

    @property
    def done(self) -> bool:
        return self.nimg >= self.total_nimg

    def _batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        images, labels = self.dataset.get_batch(indices)
        images = to_model_range(images).to(self.dist.device)
        return images, one_hot(labels.to(self.dist.device), self.label_dim)

    def _accumulate(self, indices: torch.Tensor) -> None:
        """Forward and backward over every round's slice of the global batch; loss = Σ / (batch per device)."""
        per_device = self.batch_gpu * self.rounds
        for r in range(self.rounds):
            start = (r * self.dist.world_size + self.dist.rank) * self.batch_gpu
            images, labels = self._batch(indices[start : start + self.batch_gpu])
            with no_sync(self.model, skip=r < self.rounds - 1):
                loss, sigma = self.loss_fn(self.denoiser, images, labels, self.generator)
                loss.sum().mul(1 / per_device).backward()
            self.losses.add(loss.detach().mean(dim=(1, 2, 3)), sigma)

    def step(self) -> None:
        """One optimizer step over `training.batch` images."""
        indices = self.stream.take(self.recipe.training.batch)
        self.optimizer.zero_grad(set_to_none=True)
        self._accumulate(indices)
        training = self.recipe.training
        apply_gradients(self.optimizer, self.net, self.ema, lr_at(training.lr, self.nimg, training.lr_rampup_kimg),
                        ema_beta(training.batch, self.nimg, training.ema_halflife_kimg, training.ema_rampup_ratio))
        self.nimg += self.recipe.training.batch
        self.steps += 1

    def tick_metrics(self) -> dict[str, float]:
        """Loss overall and per σ bin over every rank since the last call (collective), then reset; the learning
        rate and EMA β of the last step."""
        training = self.recipe.training
        values = self.losses.metrics(all_sum(self.dist, self.losses.packed()))
        self.losses.reset()
        values["memory_gib"] = memory_gib(self.dist.device)
        values["lr"] = self.optimizer.param_groups[0]["lr"]
        values["ema_beta"] = ema_beta(training.batch, self.nimg - training.batch, training.ema_halflife_kimg,
                                      training.ema_rampup_ratio)
        return values

    def _rng_states(self) -> dict[str, list[torch.Tensor]]:
        states = {"torch_cpu": all_gather_bytes(self.dist, torch.get_rng_state()),
                  "loss_generator": all_gather_bytes(self.dist, self.generator.get_state())}
        states["torch_cuda"] = (all_gather_bytes(self.dist, torch.cuda.get_rng_state(self.dist.device))
                                if self.dist.device.type == "cuda" else [])
        return states

    def state(self) -> dict:
        """The snapshot: weights, EMA, optimizer, counters, every rank's RNG states, the data position."""
        return {"nimg": self.nimg, "step": self.steps, "net": self.net.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(), "rng": self._rng_states(),
                "data_position": self.stream.position, "world_size": self.dist.world_size,
                "recipe_hash": self.recipe.hash(), "img_shape": list(self.dataset.shape), "label_dim": self.label_dim}

    def restore(self, state: dict) -> None:
        """Continue from a snapshot taken with the same number of processes."""
        if state["world_size"] != self.dist.world_size:
            raise UserError(f"the snapshot was taken with {state['world_size']} processes; resume with --nproc {state['world_size']}.")
        try:
            self.net.load_state_dict(state["net"])
        except RuntimeError:  # a --set of a network.* or data shape field: another network
            raise UserError("the snapshot's weights do not fit the network this recipe builds; a resumed run keeps its "
                            "network.* fields and data shape (resolution, channels, conditional): drop those --set.") from None
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.nimg, self.steps, self.stream.position = state["nimg"], state["step"], state["data_position"]
        rng = state["rng"]
        torch.set_rng_state(rng["torch_cpu"][self.dist.rank])
        self.generator.set_state(rng["loss_generator"][self.dist.rank])
        if self.dist.device.type == "cuda" and rng["torch_cuda"]:
            torch.cuda.set_rng_state(rng["torch_cuda"][self.dist.rank], self.dist.device)


def crossed(before: int, after: int, interval_nimg: int) -> bool:
    """Whether a multiple of `interval_nimg` lies in (before, after]."""
    return after // max(interval_nimg, 1) > before // max(interval_nimg, 1)


def due(before: int, after: int, kimg: float, done: bool) -> bool:
    """Whether an event every `kimg` (0: never) falls on the step from `before` to `after` images: a multiple of
    it crossed, or the end of training."""
    return kimg > 0 and (crossed(before, after, round(kimg * 1000)) or done)


class Hooks:
    """What `run_training` reports, each every its interval and at the end, on every rank. These do nothing;
    `edmctl.train.record.Recorder` records them on rank 0, and `FidShare` takes the other ranks' part in FID."""

    def tick(self, tick: Tick) -> None:
        """Every `training.tick_kimg`: the tick's metrics."""

    def grid(self, nimg: int) -> None:
        """Every `training.grid_kimg`: a sample grid of the EMA."""

    def fid(self, nimg: int) -> None:
        """Every `eval.every_kimg`: FID of the EMA."""

    def snapshot(self, state: dict) -> None:
        """Every `training.snapshot_kimg`: `trainer.state()`, gathered on every rank."""


def run_training(trainer: Trainer, hooks: Hooks, progress: Callable[[int, float], None] | None = None) -> None:
    """Step until `training.duration_kimg`, reporting to `hooks` at each interval and at the end. At one step,
    the tick, grid and FID come before the snapshot: a run killed between them redoes them from the previous
    snapshot, so no point of any series is lost (`edmctl.train.curves.continued` drops the repeated ones)."""
    recipe, training = trainer.recipe, trainer.recipe.training
    tick_start, tick_time, loss = trainer.nimg, time.perf_counter(), float("nan")
    while not trainer.done:
        before = trainer.nimg
        trainer.step()
        if progress is not None:
            progress(trainer.nimg, loss)
        ticked = due(before, trainer.nimg, training.tick_kimg, trainer.done)
        if ticked:
            tick = measure_tick(trainer, tick_start, tick_time)
            loss = tick.metrics["loss"]
            hooks.tick(tick)
        if due(before, trainer.nimg, training.grid_kimg, trainer.done):
            hooks.grid(trainer.nimg)
        if due(before, trainer.nimg, recipe.eval.every_kimg, trainer.done):
            hooks.fid(trainer.nimg)
        if due(before, trainer.nimg, training.snapshot_kimg, trainer.done):
            hooks.snapshot(trainer.state())
        if ticked:  # images/s counts training alone, not the hooks' grids, FID and snapshots
            tick_start, tick_time = trainer.nimg, time.perf_counter()


def measure_tick(trainer: Trainer, tick_start: int, tick_time: float) -> Tick:
    """The tick's metrics (collective), images/s since the last tick and kimg; a diverged loss fails the run."""
    metrics = trainer.tick_metrics()
    metrics["images_per_s"] = (trainer.nimg - tick_start) / max(time.perf_counter() - tick_time, 1e-9)
    metrics["kimg"] = trainer.nimg / 1000
    check_finite_loss(metrics["loss"], trainer)
    return Tick(trainer.nimg, metrics)


def check_finite_loss(loss: float, trainer: Trainer) -> None:
    """Training that diverged (a NaN or inf mean loss over a tick) fails the run before it writes a snapshot."""
    if not math.isfinite(loss):
        training = trainer.recipe.training
        raise CheckFailed(f"training diverged: the mean loss turned {loss} by {trainer.nimg / 1000:g} kimg "
                          f"(training.lr = {training.lr:g}, p_mean = {training.p_mean:g}, p_std = {training.p_std:g}); "
                          f"lower training.lr or check the data and the preconditioning.")


def time_per_kimg(trainer: Trainer, steps: int = 3) -> float:
    """Seconds per thousand training images, measured over `steps` steps after one warm-up step. The trainer's
    state changes: measure on a trainer that is thrown away (`--dry-run`)."""
    trainer.step()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    if trainer.dist.device.type == "cuda":
        torch.cuda.synchronize(trainer.dist.device)
    return (time.perf_counter() - start) / (steps * trainer.recipe.training.batch) * 1000
