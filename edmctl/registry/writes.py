"""The write statements of a run's lifecycle, each a function of a connection inside `db.write` (one short
transaction holding the write lock)."""

import json
import time
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from edmctl.registry.schema import (RUN_COLUMNS, ArtifactRecord, LatestMetric, MetricPoint, RunRecord, dump_json,
                                    finite_or_none, load_json)

RUNS, METRICS, LATEST, ARTIFACTS = (RunRecord.__table__, MetricPoint.__table__, LatestMetric.__table__,
                                    ArtifactRecord.__table__)
JSON_COLUMNS = {"recipe": "recipe_json", "seeds": "seeds_json", "argv": "argv_json", "devices": "devices_json"}
FIXED_COLUMNS = frozenset({"id", "uid", "status", "created", "extra_json"})  # set only by the lifecycle itself


def request_columns(kind: str, status: str, recipe: dict[str, Any] | None = None, recipe_hash: str | None = None,
                    seeds=(), argv=None, parent_id: int | None = None, name: str | None = None,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The columns of a new run that say what was asked (recipe, seeds, argv, parent, name, extra) as stored."""
    return {"kind": kind, "status": status, "name": name, "parent_id": parent_id,
            "recipe_json": dump_json(recipe or {}, sort_keys=True), "recipe_hash": recipe_hash,
            "seeds_json": json.dumps([int(s) for s in seeds]), "argv_json": json.dumps(list(argv or [])),
            "created": time.time(), "extra_json": dump_json(extra or {})}


def insert_run(conn: Connection, columns: dict[str, Any]) -> int:
    return conn.execute(insert(RUNS).values(**columns)).inserted_primary_key[0]


def set_status(conn: Connection, run_id: int, status: str, error: str | None = None) -> None:
    now = time.time()
    conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(status=status, ended=now, heartbeat=now, error=error))


def beat(conn: Connection, run_id: int) -> None:
    conn.execute(update(RUNS).where(RUNS.c.id == run_id, RUNS.c.status == "running").values(heartbeat=time.time()))


def update_run(conn: Connection, run_id: int, fields: dict[str, Any]) -> None:
    """Set run columns by name (`devices`, `seeds`, ... are encoded as JSON); other names are merged into `extra`."""
    columns, extra = split_fields(fields)
    if extra:
        stored = conn.execute(select(RUNS.c.extra_json).where(RUNS.c.id == run_id).with_for_update()).scalar_one()
        columns["extra_json"] = dump_json({**load_json(stored), **extra})
    if columns:
        conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(**columns))


def split_fields(fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(column values, extra values) for `Run.update(**fields)`."""
    columns, extra = {}, {}
    for name, value in fields.items():
        if name in FIXED_COLUMNS:
            raise ValueError(f"Run.update cannot set {name!r}: it belongs to the run's lifecycle.")
        if name in JSON_COLUMNS:
            columns[JSON_COLUMNS[name]] = dump_json(value, sort_keys=name == "recipe")
        elif name == "parent":
            columns["parent_id"] = value
        elif name in RUN_COLUMNS:
            columns[name] = value
        else:
            extra[name] = value
    return columns, extra


def log_metrics(conn: Connection, run_id: int, values: dict[str, float], step: int | None) -> None:
    """Append to the history and upsert the latest-value row (latest, min, max, count) of each key."""
    now = time.time()
    rows = [{"run_id": run_id, "key": key, "step": step, "value": finite_or_none(v), "time": now}
            for key, v in values.items()]
    conn.execute(insert(METRICS), rows)
    conn.execute(_upsert_latest(conn.dialect.name), [{**row, "min": row["value"], "max": row["value"], "count": 1}
                                                     for row in rows])


@lru_cache(maxsize=None)
def _upsert_latest(dialect: str):
    """INSERT .. ON CONFLICT (run_id, key) DO UPDATE: the new latest value, the running min/max, count + 1."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
        least, greatest = func.min, func.max  # SQLite's scalar min/max of several arguments
    else:  # postgresql: db.check_supported admits no other database
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
        least, greatest = func.least, func.greatest
    stmt = dialect_insert(LATEST)
    new = stmt.excluded
    return stmt.on_conflict_do_update(index_elements=["run_id", "key"], set_={
        "value": new.value, "step": new.step, "time": new.time, "count": LATEST.c.count + 1,
        "min": least(func.coalesce(LATEST.c.min, new.value), func.coalesce(new.value, LATEST.c.min)),
        "max": greatest(func.coalesce(LATEST.c.max, new.value), func.coalesce(new.value, LATEST.c.max)),
    })


def add_artifact(conn: Connection, row: dict[str, Any]) -> None:
    """Record a file (replacing an earlier record of the same path: a checkpoint rewritten in place)."""
    conn.execute(delete(ARTIFACTS).where(ARTIFACTS.c.run_id == row["run_id"], ARTIFACTS.c.path == row["path"]))
    conn.execute(insert(ARTIFACTS).values(**row))


def delete_runs(conn: Connection, run_ids: list[int]) -> None:
    """Remove runs with their metrics and artifact records; their children lose the parent link."""
    for table in (METRICS, LATEST, ARTIFACTS):
        conn.execute(delete(table).where(table.c.run_id.in_(run_ids)))
    conn.execute(update(RUNS).where(RUNS.c.parent_id.in_(run_ids)).values(parent_id=None))
    conn.execute(delete(RUNS).where(RUNS.c.id.in_(run_ids)))
