"""Registry at scale: 10,000 runs x 20 metrics (x 5 logged steps each = 1,000,000 history rows).

Prints, in-process on one database: the time of `edmctl runs --limit 50`, `runs --where` on recipe fields
(the recipes hold the default `s_tmax = inf`, as real ones do), `edmctl show RUN` and
`edmctl compare RUN RUN` (CLI in-process with rendering, and the library query alone), each against the 0.3 s
target; and the throughput of 8 concurrent writer processes against 1 writer (runs/s and metric rows/s through
`open_run`, `log_metrics` and WAL + BEGIN IMMEDIATE + retries), with the number of errors (must be 0).
The writers skip the torch import of the environment capture (each would otherwise spend seconds importing
torch), so the numbers are the registry's own cost.
"""

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from edmctl.registry import Registry, db, environment, open_run
from edmctl.registry.schema import ArtifactRecord, LatestMetric, MetricPoint, RunRecord, dump_json

TARGET_S = 0.3
SOLVERS, PRECONDS = ("euler", "heun", "dpm2"), ("vp", "ve", "edm")


def synthetic_recipe(rng: random.Random) -> dict:
    """A recipe like the ones edmctl records, with the default `s_tmax = inf` (stored as standard JSON)."""
    return {
        "sampler": {"solver": rng.choice(SOLVERS), "steps": rng.choice([18, 32, 64]), "rho": 7.0, "s_churn": 0.0,
                    "s_tmin": 0.05, "s_tmax": float("inf"), "s_noise": 1.003, "sigma_min": 0.002, "sigma_max": 80.0},
        "precond": {"kind": rng.choice(PRECONDS), "sigma_data": 0.5},
        "network": {"arch": "ddpmpp", "model_channels": 128, "channel_mult": [2, 2, 2], "dropout": 0.13},
        "training": {"lr": 1e-3, "batch": 512, "ema_halflife_kimg": 500, "p_mean": -1.2, "p_std": 1.2},
        "data": {"source": "cifar10-32x32.zip", "resolution": 32, "xflip": True},
    }


def populate(home: Path, runs: int, keys: int, steps: int) -> float:
    """Fill the tables directly (bulk inserts in a few transactions); returns the seconds it took."""
    start = time.perf_counter()
    reg = Registry(home, create=True)
    rng = random.Random(0)
    now = time.time()
    chunk = 1000
    for first in range(0, runs, chunk):
        run_rows, history, latest, artifacts = [], [], [], []
        for i in range(first + 1, min(first + chunk, runs) + 1):
            created = now - (runs - i) * 60
            run_rows.append({"id": i, "kind": rng.choice(["train", "sample", "fid"]), "status": "done",
                             "recipe_json": dump_json(synthetic_recipe(rng), sort_keys=True), "recipe_hash": f"{i:064x}",
                             "seeds_json": json.dumps(list(range(64))), "argv_json": '["edmctl", "sample"]',
                             "created": created, "started": created, "ended": created + 30, "heartbeat": created + 30,
                             "host": "bench", "pid": i, "git_commit": "0" * 40, "git_dirty": False,
                             "python_version": "3.11", "torch_version": "2.x", "devices_json": '["cpu"]',
                             "world_size": 1, "packages_hash": "f" * 64, "extra_json": "{}"})
            for k in range(keys):
                values = [rng.random() * 10 for _ in range(steps)]
                history += [{"run_id": i, "key": f"metric{k:02d}", "step": s, "value": v, "time": created + s}
                            for s, v in enumerate(values)]
                latest.append({"run_id": i, "key": f"metric{k:02d}", "value": values[-1], "step": steps - 1,
                               "time": created + steps, "min": min(values), "max": max(values), "count": steps})
            artifacts.append({"run_id": i, "kind": "samples", "path": f"run{i}/samples", "sha256": "a" * 64,
                              "bytes": 1 << 20, "step": None, "time": created})

        def insert(conn, run_rows=run_rows, history=history, latest=latest, artifacts=artifacts):
            for table, rows in ((RunRecord, run_rows), (MetricPoint, history), (LatestMetric, latest),
                                (ArtifactRecord, artifacts)):
                conn.execute(table.__table__.insert(), rows)

        db.write(reg.engine, insert)
    return time.perf_counter() - start


def timed(fn, repeat: int = 5) -> float:
    """Median seconds of `fn()` over `repeat` calls (after one warm-up)."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def cli(*argv: str) -> None:
    from edmctl.cli.main import main

    with contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    assert code == 0, f"edmctl {' '.join(argv)} exited {code}"


def _no_torch() -> dict:
    return {"torch_version": "bench", "devices_json": '["cpu"]', "world_size": 1}


def _writer(home: str, runs: int, keys: int, steps: int, errors) -> None:
    environment.torch_info = _no_torch
    try:
        for _ in range(runs):
            with open_run(kind="train", home=home) as run:
                for step in range(steps):
                    run.log_metrics({f"m{k}": float(step) for k in range(keys)}, step=step)
    except Exception as e:
        errors.put(f"{type(e).__name__}: {e}")


def writers(home: Path, processes: int, runs_each: int, keys: int, steps: int) -> tuple[float, int]:
    """(seconds, errors) for `processes` writers each opening `runs_each` runs and logging `steps` x `keys` values."""
    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    Registry(home, create=True)
    procs = [ctx.Process(target=_writer, args=(str(home), runs_each, keys, steps, errors)) for _ in range(processes)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - start
    n_errors = sum(p.exitcode != 0 for p in procs)
    while not errors.empty():
        print("  writer error:", errors.get())
        n_errors += 1
    rows = len(Registry(home).list(limit=None))
    assert rows == processes * runs_each or n_errors, f"{rows} runs recorded, expected {processes * runs_each}"
    return seconds, n_errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--steps", type=int, default=5, help="logged values per metric (history rows)")
    parser.add_argument("--writers", type=int, default=8)
    args = parser.parse_args()
    environment.torch_info = _no_torch
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "big"
        os.environ["EDMCTL_HOME"] = str(home)
        os.environ.pop("EDMCTL_DB_URL", None)
        seconds = populate(home, args.runs, args.metrics, args.steps)
        print(f"populated {args.runs} runs x {args.metrics} metrics x {args.steps} steps in {seconds:.1f} s "
              f"({(home / 'registry.db').stat().st_size / 2**20:.0f} MiB)")
        reg = Registry(home)
        a, b = args.runs // 2, args.runs // 2 + 1
        from edmctl.registry import compare

        rows = [
            ("edmctl runs --limit 50", lambda: cli("runs", "--limit", "50"),
             lambda: reg.latest_values([r.id for r in reg.list(limit=50)])),
            ("edmctl runs --where sampler.steps=18", lambda: cli("runs", "--where", "sampler.steps=18"),
             lambda: reg.list(where={"sampler.steps": "18"})),
            ("edmctl runs --where s_tmax=inf", lambda: cli("runs", "--where", "sampler.s_tmax=inf"),
             lambda: reg.list(where={"sampler.s_tmax": "inf"})),
            (f"edmctl show run{a}", lambda: cli("show", f"run{a}"),
             lambda: (reg.get(a), reg.metrics(a), reg.artifacts(a))),
            (f"edmctl compare run{a} run{b}", lambda: cli("compare", f"run{a}", f"run{b}"),
             lambda: compare(reg, [a, b])),
        ]
        print(f"{'command (in-process)':34s} {'CLI+render':>11s} {'query':>9s}  target {TARGET_S} s")
        for name, with_cli, query in rows:
            t_cli, t_query = timed(with_cli), timed(query)
            print(f"{name:34s} {t_cli:10.3f}s {t_query:8.4f}s  {'ok' if t_cli < TARGET_S else 'SLOW'} "
                  f"({t_cli / TARGET_S:.2f} of target)")

        runs_each, keys, steps = 10, 20, 5
        one_s, one_err = writers(Path(tmp) / "w1", 1, runs_each * args.writers, keys, steps)
        many_s, many_err = writers(Path(tmp) / "w8", args.writers, runs_each, keys, steps)
        total_runs = runs_each * args.writers
        print(f"writers: {total_runs} runs, each {steps} log_metrics calls of {keys} values")
        for label, secs, errs in ((" 1 process ", one_s, one_err), (f"{args.writers:2d} processes", many_s, many_err)):
            print(f"  {label}: {total_runs / secs:7.1f} runs/s  {total_runs * keys * steps / secs:8.0f} metric rows/s  "
                  f"{secs:5.2f} s  errors {errs}")
        print(f"  concurrent / single throughput ratio: {one_s / many_s:.2f} (on {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
