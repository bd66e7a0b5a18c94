"""Every benchmark in bench/, each in its own subprocess with its output streamed, then one summary table: the
ratio each measures, the value this run measured, the target and pass/miss where a target exists.

Each benchmark runs with OMP_NUM_THREADS=1 (torch on one thread: the numbers do not depend on how busy the
other core is), except `fid_throughput` and `threads`, which are about threads: they set the count themselves
and inherit the environment. `--quick` runs smaller sizes (the `quick` arguments below, about 5 minutes
on 2 cores); without it each benchmark runs at its own defaults. The exit status is 1 when a benchmark failed
or printed no headline, else 0 (a missed target is a measurement, reported in the table, not an error).

    python bench/run_all.py [--quick] [--only NAME ...]
"""

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    """One line of the summary: a measured value, its target (if any) and whether it met it (None: no target)."""

    label: str
    value: str
    target: str = "-"
    ok: bool | None = None


@dataclass
class Benchmark:
    name: str
    measures: str
    full: list[str]
    quick: list[str]
    parse: Callable[[str], list[Row]]  # the headline rows from the benchmark's output
    one_thread: bool = True
    needs: str | None = None  # an environment variable without which the benchmark is skipped

    def command(self, quick: bool) -> list[str]:
        return [sys.executable, "-u", str(ROOT / "bench" / f"{self.name}.py"), *(self.quick if quick else self.full)]


def _number(pattern: str, output: str, flags: int = 0) -> list[tuple[str, ...]]:
    found = re.findall(pattern, output, flags | re.MULTILINE)
    if not found:
        raise ValueError(f"no line matching {pattern!r}")
    return [f if isinstance(f, tuple) else (f,) for f in found]


def sampler_rows(output: str) -> list[Row]:
    (ratio,), = _number(r"overhead ratio = .* = ([\d.]+)", output)
    return [Row("sampling / (NFE x forward)", ratio, "<= 1.05", float(ratio) <= 1.05)]


def solver_rows(output: str) -> list[Row]:
    summary = output.split("smallest NFE matching", 1)[-1]
    matched: dict[str, list[str]] = {}
    for solver, disc, nfe in _number(r"^\s+(\S+) (edm|exponential)\s+(NFE\s+\d+|not within \d+ steps)", summary):
        matched.setdefault(solver, []).append(f"{disc} {nfe.replace('NFE', '').strip()}")
    return [Row(f"NFE to match Heun@35: {solver}", ", ".join(found)) for solver, found in matched.items()]


def registry_rows(output: str) -> list[Row]:
    rows = [Row(f"{command} (CLI+render)", f"{float(seconds):.3f} s", "< 0.3 s", float(seconds) < 0.3)
            for command, seconds in _number(r"^(edmctl .+?)\s{2,}([\d.]+)s\s+[\d.]+s", output)]
    (ratio,), = _number(r"concurrent / single throughput ratio: ([\d.]+)", output)
    errors = sum(int(e) for (e,) in _number(r"errors (\d+)$", output))
    return [*rows, Row("concurrent / single writer throughput", f"{ratio} ({errors} errors)", "0 errors", errors == 0)]


def train_step_rows(output: str) -> list[Row]:
    (ratio, by_difference, direct), = _number(
        r"^ CPU: full / bare = ([\d.]+)\s+share of the step outside the network = ([-\d.]+)% \(full - bare\), "
        r"([\d.]+)% \(timed directly\)", output)
    return [Row("share of the step outside the network (CPU s)", f"{by_difference}% (full-bare), {direct}% (direct)"),
            Row("full / bare step (CPU s)", ratio)]


def train_loop_rows(output: str) -> list[Row]:
    (ratio, share), = _number(r"loop / bare time\s*: ([\d.]+)\s+\(loop overhead ([-\d.]+)% of a step\)", output)
    return [Row("whole loop step / bare fwd+bwd", f"{ratio} ({share}% of a step)")]


def fid_rows(output: str) -> list[Row]:
    threads = [t for (t,) in _number(r"^torch threads (\d+):", output)]
    ratios = _number(r"ratio whole pipeline / detector: median of pairs ([\d.]+), best / best ([\d.]+)", output)
    return [Row(f"whole pipeline / detector, {n} thread{'s' * (n != '1')}", f"{median} (best/best {best})", ">= 0.9",
                float(median) >= 0.9) for n, (median, best) in zip(threads, ratios)]


def sweep_rows(output: str) -> list[Row]:
    """The marginal overhead against the target; a negative one (the 2-trial sweep's start-up, subtracted, took
    longer than the whole large sweep's) says only that start-up noise swamped it: no verdict."""
    rows = []
    for jobs, all_in, marginal in _number(r"^--jobs (\d+): .*overhead ([-\d.]+) s/trial all-in; marginal "
                                          r"([-\d.]+) s/trial", output):
        noise = " start-up noise > overhead" if float(marginal) < 0 else ""
        rows.append(Row(f"scheduler overhead per trial, --jobs {jobs}", f"{float(marginal):.3f} s (all-in "
                        f"{float(all_in):.3f} s){noise}", "< 0.2 s", None if noise else float(marginal) < 0.2))
    return rows


def startup_rows(output: str) -> list[Row]:
    rows = []
    for command, median, low, high in _number(r"^((?:edmctl|python) .+?)\s{2,}median ([\d.]+) s \(spread ([\d.]+)\.\.([\d.]+)\)", output):
        target = "<= 0.15 s" if command == "edmctl --help" else "-"
        rows.append(Row(command, f"{median} s ({low}..{high})", target,
                        float(median) <= 0.15 if command == "edmctl --help" else None))
    return rows


VS_NVLABS = (  # (the output line's start, its target, whether a median meets it): edmctl ÷ NVlabs
    ("sampling .* CPU seconds", "<= 0.97", lambda median: median <= 0.97),
    ("training CPU images/s", ">= 1.03", lambda median: median >= 1.03),
    ("training peak memory growth", "<= 1", lambda median: median <= 1),
)


def vs_nvlabs_rows(output: str) -> list[Row]:
    rows = []
    for start, target, met in VS_NVLABS:
        (what, median, low, high), = _number(rf"^({start}) .*?: median ([\d.]+) \(spread ([\d.]+)\.\.([\d.]+)", output)
        rows.append(Row(f"edmctl / NVlabs {what}", f"{median} ({low}..{high})", target, met(float(median))))
    for what, ratio in _number(r"^(training activations kept for backward) edmctl / NVlabs: ([\d.]+)", output):
        rows.append(Row(f"edmctl / NVlabs {what}", ratio, "<= 1", float(ratio) <= 1))
    return rows


def sweep_show_rows(output: str) -> list[Row]:
    (trials, query, whole), = _number(r"sweep show, (\d+) trials: query ([\d.]+) s, command with rendering ([\d.]+) s", output)
    return [Row(f"edmctl sweep show, {trials} trials (query {query} s)", f"{float(whole):.3f} s", "< 1 s", float(whole) < 1.0)]


def threads_rows(output: str) -> list[Row]:
    """Time on N threads / time on 1, wall (CPU), for training and sampling, on the CPU as found and loaded."""
    rows = []
    for section, text in zip(("as found", "+1 busy process/core"), output.split("\nwith ", 1)):
        for name, threads, wall, cpu in _number(r"^\s+(train|sample)\s+(\d+) threads: .* wall ([\d.]+), CPU ([\d.]+)$", text):
            rows.append(Row(f"{name} time, {threads} threads / 1 ({section})", f"wall {wall}, CPU {cpu}"))
    return rows


BENCHMARKS = [
    Benchmark("sampler_overhead", "sampling wall time / (NFE x one denoiser forward)",
              ["--threads", "1"], ["--threads", "1", "--repeats", "2", "--batch", "32"], sampler_rows),
    Benchmark("solver_accuracy", "smallest NFE at which each solver matches Heun/edm at 35 NFE",
              ["--threads", "1"], ["--threads", "1", "--seeds", "32"], solver_rows),
    Benchmark("registry", "runs/show/compare seconds on a big registry; concurrent writers",
              [], ["--runs", "1000", "--writers", "4"], registry_rows),
    Benchmark("train_step", "share of a loss step outside the network",
              ["--threads", "1"], ["--threads", "1", "--repeats", "3", "--batch", "16"], train_step_rows),
    Benchmark("train_throughput", "whole training loop step / bare forward+backward",
              [], ["--steps", "2", "--rounds", "2"], train_loop_rows),
    Benchmark("fid_throughput", "FID pipeline (PNG folder -> stats) / detector alone",
              [], ["--num", "256", "--repeats", "3"], fid_rows, one_thread=False),
    Benchmark("threads", "time of training / sampling the demo's network on N threads / on 1",
              [], ["--rounds", "1", "--train-steps", "2", "--sample-steps", "4"], threads_rows, one_thread=False),
    Benchmark("sweep_overhead", "sweep scheduler seconds per trial beyond the trials' own work",
              [], ["--trials", "8"], sweep_rows),
    Benchmark("sweep_show", "edmctl sweep show seconds on a big sweep (query + rendering)",
              [], ["--trials", "2000"], sweep_show_rows),
    Benchmark("startup", "seconds to --help and to the first denoiser call of `edmctl sample`",
              [], ["--repeats", "3"], startup_rows),
    Benchmark("vs_nvlabs", "edmctl / NVlabs/edm: sampling, training images/s, training memory (needs EDM_SRC)",
              [], ["--repeats", "3", "--batch", "32"], vs_nvlabs_rows, needs="EDM_SRC"),
]


def run(bench: Benchmark, quick: bool) -> tuple[list[Row], float, str | None]:
    """Run one benchmark, echoing its output line by line; (headline rows, seconds, error or None). One that
    needs an unset environment variable is skipped: a row saying so, not an error."""
    if bench.needs and not os.environ.get(bench.needs):
        print(f"\n=== {bench.name}: skipped, {bench.needs} is not set", flush=True)
        return [Row(f"skipped: set {bench.needs} to run it", "-")], 0.0, None
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if bench.one_thread:
        env["OMP_NUM_THREADS"] = "1"
    command = bench.command(quick)
    threads = "OMP_NUM_THREADS=1" if bench.one_thread else f"threads inherited ({os.cpu_count()} cores)"
    print(f"\n=== {bench.name} ({threads}): {' '.join(command[2:])}", flush=True)
    start, lines = time.perf_counter(), []
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as process:
        for line in process.stdout:
            print("  " + line, end="", flush=True)
            lines.append(line)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        return [], seconds, f"exited {process.returncode}"
    try:
        return bench.parse("".join(lines)), seconds, None
    except ValueError as e:
        return [], seconds, f"headline not found: {e}"


def summary(results: list[tuple[Benchmark, list[Row], float, str | None]], quick: bool, loads: tuple) -> str:
    """The summary table as fixed-width text, with the machine, the date and the load averages."""
    header = ("benchmark", "ratio measured", "value", "target", "result")
    table = []
    for bench, rows, seconds, error in results:
        if error:
            table.append((bench.name, bench.measures, "-", "-", f"ERROR: {error}"))
        for row in rows:
            verdict = "-" if row.ok is None else ("pass" if row.ok else "MISS")
            table.append((bench.name, row.label, row.value, row.target, verdict))
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    lines = [f"{datetime.now():%Y-%m-%d %H:%M}, {platform.machine()} {os.cpu_count()} cores, {platform.system()}, "
             f"Python {platform.python_version()}, {'--quick' if quick else 'full'} run; load average "
             f"{loads[0]:.1f} at start, {loads[1]:.1f} at end; "
             f"{', '.join(f'{b.name} {s:.0f} s' for b, _, s, _ in results)}",
             "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: about 5 minutes on 2 cores")
    parser.add_argument("--only", nargs="+", choices=[b.name for b in BENCHMARKS], help="run only these benchmarks")
    args = parser.parse_args()
    chosen = [b for b in BENCHMARKS if args.only is None or b.name in args.only]
    load_before = os.getloadavg()[0]
    results = [(bench, *run(bench, args.quick)) for bench in chosen]
    print("\n=== summary\n" + summary(results, args.quick, (load_before, os.getloadavg()[0])))
    return 1 if any(error for *_, error in results) else 0


if __name__ == "__main__":
    sys.exit(main())
