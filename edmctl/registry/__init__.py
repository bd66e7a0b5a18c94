"""The reproducibility registry: every run recorded with its recipe, seeds, code and environment.

Record a run (every command does this around its work)::

    from edmctl.registry import open_run, Registry
    with open_run(kind="sample", recipe=recipe_dict, recipe_hash="…", seeds=[0, 1, 2], argv=sys.argv,
                  parent=None, name=None, home=None) as run:   # home: default edmctl.paths.home()
        run.id            # int, shown as f"run{run.id}"
        run.dir           # pathlib.Path $EDMCTL_HOME/run{id}, created
        run.log_metric("fid", 3.1, step=None)          # also updates the latest-value table
        run.log_metrics({"loss": 0.1, "imgs_per_s": 40.0}, step=128)
        run.add_artifact(path, kind="samples", step=None)   # sha256 + bytes; path stored relative to home
        run.update(nfe=35, world_size=1, devices=["cpu"])   # run columns by name; other names go to `extra`

- `kind`: train, sample, fid, sweep, ablate, reproduce, import. `parent`: a run id or ref (`run12`, `12`, `latest`):
  a sample run's training run, a trial's sweep, the original of a reproduction.
- Opening records the environment (host, pid, cwd, git commit + dirty flag with the diff as an `env`
  artifact, Python/torch/CUDA versions, devices, world size, a hash of the installed packages with the list as
  an `env` artifact), marks the run running and starts a heartbeat thread (every `run.HEARTBEAT_S` seconds).
- The run ends as `done` on a normal exit; `failed` with the error text on an exception; `interrupted` on
  KeyboardInterrupt or SIGTERM (SIGTERM raises `Terminated`, a KeyboardInterrupt, while the run is open).
  If the body raises `edmctl.errors.UserError`, the run's row, records and folder are removed (nothing
  half-done is recorded) and the error propagates.
- Artifact kinds: checkpoint, grid (a sample grid during training), samples, stats, plot, log, env, recipe. A
  folder artifact is hashed over its sorted file names and file hashes (`run.content_hash`), so `reproduce` can
  compare sample folders bitwise.

Queue runs to start later (a sweep's trials; see `queue.py`)::

    run_id = queue_run(kind="sample", recipe=..., recipe_hash=..., parent=sweep_id, extra={...})  # status queued
    with start_run(run_id) as run: ...   # queued/failed/interrupted -> running -> done/failed/interrupted
    group = queue_group(parent_columns, [child_columns, ...])   # find-or-queue a parent and its children at once
    with start_next(group.parent_id) as run: ...   # claim the oldest queued child (None: none left); atomic

Query (reads never write, except reaping runs whose process is gone)::

    reg = Registry(home=None, url=None)   # url: default $EDMCTL_DB_URL, else sqlite:///$EDMCTL_HOME/registry.db
    reg.get("run12") / reg.get("12") / reg.get("latest")  -> RunRecord   (unknown -> UserError, one line)
    reg.list(kind=None, status=None, where={"sampler.steps": 18}, limit=50) -> list[RunRecord], newest first
    reg.get("latest", kind="sweep")   (latest: the newest run of that kind, or of any of several kinds)
    reg.latest(kind="train", status="done") -> RunRecord | None
    reg.latest_standalone(("train", "import")) -> RunRecord | None   (no trial of a sweep or ablation)
    reg.metrics(run_id) -> dict[key, LatestMetric]   (.value latest, .step, .min, .max, .best, .count)
    reg.history(run_id, key) -> list[MetricPoint]
    reg.artifacts(run_id) -> list[ArtifactRecord];  reg.artifact_path(artifact) -> Path
    reg.outputs(run_id) -> list[Path]   (the files a run and its children wrote: artifacts but `env`)
    reg.reap() -> list[int]   (running runs whose pid is gone, or whose heartbeat is stale on another host)
    reg.latest_metrics([run_id, ...]) -> {run_id: {key: LatestMetric}};  reg.latest_values(ids) -> {id: {key: value}}
    reg.children(run_id) -> list[RunRecord];  reg.children_of([run_id, ...]) -> list[RunRecord]   (one query)
    reg.run_dir(run_id) -> Path;  reg.exists -> bool (False: no database yet, every query answers empty)
    reg.removal_plan(ref, files=False) -> RemovalPlan;  reg.remove(plan)   (what `edmctl runs rm` does)
    compare(reg, ["run12", "run17"], all_fields=False) -> {"runs", "recipe", "metrics", "environment", ...}

Copy runs to another registry (what `edmctl runs copy` does; `copy.py`)::

    copy_runs(Registry(), registry_at("postgresql+psycopg://me@db/team", create=True), ["run12"]) -> CopyReport
    # .copied / .present: {source id: target id}; with ancestors and descendants; idempotent by runs.uid

A `RunRecord` has the columns plus decoded `.recipe`, `.seeds`, `.argv`, `.devices`, `.extra`, `.label`
("run12") and `.as_dict()`: everything `edmctl reproduce` needs to re-run it as
`open_run(kind="reproduce", recipe=r.recipe, recipe_hash=r.recipe_hash, seeds=r.seeds, argv=sys.argv,
parent=r.id)`.

Concurrency (SQLite): WAL, a busy timeout, `BEGIN IMMEDIATE` write transactions that are short and retried
(`db.py`); schema creation and upgrades once under a file lock, with the version stored (`migrations.py`).
Concurrency (PostgreSQL, `EDMCTL_DB_URL=postgresql+psycopg://...`): the same schema and upgrades under an
advisory lock; row locks where a write decides on what it read (`FOR UPDATE`, claims `SKIP LOCKED`, queue.py);
deadlocks and serialization failures retried. Artifact paths are stored absolute there (`Registry.stored_path`).
"""

from edmctl.registry.compare import compare
from edmctl.registry.run import Run, Terminated, content_hash, open_run
from edmctl.registry.queue import AlreadyStarted, queue_group, queue_run, start_next, start_run
from edmctl.registry.schema import ArtifactRecord, LatestMetric, MetricPoint, RunRecord
from edmctl.registry.store import Registry, RemovalPlan

__all__ = ["open_run", "queue_run", "queue_group", "start_run", "start_next", "AlreadyStarted", "Run", "Terminated", "content_hash", "Registry", "RemovalPlan", "RunRecord", "LatestMetric",
           "MetricPoint", "ArtifactRecord", "compare"]
