"""`edmctl sweep show` on a big sweep: 10,000 trials (3 metrics each) recorded under one sweep run.

Prints the time of the library query (`sweep_results`) and of the whole command in-process (query + rendering
of every row), median of 3 after a warm-up. The rows are written straight into the tables, as `edmctl sweep`
records them (`extra.axes`, metrics rms / nfe / seconds), so the script also runs against older versions.
"""

import argparse
import contextlib
import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def populate(home: Path, trials: int) -> int:
    """A done sweep run (id 1) with `trials` done children, each with three latest metrics; returns the sweep id."""
    from edmctl.registry import Registry, db
    from edmctl.registry.schema import LatestMetric, RunRecord

    reg = Registry(home, create=True)
    now = time.time()
    common = {"kind": "sample", "status": "done", "created": now, "started": now, "ended": now, "heartbeat": now,
              "seeds_json": "[0]", "argv_json": "[]", "devices_json": "[]", "recipe_json": '{"sampler": {"steps": 18}}'}
    sweep = {**common, "id": 1, "parent_id": None, "kind": "sweep", "name": "big", "extra_json": json.dumps(
        {"settings": {"metric": "rms", "direction": "min"}, "axes": ["sampler.steps", "sampler.s_churn"]})}
    runs = [sweep] + [{**common, "id": i + 2, "parent_id": 1, "name": f"steps={i % 100} s_churn={i // 100}",
                       "extra_json": json.dumps({"axes": {"sampler.steps": i % 100, "sampler.s_churn": i // 100}})}
                      for i in range(trials)]
    latest = [{"run_id": i + 2, "key": key, "value": value, "step": None, "time": now, "min": value, "max": value,
               "count": 1} for i in range(trials) for key, value in (("rms", 1.0 / (i + 1)), ("nfe", 35.0), ("seconds", 0.1))]

    def insert(conn):
        conn.execute(RunRecord.__table__.insert(), runs)
        conn.execute(LatestMetric.__table__.insert(), latest)

    db.write(reg.engine, insert)
    return 1


def median_s(fn, repeat: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    args = parser.parse_args()
    from edmctl.cli.main import main as cli
    from edmctl.sweep import sweep_results

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "runs"
        os.environ["EDMCTL_HOME"] = str(home)
        os.environ.pop("EDMCTL_DB_URL", None)
        sweep_id = populate(home, args.trials)

        def command() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                assert cli(["sweep", "show", str(sweep_id)]) == 0

        query, whole = median_s(lambda: sweep_results(sweep_id, home)), median_s(command)
        print(f"sweep show, {args.trials} trials: query {query:.3f} s, command with rendering {whole:.3f} s")


if __name__ == "__main__":
    main()
