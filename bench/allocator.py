"""glibc malloc tunables for edmctl's long-running work: the same workload in fresh processes with and without
`edmctl.allocator.TUNABLES` in `GLIBC_TUNABLES`, interleaved.

glibc serves every allocation above `mmap_threshold` (adaptive, at most 32 MiB) with a fresh `mmap`, and gives
freed heap memory back to the system above `trim_threshold`: a network whose activations are a few MiB each
then faults in zeroed pages on every forward. Raising both keeps freed blocks in the heap for reuse. The
tunables must be in the environment before a process starts, so each measurement is a child process:

- `sample`: `edmctl.sampling.sample` with Heun at 18 steps on a small DDPM++ (the work of `edmctl sample`,
  `fid` and sweep workers: 99 % inside the network);
- `train`: `Trainer.step` on `recipes/digits.toml` (the work of `edmctl train` and its torchrun children).

Each child reports its wall and CPU seconds and minor page faults for the timed part (after a warm-up); the
ratios tuned ÷ default are per interleaved pair, printed as median and spread. Run with OMP_NUM_THREADS=1.

    python bench/allocator.py [--pairs 5] [--batch 64]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from edmctl.allocator import TUNABLES

BENCH = Path(__file__).resolve().parent


def child(workload: str, batch: int) -> dict:
    """Run one workload in this process; (wall s, CPU s, minor faults) of its timed part."""
    import torch

    sys.path.insert(0, str(BENCH))
    if workload == "sample":
        from sampler_overhead import small_denoiser

        from edmctl.recipe import load_recipe
        from edmctl.sampling import sample

        model, sampler = small_denoiser(16), load_recipe(None).sampler
        seeds = list(range(batch))
        sample(model, sampler, seeds, batch=batch)  # warm-up

        def work():
            sample(model, sampler, seeds, batch=batch)
    else:
        from edmctl.recipe import load_recipe
        from edmctl.train.distributed import Dist
        from edmctl.train.loop import Trainer
        from edmctl.train.session import open_training_data

        recipe = load_recipe(str(BENCH.parent / "recipes" / "digits.toml"), overrides=[f"training.batch={batch}"])
        dataset, _ = open_training_data(recipe)
        trainer = Trainer(recipe, dataset, Dist(device=torch.device("cpu")))
        trainer.step()  # warm-up

        def work():
            for _ in range(10):
                trainer.step()

    faults, wall, cpu = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter(), time.process_time()
    work()
    return dict(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu,
                faults=resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)


def measure(workload: str, batch: int, tuned: bool) -> dict:
    env = dict(os.environ)
    env.pop("GLIBC_TUNABLES", None)
    if tuned:
        env["GLIBC_TUNABLES"] = TUNABLES
    command = [sys.executable, str(Path(__file__).resolve()), "--child", workload, "--batch", str(batch)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(workload: str, pairs: list[tuple[dict, dict]]) -> None:
    for key, what in (("wall", "wall s"), ("cpu", "CPU s"), ("faults", "minor page faults")):
        ratios = [tuned[key] / default[key] for default, tuned in pairs if default[key]]
        default = statistics.median(d[key] for d, _ in pairs)
        tuned = statistics.median(t[key] for _, t in pairs)
        print(f"{workload} {what} tuned / default: median {statistics.median(ratios):.3f} (spread "
              f"{min(ratios):.3f}..{max(ratios):.3f}, {len(ratios)} pairs)   [default {default:.4g}, tuned {tuned:.4g}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--child", choices=["sample", "train"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.batch)))
        return
    print(f"GLIBC_TUNABLES={TUNABLES}; batch {args.batch}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; "
          f"{args.pairs} interleaved pairs of fresh processes; load average {os.getloadavg()[0]:.1f}")
    for workload in ("sample", "train"):
        report(workload, [(measure(workload, args.batch, False), measure(workload, args.batch, True))
                          for _ in range(args.pairs)])
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
