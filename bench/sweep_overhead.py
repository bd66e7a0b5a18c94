"""The sweep scheduler's own overhead per trial, against the 0.2 s target.

A sweep of N trials that do nearly nothing (Euler, 2..N+1 steps, one seed on a 10-image mixture) runs through
`run_sweep`: expansion and validation, the trials queued in the registry, each started, measured and ended
through the run lifecycle (environment capture, heartbeat, metrics), and the plot. The overhead is
(wall time − the sum of the trials' own sampling time) / N, in this process (`--jobs 1`) and with 2 spawned
workers. The marginal overhead, ((wall − work) of N trials − (wall − work) of 2 trials) / (N − 2), leaves out the
one-time costs (worker start-up with its torch import, the model and the reference solution loaded per worker).
In-process, model and reference are cached by a warm-up sweep first.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

TARGET_S = 0.2


def write_sweep(folder: Path, steps: list[int]) -> Path:
    path = folder / "overhead.toml"
    path.write_text('model = "ideal:digits?std=0.2&n=10"\nseeds = "0"\n[set]\n"sampler.solver" = "euler"\n'
                    f'[grid]\n"sampler.steps" = {steps}\n')
    return path


def measure(trials: int, jobs: int, folder: Path) -> tuple[float, float, float]:
    """(wall seconds, summed trial work seconds, overhead per trial) of one fresh sweep."""
    from edmctl.registry import Registry
    from edmctl.sweep import read_sweep, run_sweep

    folder.mkdir(parents=True)
    home = folder / "runs"
    spec = read_sweep(write_sweep(folder, list(range(2, trials + 2))))
    start = time.perf_counter()
    outcome = run_sweep(spec, home=home, jobs=jobs)
    wall = time.perf_counter() - start
    assert all(o.status == "done" for o in outcome.outcomes), [o.error for o in outcome.outcomes]
    registry = Registry(home)
    metrics = registry.latest_metrics([r.id for r in registry.children(outcome.plan.sweep_id)])
    work = sum(m["seconds"].value for m in metrics.values())
    return wall, work, (wall - work) / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EDMCTL_HOME"] = str(Path(tmp) / "home")
        measure(2, 1, Path(tmp) / "warm-up")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.trials} near-empty trials")
        for jobs in (1, 2):
            small = measure(2, jobs, Path(tmp) / f"small-{jobs}")
            wall, work, overhead = measure(args.trials, jobs, Path(tmp) / f"large-{jobs}")
            marginal = ((wall - work) - (small[0] - small[1])) / (args.trials - 2)
            print(f"--jobs {jobs}: wall {wall:.2f} s, trials' own work {work:.3f} s, overhead {overhead:.3f} s/trial "
                  f"all-in; marginal {marginal:.3f} s/trial = {marginal / TARGET_S:.2f}x the {TARGET_S} s target")


if __name__ == "__main__":
    main()
