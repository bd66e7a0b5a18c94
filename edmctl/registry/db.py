"""The database connection: where it is, SQLite concurrency settings, write transactions with retries.

Several processes write at once (sweep trials, DDP rank 0, a reader in another terminal), so on SQLite:
WAL journal (readers never block the writer), a busy timeout, every write transaction starts with
`BEGIN IMMEDIATE` (the write lock is taken up front, so two writers never deadlock upgrading a read lock),
transactions are short, and a transaction that still finds the database locked is retried with backoff.

On PostgreSQL (a team registry, `EDMCTL_DB_URL=postgresql+psycopg://user@host/db`; a bare `postgresql://` URL
gets the psycopg driver of the `edmctl[postgres]` extra) transactions are the server's READ COMMITTED ones: a
write that decides on what it read locks those rows first (`SELECT ... FOR UPDATE`, claims with `SKIP LOCKED`,
queue.py), and a deadlock or serialization failure the server reports is retried like a busy SQLite database.

A database the registry cannot use (damaged, a folder, read-only, a full disk, an unreachable server, a missing
driver) is a `RegistryUnavailable` error: one sentence saying what is wrong and what to do (`explain`), exit 2.
"""

import hashlib
import os
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError, StatementError

from edmctl import paths
from edmctl.errors import UserError

SUPPORTED_DATABASES = ("sqlite", "postgresql")  # the dialects writes.py has an upsert for
DEFAULT_DRIVERS = {"postgresql": "psycopg"}  # the driver of the `edmctl[postgres]` extra
DRIVER_EXTRAS = {"postgresql": "postgres"}  # backend -> the pip extra that installs its driver
RETRIED_SQLSTATES = ("40001", "40P01", "55P03")  # serialization failure, deadlock, lock not available
# Connections a process keeps open to a server between transactions, and how many more it may open at once (the
# heartbeat thread's write beside the main thread's): a Slurm array of N tasks holds about N, not 5N, of the
# server's max_connections.
SERVER_POOL = (1, 4)
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


def from_environment(url: str) -> str:
    """` (EDMCTL_DB_URL)` when `url` is the one that variable gives, for messages; "" for a URL given otherwise
    (`runs copy --to URL`)."""
    given = os.environ.get("EDMCTL_DB_URL")
    try:
        return " (EDMCTL_DB_URL)" if given and with_driver(given) == url else ""
    except UserError:
        return ""


def explain(error: Exception, url: str) -> RegistryUnavailable:
    """One sentence for a database error the user must fix (damaged file, folder, read-only, full disk, server)."""
    path = sqlite_path(url)
    where = f"the registry database {path}" if path else f"the registry database {shown(url)}{from_environment(url)}"
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
    except StatementError as error:  # a stored value its column's type cannot hold (text in a number column)
        raise RegistryUnavailable(f"Cannot use the registry database {sqlite_path(url) or shown(url)}: a stored value "
                                  f"has the wrong type ({error.orig}){DAMAGED_ADVICE}") from None


def database_url(home: Path | None = None, url: str | None = None) -> str:
    """The explicit `url`, else `$EDMCTL_DB_URL` (a SQLAlchemy URL), else `sqlite:///$EDMCTL_HOME/registry.db`."""
    url = url or os.environ.get("EDMCTL_DB_URL")
    if url:
        return with_driver(url)
    return f"sqlite:///{Path(home if home is not None else paths.home()).resolve() / 'registry.db'}"


def check_supported(url: str, what: str = "EDMCTL_DB_URL") -> None:
    """A database URL edmctl can write to (SQLite with a file, or PostgreSQL); UserError naming `what` (where the
    URL came from) otherwise."""
    try:
        if "\x00" in url:
            raise ValueError("a NUL byte")
        parsed = make_url(url)
        backend = parsed.get_backend_name()
    except (ArgumentError, ValueError):  # ValueError: a port that is no number, a NUL byte
        raise UserError(f"database URL {url!r} ({what}) is not a SQLAlchemy URL, e.g. "
                        "postgresql://user@host/edmctl or sqlite:////path/registry.db.") from None
    if backend not in SUPPORTED_DATABASES:
        raise UserError(f"database URL {url!r} ({what}) is {backend}; the registry supports "
                        f"{' and '.join(SUPPORTED_DATABASES)}.")
    try:
        parsed.get_dialect()  # the dialect class only: the driver itself is imported when connecting
    except NoSuchModuleError:
        raise UserError(f"database URL {url!r} ({what}) names the driver {parsed.get_driver_name()!r}, which SQLAlchemy "
                        f"does not know; leave it out ({backend}://...) for the default.") from None
    if backend == "sqlite" and sqlite_path(url) is None:
        raise UserError(f"database URL {url!r} ({what}) names no database file (an in-memory registry keeps "
                        "nothing); use sqlite:////path/registry.db.")


def with_driver(url: str, what: str = "EDMCTL_DB_URL") -> str:
    """A supported URL with its driver named: `postgresql://` means `postgresql+psycopg://` (`DEFAULT_DRIVERS`)."""
    check_supported(url, what)
    parsed = make_url(url)
    driver = DEFAULT_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=f"{parsed.drivername}+{driver}").render_as_string(hide_password=False) if driver else url


def shown(url: str) -> str:
    """A URL as messages show it: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url


def sqlite_path(url: str) -> Path | None:
    """The database file of an SQLite URL (`sqlite:///PATH`, also with a driver named), None for other databases
    (and in-memory SQLite)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def engine_for(url: str) -> Engine:
    """One engine per URL and process (a forked child never reuses its parent's connections)."""
    key = (url, os.getpid())
    if key not in _engines:
        _engines[key] = _create_engine(url)
    return _engines[key]


def dispose(url: str) -> None:
    """Close this process's connections to `url` (a database about to be dropped, a test's database)."""
    engine = _engines.pop((url, os.getpid()), None)
    if engine is not None:
        engine.dispose()


def _create_engine(url: str) -> Engine:
    if sqlite_path(url) is None:
        try:
            return create_engine(url, pool_pre_ping=True, pool_size=SERVER_POOL[0], max_overflow=SERVER_POOL[1])
        except ImportError as error:
            raise missing_driver(url, error) from None
    try:
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000})
    except ImportError as error:  # sqlite+<driver> of another driver
        raise missing_driver(url, error) from None

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


def missing_driver(url: str, error: ImportError) -> RegistryUnavailable:
    """The driver of a server URL is not installed: name the extra (or package) that installs it."""
    parsed = make_url(url)
    backend, extra = parsed.get_backend_name(), DRIVER_EXTRAS.get(parsed.get_backend_name())
    default = f"{backend}+{DEFAULT_DRIVERS.get(backend)}"
    install = (f"pip install 'edmctl[{extra}]'" if extra and parsed.drivername == default
               else f"pip install the {parsed.get_driver_name()} package")
    named = from_environment(url)
    return RegistryUnavailable(f"{backend} database {shown(url)}{named}: its Python driver is not installed "
                               f"({error}); install it ({install}){' or unset EDMCTL_DB_URL' if named else ''}.")


def is_locked(error: OperationalError) -> bool:
    """A write that may succeed when tried again: SQLite busy, or a PostgreSQL deadlock or serialization failure."""
    if getattr(error.orig, "sqlstate", None) in RETRIED_SQLSTATES:
        return True
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
                raise RegistryUnavailable(f"The registry database {shown(str(engine.url))} stayed locked by other processes for "
                                          f"{WRITE_RETRIES} tries; run again when they are done.") from None
            time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def lock_name(conn: Connection, name: str) -> None:
    """Hold a lock on `name` until the write transaction ends, so two transactions deciding about the same thing
    (which rows to insert) run one after the other. PostgreSQL: `pg_advisory_xact_lock`; on SQLite the write
    transaction already holds the database's one write lock (`BEGIN IMMEDIATE`)."""
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)  # a bigint lock key
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """A read-only connection: one deferred transaction, so the reads inside see one snapshot."""
    with translated(str(engine.url)), engine.connect() as conn, conn.begin():
        yield conn
