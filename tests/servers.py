"""Throwaway servers the tests start themselves: a PostgreSQL 15 cluster in a temp folder on a free local port.

    with PostgresServer.started() as server:     # initdb + pg_ctl start; stopped and deleted on exit
        url = server.create_database()           # a fresh, empty database: postgresql+psycopg://postgres@127.0.0.1:P/tN

PostgreSQL refuses to run as root, so as root every server command runs as the `postgres` user
(`runuser -u postgres --`) in a folder chowned to it. A server that cannot start raises `ServerUnavailable`
naming what is missing; the fixtures in conftest.py turn that into a skip, or a failure in CI (`$CI` set).
"""

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import ContextManager

import pytest

PG_USER = "postgres"
PG_SETTINGS = {  # a test server: nothing must survive a crash, so nothing is synced
    "listen_addresses": "127.0.0.1", "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
    "max_connections": "400", "shared_buffers": "32MB",
}


class ServerUnavailable(RuntimeError):
    """A test server could not be started; the message says what is missing."""


def require(error: ServerUnavailable) -> None:
    """Skip the test outside CI; fail it loudly in CI (`$CI` set), where the servers must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the server tests: {error}", pytrace=False)
    pytest.skip(str(error))


@contextmanager
def running(server):
    """Start `server` (its `_start`), yield it, then stop it (`_stop`) and delete its `folder`, whatever happened."""
    try:
        server._start()
        yield server
    finally:
        server._stop()
        shutil.rmtree(server.folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """A PostgreSQL cluster in `folder` listening on 127.0.0.1:`port`, trust authentication, superuser postgres."""

    def __init__(self, folder: Path, port: int, as_user: list[str]):
        self.folder, self.port, self.as_user = folder, port, as_user
        self.data, self.log = folder / "data", folder / "server.log"
        self._names = itertools.count()

    @classmethod
    def started(cls) -> ContextManager["PostgresServer"]:
        as_user = _run_as_prefix()
        return running(cls(Path(tempfile.mkdtemp(prefix="edmctl-pg-")), free_port(), as_user))

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database (CREATE DATABASE from template0), named t0, t1, ...; its URL."""
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=PG_USER, dbname="postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)

    def _start(self) -> None:
        for tool in ("initdb", "pg_ctl"):
            if shutil.which(tool) is None:
                raise ServerUnavailable(f"PostgreSQL's `{tool}` is not on PATH (Debian: apt-get install postgresql)")
        try:
            import psycopg  # noqa: F401  the driver the registry uses
        except ImportError:
            raise ServerUnavailable("the psycopg driver is not installed (pip install 'edmctl[postgres]')") from None
        if self.as_user:
            shutil.chown(self.folder, user=PG_USER)
        self._run(["initdb", "-D", str(self.data), "-U", PG_USER, "-A", "trust", "-E", "UTF8", "--locale=C",
                   "--no-sync"], "initdb")
        options = " ".join([f"-p {self.port}", f"-k {self.folder}", *(f"-c {k}={v}" for k, v in PG_SETTINGS.items())])
        self._run(["pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start"],
                  "pg_ctl start")

    def _stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self.as_user, "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)

    def _run(self, argv: list[str], what: str) -> None:
        done = subprocess.run([*self.as_user, *argv], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-800:] if self.log.exists() else ""
            raise ServerUnavailable(f"{what} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}"
                                    f"{' | server log: ' + log if log else ''}")


def _run_as_prefix() -> list[str]:
    """`runuser -u postgres --` as root (PostgreSQL refuses root), nothing otherwise."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        raise ServerUnavailable(f"running as root needs a `{PG_USER}` user to run PostgreSQL as (useradd {PG_USER})") from None
    if shutil.which("runuser") is None:
        raise ServerUnavailable("running as root needs `runuser` (util-linux) to start PostgreSQL as postgres")
    return ["runuser", "-u", PG_USER, "--"]
