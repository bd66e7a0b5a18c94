"""The registry's tables (SQLModel): runs, their metrics (full history plus a latest-value table) and artifacts.

Times are UNIX seconds (float). Lists and dicts (recipe, seeds, argv, devices, extra) are stored as JSON text,
so the schema is the same on SQLite and on a shared team database. That JSON is standard JSON (`dump_json`):
a non-finite float (the default `sampler.s_tmax = inf`) is stored as the string "inf", "-inf" or "nan", which
SQLite's `json_extract` reads (it rejects Python's `Infinity`), and decoded back to a float on read (`load_json`).
"""

import json
import math
import uuid
from typing import Any, Optional

from sqlalchemy import Column, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

SCHEMA_VERSION = 4  # v4: runs.uid (a run's identity across registries); see migrations.py

KINDS = ("train", "sample", "fid", "sweep", "ablate", "reproduce", "steps", "import")
STATUSES = ("queued", "running", "done", "failed", "interrupted")
ARTIFACT_KINDS = ("checkpoint", "grid", "samples", "stats", "plot", "log", "env", "recipe")


def new_uid() -> str:
    """A run's identity across registries (`runs.uid`): 32 hex digits."""
    return uuid.uuid4().hex


class Meta(SQLModel, table=True):
    """Key/value facts about the database itself; `schema_version` is the one that matters."""

    __tablename__ = "registry_meta"
    key: str = Field(primary_key=True)
    value: str


class RunRecord(SQLModel, table=True):
    """One run: what was asked (recipe, seeds, argv), how it went (status, times) and where (environment)."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_kind_status", "kind", "status"),
        Index("ix_runs_status", "status"),
        Index("ix_runs_uid", "uid", unique=True),
        {"sqlite_autoincrement": True},  # ids are never reused after `runs rm`: run folders stay unambiguous
    )
    id: Optional[int] = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    uid: Optional[str] = Field(default=None, sa_column=Column(String, default=new_uid))  # unique across registries:
    # `runs copy` finds a copied run by it (set on every insert; NULL only in rows an old edmctl wrote, see v4)
    kind: str
    status: str
    name: Optional[str] = None
    parent_id: Optional[int] = Field(default=None, index=True)
    recipe_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    recipe_hash: Optional[str] = Field(default=None, index=True)
    seeds_json: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    argv_json: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    created: float
    started: Optional[float] = None
    ended: Optional[float] = None
    heartbeat: Optional[float] = None
    host: Optional[str] = None
    pid: Optional[int] = None
    process_ns: Optional[str] = None  # boot id / PID namespace in which `pid` means something (environment.py)
    cwd: Optional[str] = None
    git_commit: Optional[str] = None
    git_dirty: Optional[bool] = None
    python_version: Optional[str] = None
    torch_version: Optional[str] = None
    cuda_version: Optional[str] = None
    devices_json: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    world_size: Optional[int] = None
    packages_hash: Optional[str] = None
    error: Optional[str] = Field(default=None, sa_column=Column(Text))
    extra_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))

    @property
    def label(self) -> str:
        """How a run is shown and referred to: `run12`."""
        return f"run{self.id}"

    @property
    def recipe(self) -> dict[str, Any]:
        return load_json(self.recipe_json)

    @property
    def seeds(self) -> list[int]:
        return json.loads(self.seeds_json)

    @property
    def argv(self) -> list[str]:
        return json.loads(self.argv_json)

    @property
    def devices(self) -> list[str]:
        return json.loads(self.devices_json)

    @property
    def extra(self) -> dict[str, Any]:
        return load_json(self.extra_json)

    def checked(self) -> "RunRecord":
        """The record, after checking that every column holds what edmctl writes there (`damage`)."""
        problem = damage(self)
        if problem:
            from edmctl.errors import UserError

            raise UserError(f"The registry's record of {self.label} is damaged: {problem}; the database was edited or "
                            f"cut short: remove the run (`edmctl runs rm {self.label}`) or restore the database from a backup.")
        return self

    def as_dict(self) -> dict[str, Any]:
        """Everything about the run with the JSON columns decoded (for `--json` and for reproduce)."""
        doc = {k: v for k, v in self.model_dump().items() if not k.endswith("_json")}
        doc.update(run=self.label, recipe=self.recipe, seeds=self.seeds, argv=self.argv, devices=self.devices,
                   extra=self.extra)
        return doc


class MetricPoint(SQLModel, table=True):
    """The full history: one row per logged value."""

    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_run_key", "run_id", "key", "step"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int
    key: str
    step: Optional[int] = None
    value: Optional[float] = None  # NaN is stored as NULL (SQLite has no NaN)
    time: float


class LatestMetric(SQLModel, table=True):
    """One row per (run, key): the latest value and the running min/max, so listing and compare never scan history."""

    __tablename__ = "latest_metrics"
    run_id: int = Field(primary_key=True)
    key: str = Field(primary_key=True)
    value: Optional[float] = None
    step: Optional[int] = None
    time: float
    min: Optional[float] = None
    max: Optional[float] = None
    count: int = 1

    @property
    def best(self) -> Optional[float]:
        """The best value so far: the max for rates and scores (`higher_is_better`), else the min (FID, loss)."""
        return self.max if higher_is_better(self.key) else self.min


class ArtifactRecord(SQLModel, table=True):
    """A file a run produced; `path` is relative to the home so a home can be moved or copied."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("run_id", "path", name="uq_artifacts_run_path"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(index=True)
    kind: str
    path: str
    sha256: str
    bytes: int
    step: Optional[int] = None
    time: float


TABLES = [Meta.__table__, RunRecord.__table__, MetricPoint.__table__, LatestMetric.__table__, ArtifactRecord.__table__]
RUN_COLUMNS = frozenset(c.name for c in RunRecord.__table__.columns)

_HIGHER_IS_BETTER = ("is", "inception_score", "precision", "recall", "accuracy", "psnr", "ssim")


def higher_is_better(key: str) -> bool:
    """Rates (`*_per_s`) and scores such as precision or IS improve upward; FID, KID, losses and errors downward."""
    return key.endswith("_per_s") or key in _HIGHER_IS_BETTER


NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def encode_non_finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by its name in `NON_FINITE` (lists and dicts walked)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {key: encode_non_finite(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_non_finite(v) for v in value]
    return value


def decode_non_finite(value: Any) -> Any:
    """The inverse of `encode_non_finite`: the strings "inf", "-inf" and "nan" become floats again."""
    if isinstance(value, str):
        return NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {key: decode_non_finite(v) for key, v in value.items()}
    if isinstance(value, list):
        return [decode_non_finite(v) for v in value]
    return value


def dump_json(value: Any, sort_keys: bool = False) -> str:
    """Standard JSON (no `Infinity`/`NaN` tokens) for a recipe or extra column; objects JSON lacks as text."""
    return json.dumps(encode_non_finite(value), sort_keys=sort_keys, default=str, allow_nan=False)


def load_json(text: str) -> Any:
    """A recipe or extra column decoded, non-finite floats restored (older rows' `Infinity` is read as well)."""
    value = json.loads(text)
    return decode_non_finite(value) if any(f'"{name}"' in text for name in NON_FINITE) else value


TIME_MAX = 253402300799.0  # 9999-12-31 23:59:59 UTC, the last second `time.localtime` and `datetime` can show
PID_MAX = 2**22  # Linux's largest pid_max
# A JSON column's type, and its items' where they are used one by one.
JSON_COLUMNS: dict[str, tuple[type, type | None]] = {"recipe_json": (dict, None), "extra_json": (dict, None),
                                                     "seeds_json": (list, int), "argv_json": (list, str),
                                                     "devices_json": (list, str)}


def _is(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))


def damage(record: "RunRecord") -> str | None:
    """What in `record` is not as edmctl writes it (text in a time column, a time past year 9999, a PID no process
    has, a run that is its own parent, JSON that does not decode to its column's type), or None."""
    for column in ("created", "started", "ended", "heartbeat"):
        value = getattr(record, column)
        if value is not None and not ((_is(value, float) or _is(value, int)) and 0 <= value <= TIME_MAX):
            return f"{column} is {value!r}, not a time"
    for column, low, high in (("pid", 1, PID_MAX), ("world_size", 1, PID_MAX), ("parent_id", 1, None)):
        value = getattr(record, column)
        if value is not None and not (_is(value, int) and low <= value and (high is None or value <= high)):
            return f"{column} is {value!r}"
    if record.parent_id is not None and record.parent_id == record.id:
        return "it is its own parent"
    for column, (kind, item) in JSON_COLUMNS.items():
        try:
            value = load_json(getattr(record, column))
        except (TypeError, ValueError):
            value = None
        if not _is(value, kind) or (item is not None and not all(_is(v, item) for v in value)):
            return f"{column} holds {str(getattr(record, column))[:60]!r}, not a JSON {kind.__name__}" + (
                f" of {item.__name__}s" if item else "")
    return None


NUMBER_COLUMNS = {"value": float, "min": float, "max": float, "step": int}  # of metric rows, each may be None


def metric_damage(row: Any) -> str | None:
    """What in a metric row (a MetricPoint, LatestMetric or a mapping of its columns) is not a number where one
    belongs (text written into the database by hand), or None."""
    get = row.get if isinstance(row, dict) or hasattr(row, "keys") else lambda name: getattr(row, name, None)
    for column, kind in NUMBER_COLUMNS.items():
        value = get(column)
        if value is not None and not (_is(value, kind) or (kind is float and _is(value, int))):
            return f"metric {get('key')!r} of run{get('run_id')} has {column} {value!r}, not a number"
    return None


def checked(row: Any) -> Any:
    """A row as read, after checking it holds what edmctl writes (`damage`, `metric_damage`); a UserError naming
    what is damaged otherwise."""
    if isinstance(row, RunRecord):
        return row.checked()
    problem = metric_damage(row) if isinstance(row, (MetricPoint, LatestMetric, dict)) or hasattr(row, "keys") else None
    if problem:
        from edmctl.errors import UserError

        raise UserError(f"The registry's record is damaged: {problem}; the database was edited or cut short: restore "
                        f"it from a backup, or remove the run.")
    return row


def finite_or_none(value: float) -> Optional[float]:
    value = float(value)
    return None if math.isnan(value) else value
