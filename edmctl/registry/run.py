"""`open_run`: the one way a command records a run (environment, heartbeat, and how it ended)."""

import hashlib
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from edmctl.errors import UserError
from edmctl.paths import atomic_write_bytes, file_sha256
from edmctl.registry import db, environment, writes
from edmctl.registry.schema import ARTIFACT_KINDS, KINDS
from edmctl.registry.store import Registry

HEARTBEAT_S = 5.0


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM while a run is open, so the run ends as interrupted."""


class Run:
    """A handle on the open run: its id and folder, and what the command logs into it."""

    def __init__(self, registry: Registry, run_id: int):
        self.registry = registry
        self.id = run_id
        self.dir = registry.run_dir(run_id)

    @property
    def label(self) -> str:
        return f"run{self.id}"

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Append one value to the history and update the latest-value table."""
        self.log_metrics({key: value}, step=step)

    def log_metrics(self, values: dict[str, float], step: int | None = None) -> None:
        """Append several values at one step, in one transaction."""
        values = {str(key): float(value) for key, value in values.items()}
        if values:
            db.write(self.registry.engine, lambda conn: writes.log_metrics(conn, self.id, values, step))

    def add_artifact(self, path: Path | str, kind: str, step: int | None = None) -> dict[str, Any]:
        """Record a file or folder the run produced with its sha256 and size; the path as `Registry.stored_path`
        says (relative to the home of an SQLite registry, absolute on a server)."""
        if kind not in ARTIFACT_KINDS:
            raise ValueError(f"artifact kind must be one of {', '.join(ARTIFACT_KINDS)}, not {kind!r}")
        path = Path(path).resolve()
        sha256, size = content_hash(path)
        row = {"run_id": self.id, "kind": kind, "path": self.registry.stored_path(path), "sha256": sha256, "bytes": size, "step": step,
               "time": time.time()}
        db.write(self.registry.engine, lambda conn: writes.add_artifact(conn, row))
        return row

    def update(self, **fields: Any) -> None:
        """Set run columns (name, world_size, devices, parent, ...) or, for any other name, extra info (nfe=35)."""
        if fields:
            db.write(self.registry.engine, lambda conn: writes.update_run(conn, self.id, fields))


def content_hash(path: Path) -> tuple[str, int]:
    """(sha256, bytes) of a file; of a folder, the sha256 of its sorted (relative name, file sha256) lines."""
    if path.is_file():
        return file_sha256(path), path.stat().st_size
    if not path.is_dir():
        raise FileNotFoundError(f"artifact {path} does not exist")
    lines, total = [], 0
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        lines.append(f"{file.relative_to(path).as_posix()} {file_sha256(file)}\n")
        total += file.stat().st_size
    return hashlib.sha256("".join(lines).encode()).hexdigest(), total


@contextmanager
def open_run(kind: str, recipe: dict[str, Any] | None = None, recipe_hash: str | None = None,
             seeds: Sequence[int] = (), argv: Sequence[str] | None = None, parent: int | str | None = None,
             name: str | None = None, home: Path | str | None = None) -> Iterator[Run]:
    """Record a run around the body of a command (see the package docstring for the whole contract)."""
    if kind not in KINDS:
        raise ValueError(f"run kind must be one of {', '.join(KINDS)}, not {kind!r}")
    registry = Registry(home, create=True)
    parent_id = registry.get(parent).id if parent is not None else None
    env = environment.capture()
    columns = writes.request_columns(kind, "running", recipe, recipe_hash, seeds, argv, parent_id, name, env.extra)
    columns.update(started=columns["created"], heartbeat=columns["created"], **env.columns)
    run = Run(registry, db.write(registry.engine, lambda conn: writes.insert_run(conn, columns)))
    _make_dir(run)
    with lifecycle(run, env.files, discard_on_user_error=True):
        yield run


@contextmanager
def lifecycle(run: Run, env_files: dict[str, bytes], discard_on_user_error: bool) -> Iterator[Run]:
    """Heartbeat and SIGTERM handling around the body, and how the run ends (done, failed, interrupted).

    A `UserError` discards the run (`discard_on_user_error`, a run just opened) or marks it failed (a run
    queued before, whose row the caller owns). A registry that stops working (`RegistryUnavailable`: a full disk)
    keeps the folder and leaves the row for `reap`: what the run wrote so far is not thrown away."""
    heartbeat = _Heartbeat(run.registry, run.id)
    try:
        _save_environment(run, env_files)
        heartbeat.start()
        with _sigterm_interrupts():
            yield run
    except db.RegistryUnavailable:
        heartbeat.stop()  # the registry cannot record the end: the row is reaped later; the folder is kept
        raise
    except UserError as e:
        if not discard_on_user_error:
            _end(run, heartbeat, "failed", f"UserError: {e}")
            raise
        heartbeat.stop()
        _discard(run)
        raise
    except KeyboardInterrupt as e:
        _end(run, heartbeat, "interrupted", f"interrupted ({type(e).__name__})")
        raise
    except SystemExit as e:
        _end(run, heartbeat, "done" if e.code in (0, None) else "failed", None if e.code in (0, None) else f"exit {e.code}")
        raise
    except BaseException as e:
        _end(run, heartbeat, "failed", f"{type(e).__name__}: {e}")
        raise
    else:
        _end(run, heartbeat, "done", None)


def _make_dir(run: Run) -> None:
    """Create the run folder; it must not exist already (ids are never reused, so it belongs to someone else)."""
    try:
        run.dir.mkdir(parents=True)
    except FileExistsError:
        db.write(run.registry.engine, lambda conn: writes.delete_runs(conn, [run.id]))
        raise UserError(f"The folder {run.dir} already exists but the registry has no such run; move it away.") from None


def _save_environment(run: Run, env_files: dict[str, bytes]) -> None:
    """The git diff and the installed-package list, as `env` artifacts under run{id}/env/."""
    for name, data in env_files.items():
        target = run.dir / "env" / name
        atomic_write_bytes(target, data)
        run.add_artifact(target, kind="env")


def _end(run: Run, heartbeat: "_Heartbeat", status: str, error: str | None) -> None:
    heartbeat.stop()
    db.write(run.registry.engine, lambda conn: writes.set_status(conn, run.id, status, error))


def _discard(run: Run) -> None:
    """Remove every trace of a run whose input turned out to be bad (`UserError`): nothing half-done is kept."""
    db.write(run.registry.engine, lambda conn: writes.delete_runs(conn, [run.id]))
    shutil.rmtree(run.dir, ignore_errors=True)


class _Heartbeat:
    """A daemon thread writing the run's heartbeat every `HEARTBEAT_S` seconds (one tiny transaction each)."""

    def __init__(self, registry: Registry, run_id: int):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(registry, run_id), daemon=True,
                                        name=f"edmctl-heartbeat-run{run_id}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self, registry: Registry, run_id: int) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                db.write(registry.engine, lambda conn: writes.beat(conn, run_id))
            except Exception:  # a missed beat must never end the run; the next one will try again
                pass


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """While the run is open, SIGTERM raises `Terminated` (a KeyboardInterrupt) in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
