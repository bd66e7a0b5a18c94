"""Schema creation and upgrades: once, under a lock, with the version stored in `registry_meta`.

The lock (`SCHEMA_LOCKS`): a file lock beside an SQLite database; a PostgreSQL session advisory lock on a server,
so processes on different nodes starting at once create or upgrade the team registry once.

A database newer than this code is refused (an older edmctl must not write rows it does not understand);
an older one is copied to `registry.db.v{N}.bak` and then upgraded step by step through `UPGRADES`.

History:
  v1: runs (without name and extra_json), metrics, artifacts, registry_meta.
  v2: runs.name, runs.extra_json, and latest_metrics (backfilled from the history) so that listing and
      compare read one row per (run, key) instead of scanning every logged value.
  v3: runs.process_ns (the boot id and PID namespace of runs.pid), and recipe_json / extra_json rewritten as
      standard JSON (non-finite floats as "inf"/"-inf"/"nan"), which SQLite's json_extract can query.
  v4: runs.uid, a unique id that travels with a run copied to another registry (`edmctl runs copy`), so copying
      it again finds it there instead of duplicating it. Runs recorded before get a new random uid.
"""

import fcntl
import sqlite3
import time
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import Connection, Engine, inspect, text

from edmctl.errors import UserError
from edmctl.registry import db
from edmctl.registry.schema import SCHEMA_VERSION, TABLES, LatestMetric, Meta, dump_json, load_json, new_uid

_ready: set[tuple[str, int]] = set()


def _upgrade_v1_to_v2(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE runs ADD COLUMN name VARCHAR"))
    conn.execute(text("ALTER TABLE runs ADD COLUMN extra_json TEXT NOT NULL DEFAULT '{}'"))
    LatestMetric.__table__.create(conn)
    conn.execute(text(
        "INSERT INTO latest_metrics (run_id, key, value, step, time, min, max, count) "
        "SELECT m.run_id, m.key, m.value, m.step, m.time, agg.lo, agg.hi, agg.n FROM metrics m "
        "JOIN (SELECT run_id, key, MAX(id) AS last_id, MIN(value) AS lo, MAX(value) AS hi, COUNT(*) AS n "
        "      FROM metrics GROUP BY run_id, key) agg ON m.id = agg.last_id"
    ))


def _upgrade_v2_to_v3(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE runs ADD COLUMN process_ns VARCHAR"))
    rows = conn.execute(text("SELECT id, recipe_json, extra_json FROM runs")).all()
    for run_id, recipe, extra in rows:
        new_recipe, new_extra = (dump_json(load_json(recipe), sort_keys=True), dump_json(load_json(extra)))
        if (new_recipe, new_extra) != (recipe, extra):
            conn.execute(text("UPDATE runs SET recipe_json = :r, extra_json = :e WHERE id = :id"),
                         {"r": new_recipe, "e": new_extra, "id": run_id})


def _upgrade_v3_to_v4(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE runs ADD COLUMN uid VARCHAR"))
    ids = conn.execute(text("SELECT id FROM runs")).scalars().all()
    if ids:
        conn.execute(text("UPDATE runs SET uid = :uid WHERE id = :id"), [{"uid": new_uid(), "id": i} for i in ids])
    conn.execute(text("CREATE UNIQUE INDEX ix_runs_uid ON runs (uid)"))


UPGRADES: dict[int, Callable[[Connection], None]] = {1: _upgrade_v1_to_v2, 2: _upgrade_v2_to_v3,
                                                     3: _upgrade_v3_to_v4}  # from version N to N + 1


def ensure_schema(engine: Engine, url: str, lock_dir: Path) -> None:
    """Make the database at `url` current: create it, upgrade it (after a backup) or refuse it if newer."""
    key = (url, id(engine))
    if key in _ready:
        return
    if stored_version(engine) != SCHEMA_VERSION:
        with SCHEMA_LOCKS[engine.dialect.name](engine, lock_dir):
            _create_or_upgrade(engine, url)
    check_tables(engine, url)
    _ready.add(key)


def check_tables(engine: Engine, url: str) -> None:
    """Every table of the schema is there: a database missing one (dropped by hand) would fail a run half-way."""
    with db.read(engine) as conn:
        missing = [table.name for table in TABLES if not inspect(conn).has_table(table.name)]
    if missing:
        raise db.RegistryUnavailable(f"The registry database {db.shown(url)} lacks the table(s) {', '.join(missing)}: "
                                     f"it is damaged{db.DAMAGED_ADVICE}")


def stored_version(engine: Engine) -> int | None:
    """The schema version recorded in the database; None for an empty database."""
    with db.read(engine) as conn:
        if not inspect(conn).has_table("registry_meta"):
            return None
        value = conn.execute(text("SELECT value FROM registry_meta WHERE key = 'schema_version'")).scalar()
    if value is not None and not str(value).isdigit():
        raise db.RegistryUnavailable(f"The registry database {db.shown(str(engine.url))} records schema version "
                                     f"{value!r}, not a number: it is damaged{db.DAMAGED_ADVICE}")
    return None if value is None else int(value)


def _create_or_upgrade(engine: Engine, url: str) -> None:
    version = stored_version(engine)  # again: another process may have done it while we waited for the lock
    if version is None:
        db.write(engine, _create)
    elif version > SCHEMA_VERSION:
        raise UserError(
            f"The registry database {db.shown(url)} has schema version {version}, newer than this edmctl understands "
            f"({SCHEMA_VERSION}); upgrade edmctl, or point EDMCTL_HOME / EDMCTL_DB_URL elsewhere."
        )
    elif version < SCHEMA_VERSION:
        _backup(url, version)
        for step in range(version, SCHEMA_VERSION):
            db.write(engine, lambda conn, step=step: _upgrade_one(conn, step))


def _upgrade_one(conn: Connection, version: int) -> None:
    UPGRADES[version](conn)
    _set_version(conn, version + 1)


def _create(conn: Connection) -> None:
    Meta.metadata.create_all(conn, tables=TABLES)
    _set_version(conn, SCHEMA_VERSION)


def _set_version(conn: Connection, version: int) -> None:
    conn.execute(text("DELETE FROM registry_meta WHERE key = 'schema_version'"))
    conn.execute(text("INSERT INTO registry_meta (key, value) VALUES ('schema_version', :v)"), {"v": str(version)})


def _backup(url: str, version: int) -> Path | None:
    """Copy a SQLite database (WAL included, through SQLite's backup API) before upgrading it."""
    source = db.sqlite_path(url)
    if source is None:
        return None  # a server database: its operator backs it up
    target = source.with_name(f"{source.name}.v{version}.bak")
    if target.exists():
        target = source.with_name(f"{source.name}.v{version}.{int(time.time())}.bak")
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return target


@contextmanager
def _file_lock(_engine: Engine, lock_dir: Path) -> Iterator[None]:
    """An exclusive lock on `registry.db.lock` in the home (beside the SQLite database)."""
    path = lock_dir / "registry.db.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


SCHEMA_LOCK_KEY = 0x65646D63746C  # "edmctl": the advisory lock every edmctl process takes to change the schema


@contextmanager
def _advisory_lock(engine: Engine, _lock_dir: Path) -> Iterator[None]:
    """A PostgreSQL session advisory lock, held on one connection until released (or the session ends)."""
    with db.translated(str(engine.url)), engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
            conn.commit()


SCHEMA_LOCKS: dict[str, Callable[[Engine, Path], AbstractContextManager[None]]] = {
    "sqlite": _file_lock, "postgresql": _advisory_lock}
