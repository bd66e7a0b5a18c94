"""`Registry`: the queries every command uses (get, list, latest, metrics, artifacts), reaping and removal.

Reads never write, except reaping runs whose process is gone (every listing reaps first, so no run stays
"running" after a crash) and the one-time schema upgrade of an older database.

Whether a running run is alive: its PID is checked only when the run recorded the same host *and* the same boot
id and PID namespace (`process_ns`) as this process; anywhere else (another machine, another container sharing
the hostname and the home, a reboot) a PID means nothing here, and a heartbeat younger than `STALE_AFTER_S`
says the run is alive. A live run is never reaped and never removed.
"""

from __future__ import annotations  # `list[...]` annotations inside Registry, which has a `list` method

import json
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from sqlalchemy import String, TypeDecorator, cast, func, literal, or_, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from edmctl import paths
from edmctl.errors import UserError
from edmctl.registry import db, environment, migrations, writes
from edmctl.registry.schema import (KINDS, PID_MAX, checked, RUN_COLUMNS, STATUSES, ArtifactRecord, LatestMetric, MetricPoint, RunRecord,
                                    encode_non_finite, load_json)

STALE_AFTER_S = 120.0  # a run whose PID cannot be checked here and whose heartbeat is older than this is reaped
MAX_RUN_ID = 2**63 - 1  # the largest id an SQL BIGINT holds
_REF = re.compile(r"^(?:run)?(\d{1,19})$", re.ASCII)
_FIELD = re.compile(r"^[A-Za-z_]\w*(\.\w+)*$")
GROUP_KINDS = ("sweep", "ablate")  # runs whose children are their trials (a sweep's trials, an ablation's configs)


@dataclass
class RemovalPlan:
    """What `remove` deletes, for `edmctl runs rm` to say before doing it."""

    run_ids: list[int]
    metric_rows: int
    artifact_rows: int
    orphaned_children: list[int]
    folders: list[Path] = field(default_factory=list)  # deleted only with files=True
    folder_bytes: int = 0


@dataclass
class ChildRow:
    """A child run as listings need it (`Registry.child_rows`): plain values, no model object."""

    id: int
    name: str | None
    status: str
    error: str | None
    extra: dict[str, Any]
    values: dict[str, float | None]  # latest value of each key asked for that the run logged


class Registry:
    """Queries over the runs under `home` (default `edmctl.paths.home()`) in the database at `url`
    (default `$EDMCTL_DB_URL`, else `sqlite:///$EDMCTL_HOME/registry.db`)."""

    def __init__(self, home: Path | str | None = None, url: str | None = None, create: bool = False):
        self.home = Path(home if home is not None else paths.home())
        self.url = db.database_url(self.home, url)
        sqlite_file = db.sqlite_path(self.url)
        self.exists = create or sqlite_file is None or sqlite_file.exists()  # a read never creates a database
        if sqlite_file is not None:
            check_not_emptied(sqlite_file, self.home)
        if create and sqlite_file is not None:
            paths.make_dirs(sqlite_file.parent)
        self.relative_to = self.home if sqlite_file is not None else None  # see `stored_path`
        self.engine = db.engine_for(self.url)
        if self.exists:
            migrations.ensure_schema(self.engine, self.url, self.home)

    # -- runs ---------------------------------------------------------------------------------------------

    def resolve(self, ref: str | int, kind: str | Sequence[str] | None = None) -> int:
        """The id of `run12`, `12` or `latest`: the newest run of `kind` (one kind or several; None: any), so
        `sweep show latest` is the newest sweep, not a trial it just ran. UserError for anything unknown."""
        text = str(ref).strip()
        if text == "latest":
            return self._latest_id(kind)
        match = _REF.match(text)
        if not match or int(match.group(1)) > MAX_RUN_ID:
            raise UserError(f"RUN must look like run12, 12 or latest (ids below 2**63), not {text[:40]!r}.")
        return int(match.group(1))

    def _latest_id(self, kind: str | Sequence[str] | None) -> int:
        kinds = (kind,) if isinstance(kind, str) else tuple(kind or ())
        query = select(func.max(RunRecord.id))
        if kinds:
            query = query.where(RunRecord.kind.in_(kinds))
        ids = self._scalars(query)
        if not ids or ids[0] is None:
            runs = f"{' or '.join(kinds)} runs" if kinds else "runs"
            raise UserError(f"There is no latest run: no {runs} are recorded in {self.home}.")
        return ids[0]

    def get(self, ref: str | int, kind: str | Sequence[str] | None = None) -> RunRecord:
        """One run by `run12`, `12` or `latest` (the newest of `kind`, see `resolve`); UserError (one line) when
        it is not recorded."""
        run_id = self.resolve(ref, kind)
        rows = self._select(select(RunRecord).where(RunRecord.id == run_id)) if self.exists else []
        if not rows:
            raise UserError(f"run{run_id} is not in the registry at {self.home}; `edmctl runs` lists the recorded runs.")
        return rows[0]

    def list(self, kind: str | None = None, status: str | None = None, where: dict[str, Any] | None = None,
             limit: int | None = 50) -> list[RunRecord]:
        """Runs newest first, reaping stale ones first. `where` maps a run column (`host`), a recipe field
        (`sampler.steps`) or an extra field (`extra.nfe`) to the value it must equal."""
        if not self.exists:
            return []
        self.reap()
        query = select(RunRecord).order_by(RunRecord.id.desc())
        if kind:
            if kind not in KINDS:
                raise UserError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}.")
            query = query.where(RunRecord.kind == kind)
        if status:
            if status not in STATUSES:
                raise UserError(f"--status must be one of {', '.join(STATUSES)}, not {status!r}.")
            query = query.where(RunRecord.status == status)
        for name, value in (where or {}).items():
            query = query.where(_where_clause(self.engine.dialect.name, name, value))
        if limit is not None:
            query = query.limit(limit)
        return self._select(query)

    def latest(self, kind: str | None = "train", status: str | None = "done") -> RunRecord | None:
        """The newest run of `kind` with `status` (None for any), or None when there is none."""
        runs = self.list(kind=kind, status=status, limit=1)
        return runs[0] if runs else None

    def latest_standalone(self, kinds: Sequence[str], status: str = "done") -> RunRecord | None:
        """The newest run of `kinds` with `status` that is no trial: neither it nor a run it continues (its
        parents, e.g. the run it resumed) is the child of a sweep or an ablation (`GROUP_KINDS`). What a command
        falls back on when no run is named: a throwaway config of an ablation is never the default model."""
        parent = aliased(RunRecord)
        query = (select(RunRecord).outerjoin(parent, RunRecord.parent_id == parent.id)
                 .where(RunRecord.kind.in_(list(kinds)), RunRecord.status == status,
                        or_(parent.id.is_(None), parent.kind.not_in(GROUP_KINDS)))
                 .order_by(RunRecord.id.desc()))
        self.reap()
        return next((record for record in self._select(query) if not self._is_trial(record)), None)

    def _is_trial(self, record: RunRecord) -> bool:
        """Whether a parent of `record`, however far up, is a sweep or an ablation."""
        seen = {record.id}
        while record.parent_id is not None and record.parent_id not in seen:
            seen.add(record.parent_id)
            parents = self._select(select(RunRecord).where(RunRecord.id == record.parent_id))
            if not parents:
                return False  # the parent was removed (`runs rm`): nothing left to belong to
            record = parents[0]
            if record.kind in GROUP_KINDS:
                return True
        return False

    def children(self, run_id: int) -> list[RunRecord]:
        return self.children_of([run_id])

    def children_of(self, run_ids: Sequence[int]) -> list[RunRecord]:
        """The children of several runs, in one query, in id order."""
        return self._select(select(RunRecord).where(RunRecord.parent_id.in_(list(run_ids))).order_by(RunRecord.id))

    def child_rows(self, run_id: int, keys: Sequence[str]) -> list[ChildRow]:
        """The children of a run, in id order, with the latest value of each metric in `keys`: two plain queries
        joined on the parent (no model objects, no list of ids), so a sweep of 10k trials reads in a blink."""
        if not self.exists:
            return []
        runs, latest = RunRecord.__table__.c, LatestMetric.__table__.c
        with db.read(self.engine) as conn:
            rows = {i: ChildRow(i, name, status, error, load_json(extra), {}) for i, name, status, error, extra in conn.execute(
                select(runs.id, runs.name, runs.status, runs.error, runs.extra_json).where(runs.parent_id == run_id)
                .order_by(runs.id))}
            values = conn.execute(select(latest.run_id, latest.key, latest.value).join_from(
                LatestMetric.__table__, RunRecord.__table__, runs.id == latest.run_id)
                .where(runs.parent_id == run_id, latest.key.in_(list(keys))))
            for child, key, value in values:
                rows[child].values[key] = value
        return list(rows.values())

    def child_statuses(self, run_id: int) -> dict[str, int]:
        """How many children of the run are in each status (one grouped count)."""
        if not self.exists:
            return {}
        with db.read(self.engine) as conn:
            rows = conn.execute(select(RunRecord.status, func.count()).where(RunRecord.parent_id == run_id)
                                .group_by(RunRecord.status))
            return {status: count for status, count in rows}

    def run_dir(self, run_id: int) -> Path:
        return self.home / f"run{run_id}"

    # -- metrics and artifacts ------------------------------------------------------------------------------

    def metrics(self, run_id: int) -> dict[str, LatestMetric]:
        """Latest value, min, max, best and count of each metric of a run (one row per key: no history scan)."""
        rows = self._select(select(LatestMetric).where(LatestMetric.run_id == run_id).order_by(LatestMetric.key))
        return {row.key: row for row in rows}

    def latest_metrics(self, run_ids: list[int]) -> dict[int, dict[str, LatestMetric]]:
        """`metrics` of several runs in one query (for listings)."""
        result: dict[int, dict[str, LatestMetric]] = {run_id: {} for run_id in run_ids}
        if run_ids:
            for row in self._select(select(LatestMetric).where(LatestMetric.run_id.in_(run_ids))):
                result[row.run_id][row.key] = row
        return result

    def latest_values(self, run_ids: list[int]) -> dict[int, dict[str, float | None]]:
        """{run_id: {key: latest value}} in one plain query (no model objects: listings stay fast)."""
        result: dict[int, dict[str, float | None]] = {run_id: {} for run_id in run_ids}
        if run_ids and self.exists:
            with db.read(self.engine) as conn:
                rows = conn.execute(select(LatestMetric.run_id, LatestMetric.key, LatestMetric.value)
                                    .where(LatestMetric.run_id.in_(run_ids)).order_by(LatestMetric.key))
                for run_id, key, value in rows:
                    result[run_id][key] = value
        return result

    def history(self, run_id: int, key: str) -> list[MetricPoint]:
        """Every logged value of one metric, in logging order."""
        return self._select(select(MetricPoint).where(MetricPoint.run_id == run_id, MetricPoint.key == key)
                            .order_by(MetricPoint.id))

    def artifacts(self, run_id: int) -> list[ArtifactRecord]:
        return self._select(select(ArtifactRecord).where(ArtifactRecord.run_id == run_id).order_by(ArtifactRecord.id))

    def stored_path(self, path: Path) -> str:
        """How an artifact's path is recorded: relative to the home when the registry is an SQLite file there (a
        home can be moved), absolute on a server registry (every node mounting the same filesystem at the same
        place resolves it; each user may have another home)."""
        path = path.resolve()
        root = self.relative_to.resolve() if self.relative_to is not None else None
        return str(path.relative_to(root)) if root is not None and path.is_relative_to(root) else str(path)

    def outputs(self, run_id: int) -> list[Path]:
        """The files run `run_id` and its children (a sweep's trials) wrote: their artifacts but the `env` records
        of the environment, in the order they were recorded."""
        query = (select(ArtifactRecord).join(RunRecord, RunRecord.id == ArtifactRecord.run_id)
                 .where(or_(RunRecord.id == run_id, RunRecord.parent_id == run_id), ArtifactRecord.kind != "env")
                 .order_by(ArtifactRecord.id))
        return [self.artifact_path(a) for a in self._select(query)]

    def artifact_path(self, artifact: ArtifactRecord) -> Path:
        """Where an artifact is on this node: a relative path is inside the home."""
        path = Path(artifact.path)
        return path if path.is_absolute() else self.home / path

    # -- reaping and removal ----------------------------------------------------------------------------------

    def reap(self) -> list[int]:
        """Mark interrupted the running runs whose process is gone (same host) or whose heartbeat is older than
        `STALE_AFTER_S` (another host). Returns their ids."""
        if not self.exists:
            return []
        with db.read(self.engine) as conn:
            running = conn.execute(select(RunRecord.id, RunRecord.host, RunRecord.pid, RunRecord.process_ns,
                                          RunRecord.heartbeat).where(RunRecord.status == "running")).all()
        stale = [row for row in running if is_stale(row)]
        if stale:
            db.write(self.engine, lambda conn: _mark_reaped(conn, stale))
            self.remove_leftovers([row.id for row in stale])
        return [row.id for row in stale]

    def remove_leftovers(self, run_ids: list[int] | None = None) -> list[Path]:
        """Temporary files and staging folders that killed writers left in run folders (all of them when `run_ids`
        is None, and the home itself): removed unless a live writer holds them (`paths.remove_leftovers`)."""
        folders = [self.run_dir(i) for i in run_ids] if run_ids is not None else [self.home, *run_folders(self.home)]
        removed = []
        for folder in folders:
            for parent, subfolders, _ in os.walk(folder) if folder != self.home else [(str(folder), [], [])]:
                removed += paths.remove_leftovers(Path(parent))
                subfolders[:] = [d for d in subfolders if not paths.is_leftover_name(d)]
        return removed

    def removal_plan(self, ref: str | int, files: bool = False) -> RemovalPlan:
        """What removing a run deletes: its row, metric and artifact records, and with `files` its folder: the
        `run{id}` folder in the home when the run wrote its files there (a run copied from another registry
        (`runs copy`) wrote them elsewhere, and a folder of that name here is not its own)."""
        run = self.get(ref)
        if run.status == "running" and not is_stale(run):
            raise UserError(f"{run.label} is still running (pid {run.pid} on {run.host}, last heartbeat "
                            f"{time.time() - (run.heartbeat or 0):.0f} s ago); stop it before removing it.")
        with db.read(self.engine) as conn:
            n_metrics = conn.execute(select(func.count()).where(MetricPoint.run_id == run.id)).scalar_one()
            n_artifacts = conn.execute(select(func.count()).where(ArtifactRecord.run_id == run.id)).scalar_one()
        plan = RemovalPlan([run.id], n_metrics, n_artifacts, [child.id for child in self.children(run.id)])
        folder = self.run_dir(run.id)
        if files and folder.exists() and any(self.artifact_path(a).is_relative_to(folder) for a in self.artifacts(run.id)):
            plan.folders.append(folder)
            plan.folder_bytes = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        return plan

    def remove(self, plan: RemovalPlan) -> None:
        """Delete what `plan` lists: the database rows first, then the folders."""
        db.write(self.engine, lambda conn: writes.delete_runs(conn, plan.run_ids))
        for folder in plan.folders:
            shutil.rmtree(folder, ignore_errors=True)

    # -- helpers ----------------------------------------------------------------------------------------------

    def _select(self, query) -> list:
        if not self.exists:
            return []
        with db.translated(self.url), Session(self.engine) as session:
            return [checked(row) for row in session.exec(query).all()]

    def _scalars(self, query) -> list:
        if not self.exists:
            return []
        with db.read(self.engine) as conn:
            return list(conn.execute(query).scalars().all())


def run_folders(home: Path) -> list[Path]:
    """The `run<N>` folders under a home."""
    try:
        return [p for p in home.iterdir() if p.is_dir() and _REF.match(p.name) and p.name.startswith("run")]
    except OSError:
        return []


def check_not_emptied(database: Path, home: Path) -> None:
    """A 0-byte registry file beside run folders lost its runs (truncated, or replaced by an empty file): refuse it
    rather than silently start an empty registry over the folders it described."""
    try:
        emptied = database.is_file() and database.stat().st_size == 0
    except OSError:
        return  # unreadable: opening it says why
    folders = run_folders(home) if emptied else []
    if folders:
        shown = ", ".join(sorted(p.name for p in folders)[:3])
        raise db.RegistryUnavailable(
            f"The registry database {database} is empty (0 bytes) but {home} holds {len(folders)} run folder(s) "
            f"({shown}{', ...' if len(folders) > 3 else ''}); restore it from a backup (registry.db.v*.bak) or move "
            f"the run folders away before starting a new registry.")


def _where_clause(dialect: str, name: str, value: Any):
    """`name == value` for a run column, an `extra.` field or a recipe field (dotted path into the JSON)."""
    if not _FIELD.match(name):
        raise UserError(f"--where field {name!r} must be a run column or a dotted recipe field like sampler.steps.")
    if isinstance(value, str):
        value = parse_value(value)
    if name in RUN_COLUMNS and not name.endswith("_json"):
        return _column_equals(RunRecord.__table__.c[name], value)
    value = encode_non_finite(value)  # inf, Infinity, nan: stored as the strings "inf", "nan" (schema.dump_json)
    column, path = (RunRecord.extra_json, name[len("extra."):]) if name.startswith("extra.") else (RunRecord.recipe_json, name)
    return JSON_EQUALS[dialect](column, path.split("."), value)


def _column_equals(column, value: Any):
    """`column == value` with the value of the column's type (`--where name=18` is the name "18", as SQLite
    compares a text column), so a server that types strictly answers alike; a value of another type is a UserError."""
    if value is None:
        return column.is_(None)
    sql_type = column.type.impl if isinstance(column.type, TypeDecorator) else column.type  # SQLModel's AutoString
    if isinstance(sql_type, String):
        return column == (value if isinstance(value, str) else json.dumps(value))
    kind = sql_type.python_type  # bool, int or float
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, (int, float)):
        raise UserError(f"--where {column.name} takes a {kind.__name__} value, not {value!r}.")
    return column == value


def _sqlite_json_equals(column, path: list[str], value: Any):
    """SQLite: `json_extract(column, '$.a.b') = value` (JSON scalars come back as SQL values; null as NULL; a list
    or table as its minified JSON text, which `json()` makes of the value too)."""
    field = func.json_extract(column, "$." + ".".join(path))
    return field == func.json(json.dumps(value)) if isinstance(value, (list, dict)) else field == value


def _postgres_json_equals(column, path: list[str], value: Any):
    """PostgreSQL: `column::jsonb #> '{a,b}' = value::jsonb` (18 equals 18.0; a JSON null or a missing field
    matches null, as on SQLite)."""
    field = cast(column, JSONB)[tuple(path)]
    if value is None:
        return or_(field.is_(None), field == cast(literal("null"), JSONB))
    return field == cast(literal(json.dumps(value)), JSONB)


JSON_EQUALS = {"sqlite": _sqlite_json_equals, "postgresql": _postgres_json_equals}  # --where on a JSON column


def parse_value(text: str) -> Any:
    """A `--where` value: JSON when it parses (32, 0.5, true, null), else the string itself (heun)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def checks_pid_here(row) -> bool:
    """Whether `row.pid` names a process this one can see: same host, same boot and PID namespace."""
    return row.pid is not None and row.host == socket.gethostname() and row.process_ns == environment.process_namespace()


def is_stale(row) -> bool:
    """A running run is stale when its PID is gone (where the PID can be checked, `checks_pid_here`), else when its
    heartbeat is older than `STALE_AFTER_S`: a fresh heartbeat is a live run whatever its PID says here."""
    if checks_pid_here(row):
        return not _pid_alive(row.pid)
    return row.heartbeat is None or time.time() - row.heartbeat > STALE_AFTER_S


def _pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (killed, not yet waited for by its parent). A number no PID can
    be (0 or less would signal a process group; a damaged row) is no live process."""
    if not isinstance(pid, int) or not 0 < pid <= PID_MAX:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust os.kill
    return state not in ("Z", "X")


def _mark_reaped(conn, stale) -> None:
    runs = RunRecord.__table__
    now = time.time()
    for row in stale:
        reason = (f"reaped: process {row.pid} on {row.host} is gone" if checks_pid_here(row)
                  else f"reaped: no heartbeat from pid {row.pid} on {row.host} for more than {STALE_AFTER_S:.0f} s")
        conn.execute(update(runs).where(runs.c.id == row.id, runs.c.status == "running")
                     .values(status="interrupted", ended=now, error=reason))
