"""Runs recorded before they start (a sweep's trials): `queue_run` writes a `queued` row, `start_run` opens it.

    trial_id = queue_run(kind="sample", recipe=r.canonical(), recipe_hash=r.hash(), parent=sweep.id, extra={...})
    with start_run(trial_id) as run:   # queued, failed or interrupted -> running; then the open_run lifecycle
        run.log_metric("rms", 0.01)

`start_run` refuses a run that is running or done (`UserError`), so two schedulers never run one trial twice.
A `UserError` inside marks the run failed (its row belongs to whoever queued it) instead of discarding it.
"""

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from sqlalchemy import Connection, select, update

from edmctl.errors import UserError
from edmctl.registry import db, environment, writes
from edmctl.registry.run import Run, lifecycle
from edmctl.registry.schema import KINDS, RunRecord, dump_json
from edmctl.registry.store import Registry

RUNS = RunRecord.__table__
STARTABLE = ("queued", "failed", "interrupted")


def queue_run(kind: str, recipe: dict[str, Any] | None = None, recipe_hash: str | None = None,
              seeds: Sequence[int] = (), argv: Sequence[str] | None = None, parent: int | None = None,
              name: str | None = None, extra: dict[str, Any] | None = None, home: Path | str | None = None) -> int:
    """Record a run as `queued` (no environment yet, no folder) and return its id."""
    if kind not in KINDS:
        raise ValueError(f"run kind must be one of {', '.join(KINDS)}, not {kind!r}")
    registry = Registry(home, create=True)
    columns = writes.request_columns(kind, "queued", recipe, recipe_hash, seeds, argv, parent, name, extra)
    return db.write(registry.engine, lambda conn: writes.insert_run(conn, columns))


def _claim(conn: Connection, run_id: int, columns: dict[str, Any]) -> str | None:
    """Mark the run running if it is startable; returns its status before (None: no such run)."""
    status = conn.execute(select(RUNS.c.status).where(RUNS.c.id == run_id)).scalar_one_or_none()
    if status in STARTABLE:
        conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(**columns))
    return status


@contextmanager
def start_run(run_id: int, home: Path | str | None = None) -> Iterator[Run]:
    """Open a queued (or failed, or interrupted) run: record the environment, mark it running, and end it as
    `open_run` does. Its recipe, seeds, parent and extra stay as queued."""
    registry = Registry(home, create=True)
    env = environment.capture()
    now = time.time()
    extra = {**registry.get(run_id).extra, **env.extra}
    columns = {"status": "running", "started": now, "heartbeat": now, "ended": None, "error": None,
               "extra_json": dump_json(extra), **env.columns}
    before = db.write(registry.engine, lambda conn: _claim(conn, run_id, columns))
    if before not in STARTABLE:
        raise UserError(f"run{run_id} is {before}; only a queued, failed or interrupted run can be started.")
    run = Run(registry, run_id)
    run.dir.mkdir(parents=True, exist_ok=True)
    with lifecycle(run, env.files, discard_on_user_error=False):
        yield run
