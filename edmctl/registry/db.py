"""The database connection: where it is, SQLite concurrency settings, write transactions with retries.

Several processes write at once (sweep trials, DDP rank 0, a reader in another terminal), so on SQLite:
WAL journal (readers never block the writer), a busy timeout, every write transaction starts with
`BEGIN IMMEDIATE` (the write lock is taken up front, so two writers never deadlock upgrading a read lock),
transactions are short, and a transaction that still finds the database locked is retried with backoff.

A database the registry cannot use (damaged, a folder, read-only, a full disk, an unreachable server, a missing
driver) is a `RegistryUnavailable` error: one sentence saying what is wrong and what to do (`explain`), exit 2.
"""

import os
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError

from edmctl import paths
from edmctl.errors import UserError

SUPPORTED_DATABASES = ("sqlite", "postgresql")  # the dialects writes.py has an upsert for
BUSY_TIMEOUT_MS = 15_000
WRITE_RETRIES = 8
T = TypeVar("T")

_engines: dict[tuple[str, int], Engine] = {}


class RegistryUnavailable(UserError):
    """The registry database cannot be read or written; the message says why and what to do."""


# driver message fragment -> what is wrong and what to do ({where}: the database file or URL)
PROBLEMS = {
    "file is not a database": "{where} is not an SQLite database (damaged or overwritten)",
    "malformed": "{where} is damaged (truncated or corrupt)",
    "readonly database": "{where} is read-only; make it and its folder writable (chmod u+w), or set EDMCTL_HOME to another folder",
    "disk is full": "the disk holding {where} is full; free some space and run again",
    "disk i/o error": "reading or writing {where} failed (disk I/O error: a full or failing disk?); free space or check the disk",
    "unable to open database file": "{where} cannot be opened; check that it is a file in a folder you can write to",
}
DAMAGED_ADVICE = "; restore it from a backup (registry.db.v*.bak) or move it away to start an empty registry."


def explain(error: Exception, url: str) -> RegistryUnavailable:
    """One sentence for a database error the user must fix (damaged file, folder, read-only, full disk, server)."""
    path = sqlite_path(url)
    where = f"the registry database {path}" if path else f"the registry database {url} (EDMCTL_DB_URL)"
    text = str(getattr(error, "orig", None) or error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if path is not None and path.is_dir():
        return RegistryUnavailable(f"{where[0].upper()}{where[1:]} is a folder, not a database file; move it away (or set EDMCTL_HOME elsewhere).")
    for fragment, problem in PROBLEMS.items():
        if fragment in text.lower():
            advice = DAMAGED_ADVICE if fragment in ("file is not a database", "malformed") else "."
            sentence = problem.format(where=where)
            return RegistryUnavailable(sentence[0].upper() + sentence[1:] + advice)
    if path is None:
        return RegistryUnavailable(f"Cannot use {where}: {text}; check the URL and that the server is up.")
    return RegistryUnavailable(f"Cannot use {where}: {text}.")


@contextmanager
def translated(url: str) -> Iterator[None]:
    """Database errors other than a busy lock become `RegistryUnavailable` (see `explain`)."""
    try:
        yield
    except OperationalError as error:
        if is_locked(error):
            raise
        raise explain(error, url) from None
    except DatabaseError as error:
        raise explain(error, url) from None


def database_url(home: Path | None = None, url: str | None = None) -> str:
    """The explicit `url`, else `$EDMCTL_DB_URL` (a SQLAlchemy URL), else `sqlite:///$EDMCTL_HOME/registry.db`."""
    url = url or os.environ.get("EDMCTL_DB_URL")
    if url:
        check_supported(url)
        return url
    return f"sqlite:///{Path(home if home is not None else paths.home()).resolve() / 'registry.db'}"


def check_supported(url: str) -> None:
    """A database URL edmctl can write to (SQLite or PostgreSQL); UserError naming EDMCTL_DB_URL otherwise."""
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        raise UserError(f"database URL {url!r} (EDMCTL_DB_URL) is not a SQLAlchemy URL, e.g. "
                        "postgresql://user@host/edmctl or sqlite:////path/registry.db.") from None
    if backend not in SUPPORTED_DATABASES:
        raise UserError(f"database URL {url!r} (EDMCTL_DB_URL) is {backend}; the registry supports "
                        f"{' and '.join(SUPPORTED_DATABASES)}.")


def sqlite_path(url: str) -> Path | None:
    """The database file of a `sqlite:///` URL, None for other databases (and in-memory SQLite)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url[len(prefix):] in ("", ":memory:"):
        return None
    return Path(url[len(prefix):].split("?", 1)[0])


def engine_for(url: str) -> Engine:
    """One engine per URL and process (a forked child never reuses its parent's connections)."""
    key = (url, os.getpid())
    if key not in _engines:
        _engines[key] = _create_engine(url)
    return _engines[key]


def _create_engine(url: str) -> Engine:
    if sqlite_path(url) is None:
        try:
            return create_engine(url, pool_pre_ping=True)
        except ImportError as error:
            raise RegistryUnavailable(
                f"EDMCTL_DB_URL names a {make_url(url).get_backend_name()} database but its Python driver is not "
                f"installed ({error}); install it (pip install psycopg2-binary) or unset EDMCTL_DB_URL.") from None
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (pysqlite's implicit BEGIN is deferred)
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints, safe in WAL mode
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("immediate") else "BEGIN")

    return engine


def is_locked(error: OperationalError) -> bool:
    text = str(error.orig).lower()
    return "locked" in text or "busy" in text


def write(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run `work(conn)` in one short write transaction that holds the write lock from its start; retry if locked.

    `work` must be safe to run again (it is re-run from scratch after a rollback).
    """
    for attempt in range(WRITE_RETRIES):
        try:
            with translated(str(engine.url)), engine.connect().execution_options(immediate=True) as conn, conn.begin():
                return work(conn)
        except OperationalError:
            if attempt == WRITE_RETRIES - 1:
                raise RegistryUnavailable(f"The registry database {engine.url} stayed locked by other processes for "
                                          f"{WRITE_RETRIES} tries; run again when they are done.") from None
            time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """A read-only connection: one deferred transaction, so the reads inside see one snapshot."""
    with translated(str(engine.url)), engine.connect() as conn, conn.begin():
        yield conn
