"""Start-up: seconds from process start to `edmctl --help`'s exit, to `edmctl sample --help`'s exit, and to the
first denoiser call of `edmctl sample --model ideal:digits`, each in fresh processes, with the interpreter and
`import typer` alone as the floor they stand on, and an import-time breakdown (`python -X importtime`).

Each command runs `--repeats` times, interleaved; the median and the spread (min..max) are printed. The first
denoiser call is caught by an import hook that wraps `GaussianMixtureDenoiser.__call__` when
`edmctl.models.mixture` is first imported (nothing is imported earlier than edmctl itself would) and ends the
process there; the registry and the digits cache live in a temporary folder, the cache filled by one run first.
The breakdown sums each top-level package's own import time (the `self` column of -X importtime, one run).
Bytecode is written and used (PYTHONDONTWRITEBYTECODE is dropped for the children) as in an installed copy:
without it every run compiles edmctl's modules from source again.

    python bench/startup.py [--repeats 7]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

FIRST_CALL = """
import importlib.machinery, os, sys, time

class FirstCall:
    def find_spec(self, name, path, target=None):
        if name != "edmctl.models.mixture":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            def first_call(self, *args, **kwargs):
                print(f"first denoiser call at {time.perf_counter()!r}", flush=True)
                os._exit(0)
            module.GaussianMixtureDenoiser.__call__ = first_call

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, FirstCall())
sys.argv = ["edmctl", *sys.argv[1:]]
from edmctl.cli.main import entry
entry()
"""

SAMPLE = ["sample", "--model", "ideal:digits", "--seeds", "0-63"]
COMMANDS = {  # name -> the interpreter's arguments
    "python -c pass (interpreter)": ["-c", "pass"],
    "python -c 'import typer'": ["-c", "import typer"],
    "edmctl --help": ["-m", "edmctl", "--help"],
    "edmctl sample --help": ["-m", "edmctl", "sample", "--help"],
    "edmctl sample --model ideal:digits: first denoiser call": ["-c", FIRST_CALL, *SAMPLE],
}
TARGETS = {"edmctl --help": 0.15}


def seconds(arguments: list[str], env: dict) -> float:
    """Seconds from just before the process starts to its exit, or to its first denoiser call if it prints one
    (time.perf_counter is CLOCK_MONOTONIC, the same clock in both processes)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *arguments], env=env, capture_output=True, text=True)
    end = time.perf_counter()
    if result.returncode != 0:
        sys.exit(f"{arguments} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    called = re.search(r"first denoiser call at ([\d.]+)", result.stdout)
    return (float(called.group(1)) if called else end) - start


def import_breakdown(arguments: list[str], env: dict) -> list[tuple[str, float]]:
    """(top-level package, its modules' own import seconds summed) from one `-X importtime` run, largest first."""
    result = subprocess.run([sys.executable, "-X", "importtime", *arguments], env=env, capture_output=True, text=True)
    own = defaultdict(float)
    for self_us, name in re.findall(r"^import time:\s+(\d+) \|\s+\d+ \| *(\S+)$", result.stderr, re.MULTILINE):
        own[name.split(".")[0]] += int(self_us) / 1e6
    return sorted(own.items(), key=lambda item: -item[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, EDMCTL_HOME=os.path.join(folder, "runs"), EDMCTL_CACHE=os.path.join(folder, "cache"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for arguments in COMMANDS.values():  # writes the bytecode and fills the digits cache
            seconds(arguments, env)
        print(f"{args.repeats} interleaved runs of each, fresh processes; load average {os.getloadavg()[0]:.1f}")
        times = defaultdict(list)
        for _ in range(args.repeats):
            for name, arguments in COMMANDS.items():
                times[name].append(seconds(arguments, env))
        for name, values in times.items():
            target = f"   (target <= {TARGETS[name]} s)" if name in TARGETS else ""
            print(f"{name:56s} median {statistics.median(values):.3f} s (spread {min(values):.3f}..{max(values):.3f})"
                  f"{target}")
        for name in ("edmctl --help", "edmctl sample --help", "edmctl sample --model ideal:digits: first denoiser call"):
            parts = import_breakdown(COMMANDS[name], env)
            total = sum(s for _, s in parts)
            shown = ", ".join(f"{package} {s:.3f}" for package, s in parts[:8])
            print(f"imports of {name}: {total:.3f} s in all; largest own shares (s): {shown}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
