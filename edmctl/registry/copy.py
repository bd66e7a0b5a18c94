"""`copy_runs`: runs moved from one registry to another (a laptop's SQLite and the team's PostgreSQL, either way).

    report = copy_runs(Registry(), registry_at("postgresql+psycopg://me@db/team"), ["run12"])
    report.copied      # {source id: target id} of the runs written now
    report.present     # {source id: target id} of the runs the target already held (same uid): left as they are

A run comes with its lineage: its ancestors (a trial's sweep, a sample run's training run), so its parent link
holds in the target, and its descendants (a sweep's trials). Each run keeps its row (ids are the target's own,
parent links remapped), its full metric history and latest values, and its artifact records; the files stay
where they are and the records name them as the target stores paths (`Registry.stored_path`: absolute on a
server, so every node that mounts the same filesystem finds them). A run is recognised by its uid (schema v4), so
copying again adds nothing. The target is written in one transaction; copies into one server run one at a time.
"""

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, insert, select

from edmctl.errors import UserError
from edmctl.registry import db
from edmctl.registry.schema import ArtifactRecord, LatestMetric, MetricPoint, RunRecord, checked
from edmctl.registry.store import Registry, is_stale

RUNS, METRICS, LATEST, ARTIFACTS = (RunRecord.__table__, MetricPoint.__table__, LatestMetric.__table__,
                                    ArtifactRecord.__table__)


@dataclass
class CopyReport:
    copied: dict[int, int] = field(default_factory=dict)  # source run id -> its new id in the target
    present: dict[int, int] = field(default_factory=dict)  # source run id -> the target's copy made before
    metric_rows: int = 0
    artifact_rows: int = 0


def registry_at(where: str, create: bool, what: str = "--to/--from") -> Registry:
    """The registry a `--to`/--from` (`what`) names: a database URL, or an edmctl home folder (its registry.db).
    An SQLite registry's home is its file's folder (artifact paths in it are relative to that folder)."""
    if not where.strip():
        raise UserError(f"{what} is empty; give a database URL (postgresql+psycopg://user@host/db, "
                        "sqlite:////path/registry.db) or an edmctl home folder.")
    if "://" not in where:
        try:
            home = Path(where).expanduser().resolve()
        except (RuntimeError, ValueError) as e:  # ~user of no known user; a NUL byte
            raise UserError(f"{what} {where!r}: {e}") from None
        return Registry(home, url=f"sqlite:///{home / 'registry.db'}", create=create)
    url = db.with_driver(where, what)
    sqlite_file = db.sqlite_path(url)
    return Registry(sqlite_file.parent if sqlite_file is not None else None, url=url, create=create)


@dataclass
class Copy:
    """What `read_copy` read from the source: the runs by generation, their metric rows and artifact records."""

    source: Registry
    runs: list[list[RunRecord]]
    metrics: list
    latest: list
    artifacts: list


def copy_runs(source: Registry, target: Registry, refs: list[str]) -> CopyReport:
    """Copy the runs `refs` name (with their lineage) from `source` into `target`; see the module docstring."""
    return write_copy(read_copy(source, refs), target)


def read_copy(source: Registry, refs: list[str]) -> Copy:
    """Everything to copy, read (and refused: an unknown run, a run still running, a damaged record) before any
    target is made."""
    runs = lineage(source, [source.get(ref).id for ref in refs])
    live = [run.label for generation in runs for run in generation if run.status == "running" and not is_stale(run)]
    if live:
        raise UserError(f"{', '.join(live)} still running; copy when it has ended (`edmctl runs` shows its status).")
    with db.read(source.engine) as conn:
        ids = [run.id for generation in runs for run in generation]
        metrics = conn.execute(select(METRICS).where(METRICS.c.run_id.in_(ids)).order_by(METRICS.c.id)).mappings().all()
        latest = conn.execute(select(LATEST).where(LATEST.c.run_id.in_(ids))).mappings().all()
        artifacts = conn.execute(select(ARTIFACTS).where(ARTIFACTS.c.run_id.in_(ids)).order_by(ARTIFACTS.c.id)).mappings().all()
    return Copy(source, runs, [checked(row) for row in metrics], [checked(row) for row in latest], artifacts)


def write_copy(copy: Copy, target: Registry) -> CopyReport:
    """Write what `read_copy` read into `target`, in one transaction."""
    if copy.source.url == target.url:
        raise UserError(f"--to/--from names the registry the runs are in ({db.shown(target.url)}); name another one.")
    artifacts = [{**row, "path": target.stored_path(copy.source.artifact_path(ArtifactRecord(**row)))} for row in copy.artifacts]
    return db.write(target.engine, lambda conn: _write(conn, copy.runs, copy.metrics, copy.latest, artifacts))


def lineage(registry: Registry, run_ids: list[int]) -> list[list[RunRecord]]:
    """The runs, their ancestors and their descendants, by generation: a run's parent is in an earlier one (or
    not copied). One query per ancestor and one per generation of descendants (a sweep of 10k trials: two)."""
    chosen: dict[int, RunRecord] = {}
    for run_id in run_ids:
        chosen[run_id] = run = registry.get(run_id)
        while run.parent_id is not None and run.parent_id not in chosen:  # ancestors: the parent link must hold
            run = registry.get(run.parent_id)
            chosen[run.id] = run
    frontier = list(run_ids)
    while frontier:  # descendants, a generation at a time
        children = [child for child in registry.children_of(frontier) if child.id not in chosen]
        chosen.update((child.id, child) for child in children)
        frontier = [child.id for child in children]
    return generations(chosen)


def generations(runs: dict[int, RunRecord]) -> list[list[RunRecord]]:
    """`runs` in generations, each in id order: first those whose parent is not among them, then their children..."""
    placed: set[int] = set()
    remaining, result = sorted(runs.values(), key=lambda r: r.id), []
    while remaining:
        ready = [r for r in remaining if r.parent_id not in runs or r.parent_id in placed] or remaining  # (a cycle)
        result.append(ready)
        placed.update(r.id for r in ready)
        remaining = [r for r in remaining if r.id not in placed]
    return result


def _write(conn: Connection, runs: list[list[RunRecord]], metrics, latest, artifacts) -> CopyReport:
    db.lock_name(conn, "runs copy")  # two copies into one server: the second finds what the first wrote
    report = CopyReport()
    uids = [run.uid for generation in runs for run in generation]
    known = dict(conn.execute(select(RUNS.c.uid, RUNS.c.id).where(RUNS.c.uid.in_(uids))).all())
    for generation in runs:  # parents first: each generation's parent links map to ids written before
        report.present.update((run.id, known[run.uid]) for run in generation if run.uid in known)
        new = [run for run in generation if run.uid not in known]
        rows = [{**{c.name: getattr(run, c.name) for c in RUNS.columns if c.name != "id"},
                 "parent_id": _mapped(report, run.parent_id)} for run in new]
        if rows:
            ids = conn.execute(insert(RUNS).returning(RUNS.c.id, sort_by_parameter_order=True), rows).scalars().all()
            report.copied.update(zip((run.id for run in new), ids))
    for table, rows in ((METRICS, metrics), (LATEST, latest), (ARTIFACTS, artifacts)):
        new_rows = [{**{k: v for k, v in row.items() if k != "id"}, "run_id": report.copied[row["run_id"]]}
                    for row in rows if row["run_id"] in report.copied]
        if new_rows:
            conn.execute(insert(table), new_rows)
    report.metric_rows = sum(row["run_id"] in report.copied for row in metrics)
    report.artifact_rows = sum(row["run_id"] in report.copied for row in artifacts)
    return report


def _mapped(report: CopyReport, run_id: int | None) -> int | None:
    """The target's id of a source run copied now or before (its parent, copied first)."""
    if run_id is None:
        return None
    return report.copied.get(run_id, report.present.get(run_id))
