"""A registry database the registry cannot use is one sentence saying what is wrong and what to do (exit 2),
never a traceback, and never silently replaced by an empty one."""

import sys

import pytest
from sqlalchemy import event

from edmctl.cli.main import main
from edmctl.registry import Registry, db, open_run


def _recorded(home) -> None:
    with open_run(kind="train", recipe={"sampler": {"s_tmax": float("inf")}}, home=home) as run:
        run.log_metrics({"loss": 0.5})
    for engine in db._engines.values():
        engine.dispose()  # the last connection closed: the WAL is checkpointed into the file
    db._engines.clear()  # the next command opens the file afresh, as a new process would


def _garbage(path):
    path.write_bytes(b"not a database at all " * 300)


def _truncated(path):
    path.write_bytes(path.read_bytes()[:3000])


def _folder(path):
    path.unlink()
    path.mkdir()


def _emptied(path):
    path.write_bytes(b"")


@pytest.mark.parametrize("damage, message", [
    (_garbage, "is not an SQLite database"), (_truncated, "is damaged"), (_folder, "is a folder"),
    (_emptied, "is empty (0 bytes) but"),
])
def test_a_damaged_registry_is_one_sentence_and_is_left_alone(home, capsys, damage, message):
    _recorded(home)
    damage(home / "registry.db")
    before = sorted(p.name for p in home.iterdir())
    for argv in (["runs"], ["show", "1"], ["runs", "reap"], ["runs", "rm", "1", "--files"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and err.count("\n") <= 3, err  # one sentence (wrapped)
    assert sorted(p.name for p in home.iterdir()) == before and (home / "run1").is_dir()


def test_an_empty_registry_file_without_run_folders_is_a_new_registry(home):
    home.mkdir()
    (home / "registry.db").write_bytes(b"")
    _recorded(home)
    assert Registry(home).get(1).status == "done"


def _on_connect(engine, pragma: str) -> None:
    """Every new connection of `engine` runs `pragma` (the pool is emptied so that it applies from now on)."""
    event.listen(engine, "connect", lambda conn, record: conn.execute(pragma))
    engine.dispose()


def test_a_read_only_registry_is_a_clear_error(home):
    _recorded(home)
    _on_connect(Registry(home).engine, "PRAGMA query_only = ON")  # what SQLite answers for a read-only file
    with pytest.raises(db.RegistryUnavailable, match="is read-only; make it and its folder writable"):
        with open_run(kind="train", home=home):
            pass


def test_a_full_disk_mid_run_is_a_clear_error_and_keeps_the_run_folder(home):
    _recorded(home)
    engine = Registry(home).engine
    with pytest.raises(db.RegistryUnavailable, match="disk holding .* is full; free some space"):
        with open_run(kind="train", home=home) as run:
            (run.dir / "checkpoint.pt").write_bytes(b"work so far")
            pages = engine.raw_connection().execute("PRAGMA page_count").fetchone()[0]
            _on_connect(engine, f"PRAGMA max_page_count = {pages}")  # the database cannot grow: SQLITE_FULL
            run.log_metrics({f"m{i}": float(i) for i in range(5000)})
    assert (run.dir / "checkpoint.pt").read_bytes() == b"work so far"


def test_a_missing_database_driver_names_the_package_to_install(home, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pg8000", None)  # importing it fails, as when it is not installed
    monkeypatch.setenv("EDMCTL_DB_URL", "postgresql+pg8000://user@localhost/edmctl")
    assert main(["runs"]) == 2
    err = capsys.readouterr().err
    assert "driver is not installed" in err and "pip install" in err and err.startswith("error:")


def test_an_unreachable_server_is_one_line_without_the_password(home, capsys, monkeypatch):
    from servers import free_port

    monkeypatch.setenv("EDMCTL_DB_URL", f"postgresql://me:secret@127.0.0.1:{free_port()}/team")  # nothing listens
    assert main(["runs"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Cannot use the registry database postgresql+psycopg://me:***@127.0.0.1")
    assert "check the URL and that the server is up" in err and "secret" not in err and err.count("\n") == 1


def test_a_missing_psycopg_names_the_postgres_extra(home, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # importing it fails, as when it is not installed
    monkeypatch.setenv("EDMCTL_DB_URL", "postgresql://user@localhost/edmctl")  # psycopg is the default driver
    assert main(["runs"]) == 2
    assert "pip install 'edmctl[postgres]'" in capsys.readouterr().err
