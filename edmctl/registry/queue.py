"""Runs recorded before they start (a sweep's trials): `queue_run` writes a `queued` row, `start_run` opens it.

    trial_id = queue_run(kind="sample", recipe=r.canonical(), recipe_hash=r.hash(), parent=sweep.id, extra={...})
    with start_run(trial_id) as run:   # queued, failed or interrupted -> running; then the open_run lifecycle
        run.log_metric("rms", 0.01)

`start_run` refuses a run that is running or done (`AlreadyStarted`), so two schedulers never run one trial twice.
A `UserError` inside marks the run failed (its row belongs to whoever queued it) instead of discarding it.

Several processes sharing one queue (N `edmctl sweep` of the same file at once):

    group = queue_group(parent_columns, children_columns)   # one write transaction: find or queue the parent
                                                            # (by kind + recipe_hash), queue missing children
    with start_next(group.parent_id) as run:                # claim the oldest queued child (None: none left)
        ...

Every decision that two processes could both take is one write transaction that locks what it decides on
first: on SQLite the whole database (`db.write`, `BEGIN IMMEDIATE`); on PostgreSQL the parent's recipe hash
(`db.lock_name`, an advisory lock) in `queue_group`, the row (`SELECT ... FOR UPDATE`) in `start_run`, and the
oldest queued child no other process holds (`FOR UPDATE SKIP LOCKED`) in `claim_next`. So each child runs once.
"""

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from sqlalchemy import Connection, insert, select, update

from edmctl.errors import UserError
from edmctl.registry import db, environment, writes
from edmctl.registry.run import Run, lifecycle
from edmctl.registry.schema import KINDS, RunRecord, dump_json, load_json
from edmctl.registry.store import Registry

RUNS = RunRecord.__table__
STARTABLE = ("queued", "failed", "interrupted")
REQUEUED = ("failed", "interrupted")  # children `queue_group` puts back in the queue


class AlreadyStarted(UserError):
    """`start_run` of a run that is running (another process has it) or done."""


@dataclass
class QueuedGroup:
    parent_id: int
    children: dict[str, tuple[int, str]]  # recipe hash -> (run id, status after queueing)


def queue_run(kind: str, recipe: dict[str, Any] | None = None, recipe_hash: str | None = None,
              seeds: Sequence[int] = (), argv: Sequence[str] | None = None, parent: int | None = None,
              name: str | None = None, extra: dict[str, Any] | None = None, home: Path | str | None = None) -> int:
    """Record a run as `queued` (no environment yet, no folder) and return its id."""
    if kind not in KINDS:
        raise ValueError(f"run kind must be one of {', '.join(KINDS)}, not {kind!r}")
    registry = Registry(home, create=True)
    columns = writes.request_columns(kind, "queued", recipe, recipe_hash, seeds, argv, parent, name, extra)
    return db.write(registry.engine, lambda conn: writes.insert_run(conn, columns))


def queue_group(parent: dict[str, Any], children: list[dict[str, Any]], home: Path | str | None = None) -> QueuedGroup:
    """Find the newest run of `parent["kind"]` with `parent["recipe_hash"]`, or queue it; queue each child (keyword
    arguments of `writes.request_columns`, without parent_id) whose recipe hash is not yet among its children;
    put failed and interrupted children back in the queue, and a finished parent with queued children too.
    One write transaction: processes doing this at once agree on one parent and one row per child."""
    registry = Registry(home, create=True)
    return db.write(registry.engine, lambda conn: _queue_group(conn, parent, children))


def _queue_group(conn: Connection, parent: dict[str, Any], children: list[dict[str, Any]]) -> QueuedGroup:
    db.lock_name(conn, f"queue_group {parent['kind']} {parent['recipe_hash']}")
    found = conn.execute(select(RUNS.c.id).where(RUNS.c.kind == parent["kind"], RUNS.c.recipe_hash == parent["recipe_hash"])
                         .order_by(RUNS.c.id.desc()).limit(1)).scalar_one_or_none()
    parent_id = found if found is not None else writes.insert_run(
        conn, writes.request_columns(status="queued", parent_id=None, **parent))
    known = {h: (i, s) for i, h, s in conn.execute(select(RUNS.c.id, RUNS.c.recipe_hash, RUNS.c.status)
                                                   .where(RUNS.c.parent_id == parent_id).order_by(RUNS.c.id.desc()))}
    missing = [writes.request_columns(status="queued", parent_id=parent_id, **child) for child in children
               if child["recipe_hash"] not in known]
    if missing:
        conn.execute(insert(RUNS), missing)
    conn.execute(update(RUNS).where(RUNS.c.parent_id == parent_id, RUNS.c.status.in_(REQUEUED))
                 .values(status="queued", error=None))
    rows = conn.execute(select(RUNS.c.id, RUNS.c.recipe_hash, RUNS.c.status).where(RUNS.c.parent_id == parent_id)
                        .order_by(RUNS.c.id.desc())).all()
    if any(status == "queued" for _, _, status in rows):
        conn.execute(update(RUNS).where(RUNS.c.id == parent_id, RUNS.c.status == "done").values(status="queued"))
    return QueuedGroup(parent_id, {h: (i, s) for i, h, s in rows})


def _start_columns(conn: Connection, run_id: int, env: environment.Environment) -> dict[str, Any]:
    """Running, with this process's environment; the queued extra kept (the environment's merged in)."""
    stored = conn.execute(select(RUNS.c.extra_json).where(RUNS.c.id == run_id)).scalar_one()  # row locked by the claim
    now = time.time()
    return {"status": "running", "started": now, "heartbeat": now, "ended": None, "error": None,
            "extra_json": dump_json({**load_json(stored), **env.extra}), **env.columns}


def _claim(conn: Connection, run_id: int, env: environment.Environment) -> str | None:
    """Mark the run running if it is startable; returns its status before (None: no such run)."""
    status = conn.execute(select(RUNS.c.status).where(RUNS.c.id == run_id).with_for_update()).scalar_one_or_none()
    if status in STARTABLE:
        conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(**_start_columns(conn, run_id, env)))
    return status


def claim_next(conn: Connection, parent_id: int, env: environment.Environment) -> int | None:
    """Mark the oldest queued child of `parent_id` running (inside the caller's write transaction) and return its
    id; None when no child is queued. The one place a queued child is claimed."""
    run_id = conn.execute(select(RUNS.c.id).where(RUNS.c.parent_id == parent_id, RUNS.c.status == "queued")
                          .order_by(RUNS.c.id).limit(1).with_for_update(skip_locked=True)).scalar_one_or_none()
    if run_id is not None:
        conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(**_start_columns(conn, run_id, env)))
    return run_id


@contextmanager
def start_run(run_id: int, home: Path | str | None = None) -> Iterator[Run]:
    """Open a queued (or failed, or interrupted) run: record the environment, mark it running, and end it as
    `open_run` does. Its recipe, seeds, parent and extra stay as queued."""
    registry = Registry(home, create=True)
    env = environment.capture()
    before = db.write(registry.engine, lambda conn: _claim(conn, run_id, env))
    if before is None:
        registry.get(run_id)  # the one-line "not in the registry" error
    if before not in STARTABLE:
        raise AlreadyStarted(f"run{run_id} is {before}; only a queued, failed or interrupted run can be started.")
    with _opened(registry, run_id, env) as run:
        yield run


@contextmanager
def start_next(parent_id: int, home: Path | str | None = None) -> Iterator[Run | None]:
    """Claim the oldest queued child of `parent_id` and open it as `start_run` does; None when none is queued."""
    registry = Registry(home, create=True)
    env = environment.capture()
    run_id = db.write(registry.engine, lambda conn: claim_next(conn, parent_id, env))
    if run_id is None:
        yield None
        return
    with _opened(registry, run_id, env) as run:
        yield run


@contextmanager
def _opened(registry: Registry, run_id: int, env: environment.Environment) -> Iterator[Run]:
    run = Run(registry, run_id)
    run.dir.mkdir(parents=True, exist_ok=True)
    with lifecycle(run, env.files, discard_on_user_error=False):
        yield run
