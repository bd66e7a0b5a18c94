"""A database from an older schema version is upgraded (after a backup) keeping its data, once, under a lock, on
SQLite and on PostgreSQL; a newer one is refused."""

import multiprocessing
import sqlite3

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from edmctl.errors import UserError
from edmctl.registry import Registry, migrations, open_run
from edmctl.registry.schema import SCHEMA_VERSION

# The tables as edmctl's schema version 1 created them (before runs.name, runs.extra_json and latest_metrics).
V1_SQL = """
CREATE TABLE registry_meta (key VARCHAR NOT NULL PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind VARCHAR NOT NULL, status VARCHAR NOT NULL, parent_id INTEGER,
    recipe_json TEXT NOT NULL, recipe_hash VARCHAR, seeds_json TEXT NOT NULL, argv_json TEXT NOT NULL,
    created FLOAT NOT NULL, started FLOAT, ended FLOAT, heartbeat FLOAT, host VARCHAR, pid INTEGER, cwd VARCHAR,
    git_commit VARCHAR, git_dirty BOOLEAN, python_version VARCHAR, torch_version VARCHAR, cuda_version VARCHAR,
    devices_json TEXT NOT NULL, world_size INTEGER, packages_hash VARCHAR, error TEXT);
CREATE TABLE metrics (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, key VARCHAR NOT NULL, step INTEGER,
    value FLOAT, time FLOAT NOT NULL);
CREATE TABLE artifacts (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, kind VARCHAR NOT NULL,
    path VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, bytes INTEGER NOT NULL, step INTEGER, time FLOAT NOT NULL,
    CONSTRAINT uq_artifacts_run_path UNIQUE (run_id, path));
INSERT INTO registry_meta VALUES ('schema_version', '1');
INSERT INTO runs (kind, status, recipe_json, recipe_hash, seeds_json, argv_json, created, devices_json)
    VALUES ('train', 'done', '{"sampler": {"steps": 18}}', 'abc', '[0, 1]', '["edmctl"]', 1.0, '["cpu"]');
INSERT INTO metrics (run_id, key, step, value, time) VALUES
    (1, 'loss', 0, 0.5, 1.0), (1, 'loss', 1, 0.2, 2.0), (1, 'loss', 2, 0.3, 3.0), (1, 'fid', NULL, 7.5, 4.0);
INSERT INTO artifacts (run_id, kind, path, sha256, bytes, time) VALUES (1, 'checkpoint', 'run1/a.pt', 'ff', 3, 1.0);
"""


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def _make_v1(home):
    home.mkdir()
    with sqlite3.connect(home / "registry.db") as conn:
        conn.executescript(V1_SQL)
    conn.close()


def test_upgrade_from_v1_keeps_data_and_backs_up_first(home):
    _make_v1(home)
    reg = Registry(home)
    run = reg.get("run1")
    assert (run.kind, run.recipe, run.seeds, run.extra, run.name) == ("train", {"sampler": {"steps": 18}}, [0, 1], {}, None)
    metrics = reg.metrics(1)
    assert (metrics["loss"].value, metrics["loss"].min, metrics["loss"].count, metrics["fid"].value) == (0.3, 0.2, 3, 7.5)
    assert [a.path for a in reg.artifacts(1)] == ["run1/a.pt"]
    with sqlite3.connect(home / "registry.db.v1.bak") as backup:
        assert backup.execute("SELECT value FROM registry_meta").fetchone() == ("1",)
        assert backup.execute("SELECT COUNT(*) FROM metrics").fetchone() == (4,)
    backup.close()
    with open_run(kind="sample", parent="run1", home=home) as new:  # the upgraded database takes new runs
        new.log_metric("fid", 3.0)
    assert Registry(home).get(new.id).parent_id == 1 and new.id == 2


def test_a_newer_database_is_refused_with_a_clear_message(home):
    _make_v1(home)
    with sqlite3.connect(home / "registry.db") as conn:
        conn.execute("UPDATE registry_meta SET value = ?", (str(SCHEMA_VERSION + 1),))
    conn.close()
    with pytest.raises(UserError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        Registry(home)


def _make_v2_with_infinity(home):
    """A registry as schema v2 wrote it: recipes as Python's JSON, `Infinity` for the default s_tmax = inf."""
    with open_run(kind="sample", recipe={"sampler": {"steps": 18, "s_tmax": float("inf")}}, home=home) as run:
        run.update(fid_repeats=[float("nan"), 2.0])
    with sqlite3.connect(home / "registry.db") as conn:
        conn.execute("DROP INDEX ix_runs_uid")
        conn.execute("ALTER TABLE runs DROP COLUMN uid")
        conn.execute("ALTER TABLE runs DROP COLUMN process_ns")
        conn.execute("UPDATE runs SET recipe_json = ?, extra_json = ?",
                     ('{"sampler": {"s_tmax": Infinity, "steps": 18}}', '{"fid_repeats": [NaN, 2.0]}'))
        conn.execute("UPDATE registry_meta SET value = '2'")
    conn.close()
    migrations._ready.clear()
    return run.id


def test_upgrade_from_v2_rewrites_infinity_as_standard_json_that_where_can_query(home):
    run_id = _make_v2_with_infinity(home)
    with sqlite3.connect(home / "registry.db") as conn, pytest.raises(sqlite3.OperationalError, match="malformed JSON"):
        conn.execute("SELECT json_extract(recipe_json, '$.sampler.steps') FROM runs").fetchall()  # the v2 bug
    conn.close()
    reg = Registry(home)
    assert [r.id for r in reg.list(where={"sampler.steps": "18"})] == [run_id]
    assert [r.id for r in reg.list(where={"sampler.s_tmax": "inf"})] == [run_id]
    record = reg.get(run_id)
    assert record.recipe == {"sampler": {"s_tmax": float("inf"), "steps": 18}} and record.process_ns is None
    assert record.extra["fid_repeats"][1] == 2.0 and record.extra["fid_repeats"][0] != record.extra["fid_repeats"][0]
    assert "Infinity" not in record.recipe_json and "NaN" not in record.extra_json
    assert (home / "registry.db.v2.bak").is_file()


def _downgrade_to_v3(registry: Registry) -> None:
    """The database as schema v3 left it: no runs.uid."""
    with registry.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_runs_uid"))
        conn.execute(text("ALTER TABLE runs DROP COLUMN uid"))
        conn.execute(text("UPDATE registry_meta SET value = '3' WHERE key = 'schema_version'"))
    migrations._ready.clear()


def test_upgrade_from_v3_gives_every_run_its_own_uid_on_each_backend(home, registry_backend):
    for steps in (18, 32):
        with open_run(kind="sample", recipe={"sampler": {"steps": steps}}, home=home) as run:
            run.log_metric("fid", float(steps))
    _downgrade_to_v3(Registry(home))
    registry = Registry(home)
    runs = registry.list()
    assert [r.recipe["sampler"]["steps"] for r in runs] == [32, 18] and registry.metrics(run.id)["fid"].value == 32.0
    assert len({r.uid for r in runs}) == 2 and all(len(r.uid) == 32 for r in runs)
    assert migrations.stored_version(registry.engine) == SCHEMA_VERSION
    assert (home / "registry.db.v3.bak").is_file() == (registry_backend is None)  # a server is backed up by its operator
    with pytest.raises(IntegrityError), registry.engine.begin() as conn:  # the uid stays unique
        conn.execute(text("UPDATE runs SET uid = :uid"), {"uid": runs[0].uid})


def _open_registry(home: str, barrier, errors) -> None:
    try:
        barrier.wait(30)
        Registry(home, create=True)
    except Exception as e:  # reported to the parent, which asserts there were none
        errors.put(f"{type(e).__name__}: {e}")


def test_processes_opening_a_new_registry_at_once_create_its_schema_once(home, registry_backend):
    """Under the schema lock (a file lock beside SQLite, an advisory lock on PostgreSQL) one process creates the
    tables; the others wait for it and find them."""
    ctx = multiprocessing.get_context("fork")
    barrier, errors = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_open_registry, args=(str(home), barrier, errors)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    reported = [errors.get(timeout=5) for _ in range(errors.qsize())] if not errors.empty() else []
    assert [p.exitcode for p in procs] == [0] * 6 and reported == []
    with Registry(home).engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM registry_meta")).scalars().all() == [str(SCHEMA_VERSION)]
