"""Training throughput: images/s of the whole loop step (`Trainer.step`: data, p_train, noise, preconditioning,
loss, backward, NaN guard, Adam, EMA) against the bare forward + backward of the same network F on the same
batch — the difference is the loop's own overhead. Both measured in this run, on this machine.

    python bench/train_throughput.py [RECIPE] [--steps N] [--set SECTION.FIELD=VALUE ...]
"""

import argparse
import time

import torch

from edmctl.recipe import load_recipe
from edmctl.train.distributed import Dist, pick_device
from edmctl.train.loop import Trainer
from edmctl.train.session import open_training_data


def timed(fn, steps: int, device: torch.device) -> float:
    """Seconds per call of `fn`, after one warm-up call."""
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default="recipes/digits.toml")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the fastest of each is kept")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    recipe = load_recipe(args.recipe, overrides=args.overrides)
    dist = Dist(device=pick_device())
    dataset, _ = open_training_data(recipe)
    trainer = Trainer(recipe, dataset, dist)
    batch = recipe.training.batch
    x = torch.randn(batch, *dataset.shape, device=dist.device)
    noise_labels = torch.randn(batch, device=dist.device)

    def bare() -> None:
        trainer.net.zero_grad(set_to_none=True)
        trainer.net(x, noise_labels).square().mean().backward()

    rounds = [(timed(trainer.step, args.steps, dist.device), timed(bare, args.steps, dist.device)) for _ in range(args.rounds)]
    loop_s, bare_s = min(r[0] for r in rounds), min(r[1] for r in rounds)  # interleaved; min resists a busy machine
    print(f"recipe {args.recipe}, batch {batch}, {trainer.parameter_count:,} parameters, device {dist.device}, "
          f"{torch.get_num_threads()} threads, {args.rounds} interleaved rounds of {args.steps} steps")
    print(f"whole loop step      : {batch / loop_s:9.1f} images/s  ({loop_s * 1000:.1f} ms/step)")
    print(f"bare forward+backward: {batch / bare_s:9.1f} images/s  ({bare_s * 1000:.1f} ms/step)")
    print(f"loop / bare time     : {loop_s / bare_s:.3f}  (loop overhead {100 * (loop_s - bare_s) / loop_s:.1f}% of a step)")


if __name__ == "__main__":
    main()
