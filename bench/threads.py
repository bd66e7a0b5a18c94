"""torch's thread count for small networks on a shared CPU: images/s of training and of sampling the demo's
network (recipes/digits.toml: DDPM++, 8×8, batch 64; Heun with EDM steps) on 1, 2, … threads, on the CPU as
found and again with one extra busy process per core (what 8 developers sharing 2 cores look like), as ratios
to 1 thread. This picks `edmctl.threads.DEFAULT`.

Each (load, threads) point runs `--rounds` times, interleaved with the others so that a change in the machine's
load hits every point alike; the median is kept. Wall seconds decide what a user waits; CPU seconds (this
process, all its threads) show what the extra threads cost the other users of the machine.

    python bench/threads.py [--rounds 3] [--train-steps 3] [--sample-steps 6] [--threads 1 2]
"""

import argparse
import multiprocessing
import os
import statistics
import time

import torch

from edmctl.recipe import load_recipe
from edmctl.sampling import sample
from edmctl.train.distributed import Dist
from edmctl.train.loop import Trainer
from edmctl.train.objective import build_denoiser
from edmctl.train.session import open_training_data


def spin() -> None:
    """A competing process: one core's worth of busy work (another user's job)."""
    while True:
        pass


def timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def workloads(recipe_path: str, train_steps: int, sample_steps: int) -> dict:
    """{name: (images per call, call)}: `train_steps` training steps; one batch sampled with Heun."""
    recipe = load_recipe(recipe_path, overrides=[f"sampler.steps={sample_steps}"])
    dataset, _ = open_training_data(recipe)
    trainer = Trainer(recipe, dataset, Dist(device=torch.device("cpu")))
    denoiser = build_denoiser(recipe, trainer.ema, dataset.shape, 0).eval()
    batch = recipe.training.batch

    def train() -> None:
        for _ in range(train_steps):
            trainer.step()

    return {"train": (batch * train_steps, train),
            "sample": (batch, lambda: sample(denoiser, recipe.sampler, list(range(batch)), batch=batch))}


def measure(work: dict, thread_counts: list[int], rounds: int) -> dict:
    """{(name, threads): (median wall s, median CPU s)}, the thread counts interleaved round by round."""
    times: dict = {}
    for _ in range(rounds):
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for name, (_, fn) in work.items():
                times.setdefault((name, threads), []).append(timed(fn))
    return {key: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
            for key, runs in times.items()}


def report(title: str, work: dict, medians: dict, thread_counts: list[int]) -> None:
    print(f"\n{title} (load average {os.getloadavg()[0]:.1f})")
    for name, (images, _) in work.items():
        wall_1, cpu_1 = medians[(name, 1)]
        for threads in thread_counts:
            wall, cpu = medians[(name, threads)]
            print(f"  {name:6} {threads} thread{'s' if threads > 1 else ' '}: {images / wall:7.1f} img/s wall, "
                  f"{images / cpu:7.1f} img/CPU-s; time / 1 thread: wall {wall / wall_1:.2f}, CPU {cpu / cpu_1:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/digits.toml")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--sample-steps", type=int, default=6)
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, 2, os.cpu_count() or 1}))
    args = parser.parse_args()
    thread_counts = sorted(set(args.threads) | {1})
    work = workloads(args.recipe, args.train_steps, args.sample_steps)
    for _, fn in work.values():
        fn()  # warm-up: allocator, first-call dispatch
    print(f"{os.cpu_count()} cores; {args.recipe}; train {args.train_steps} steps of batch {work['train'][0] // args.train_steps}, "
          f"sample one batch of {work['sample'][0]} at {args.sample_steps} Heun steps; {args.rounds} interleaved rounds, medians")
    report("CPU as found", work, measure(work, thread_counts, args.rounds), thread_counts)
    busy = [multiprocessing.get_context("spawn").Process(target=spin, daemon=True) for _ in range(os.cpu_count() or 1)]
    for process in busy:
        process.start()
    try:
        time.sleep(1.0)
        report(f"with {len(busy)} extra busy processes (one per core)", work, measure(work, thread_counts, args.rounds), thread_counts)
    finally:
        for process in busy:
            process.kill()


if __name__ == "__main__":
    main()
