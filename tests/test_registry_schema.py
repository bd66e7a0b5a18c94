"""A database from the previous schema version is upgraded (after a backup) keeping its data; a newer one is refused."""

import sqlite3

import pytest

from edmctl.errors import UserError
from edmctl.registry import Registry, open_run
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
