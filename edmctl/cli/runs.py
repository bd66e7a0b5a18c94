"""`edmctl runs [reap|rm]`, `edmctl show` and `edmctl compare`: list, inspect, compare and remove recorded runs.

Read commands never write, except reaping runs whose process is gone.
"""

import time
from typing import Annotated, Any

import typer

from edmctl.cli.common import JsonOpt, emit, out, styled
from edmctl.cli.plot import PlotOutOpt, write_curves
from edmctl.cli.tables import print_table

RECIPE_COLUMNS = (("solver", "sampler.solver"), ("steps", "sampler.steps"), ("precond", "precond.kind"),
                  ("data", "data.source"))
STATUS_STYLE = {"done": "green", "running": "cyan", "queued": "blue", "failed": "red", "interrupted": "yellow"}
RunArg = Annotated[str, typer.Argument(metavar="RUN", help="run12, 12 or latest.")]

runs_app = typer.Typer(help="List recorded runs (newest first); `runs reap`, `runs rm RUN`, `runs copy RUN... --to URL`, "
                            "`runs tensorboard RUN...`.",
                       invoke_without_command=True)


# -- formatting ---------------------------------------------------------------------------------------------


def fmt(value: Any) -> str:
    """A value for a table cell: floats to 6 significant digits, None as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def age(seconds_ago: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds_ago >= size:
            return f"{seconds_ago / size:.0f}{unit}"
    return f"{max(seconds_ago, 0):.0f}s"


def seeds_text(seeds: list[int]) -> str:
    """0-49999 (50000 seeds) for a contiguous range, else the first few."""
    if len(seeds) > 3 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]} ({len(seeds)} seeds)"
    return fmt(seeds[:8]) + (f", … ({len(seeds)} seeds)" if len(seeds) > 8 else "")


def dig(tree: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def main_metrics(metrics: dict[str, Any], count: int = 2) -> dict[str, Any]:
    """The metrics a listing shows: FID and KID first, then loss, then the rest alphabetically."""
    def rank(key: str) -> tuple[int, str]:
        return (0 if key.startswith("fid") else 1 if key.startswith("kid") else 2 if key == "loss" else 3, key)

    return {key: metrics[key] for key in sorted(metrics, key=rank)[:count]}


def styled_status(status: str) -> str:
    return styled(status, STATUS_STYLE.get(status, "white"))


def registry():
    from edmctl.registry import Registry

    return Registry()


# -- runs -------------------------------------------------------------------------------------------------


@runs_app.callback()
def runs(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option(help="Only this kind: train, sample, fid, sweep, ablate, reproduce, import.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status: queued, running, done, failed, interrupted.")] = None,
    where: Annotated[list[str] | None, typer.Option(metavar="FIELD=VALUE",
                     help="Only runs whose column, recipe field (sampler.steps) or extra.FIELD equals VALUE; repeatable.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List recorded runs, newest first (stale running runs are reaped first)."""
    if ctx.invoked_subcommand:
        return
    reg = registry()
    records = reg.list(kind=kind, status=status, where=parse_where(where or []), limit=limit)
    latest = reg.latest_values([r.id for r in records])
    rows = [{"run": r.label, "kind": r.kind, "status": r.status, "name": r.name, "parent": r.parent_id,
             **{label: dig(r.recipe, dotted) for label, dotted in RECIPE_COLUMNS},
             "metrics": main_metrics(latest[r.id]), "created": r.created} for r in records]
    emit(rows, as_json, lambda: out.print(runs_table(rows)))


def parse_where(items: list[str]) -> dict[str, str]:
    from edmctl.errors import UserError

    where = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--where takes FIELD=VALUE (e.g. sampler.steps=18), not {item!r}.")
        where[name.strip()] = value.strip()
    return where


def runs_table(rows: list[dict[str, Any]]):
    """The listing as one rich Text: every column padded to its widest cell, only the status coloured. Laying
    out plain strings costs milliseconds for 50 rows, where a rich Table measures and wraps every cell (~0.2 s).
    Columns empty in every row are left out; a line wider than the terminal wraps, nothing is cut."""
    from rich.text import Text

    now = time.time()
    cells = [{"run": row["run"], "kind": row["kind"], "status": row["status"], "name": fmt(row["name"]),
              **{label: fmt(row[label]) for label, _ in RECIPE_COLUMNS},
              "metrics": " ".join(f"{k}={fmt(v)}" for k, v in row["metrics"].items()),
              "age": age(now - row["created"])} for row in rows]
    columns = [c for c in ("run", "kind", "status", "name", *(label for label, _ in RECIPE_COLUMNS), "metrics", "age")
               if c in ("run", "kind", "status", "age") or any(cell[c] for cell in cells)]
    widths = {c: max([cell_width(c), *(cell_width(cell[c]) for cell in cells)]) for c in columns}
    text = Text()
    append_line(text, {c: c for c in columns}, widths, style="bold")
    for cell in cells:
        text.append("\n")
        append_line(text, {c: cell[c] for c in columns}, widths)
    if not rows:
        text.append("\nno runs recorded", style="dim")
    return text


RIGHT_ALIGNED = ("run", "age")


def cell_width(value: str) -> int:
    from rich.cells import cell_len

    return cell_len(value)


def padded(value: str, width: int, right: bool, last: bool = False) -> str:
    """`value` padded with spaces to `width` terminal cells (left or right aligned; no trailing spaces at the end)."""
    fill = " " * (width - cell_width(value))
    return fill + value if right else value if last else value + fill


def append_line(text, values: dict[str, str], widths: dict[str, int], style: str | None = None) -> None:
    """One line of the listing: cells padded to the column widths, one space apart; `style` for every cell,
    else the status cell in its colour."""
    last = len(values) - 1
    for i, (column, value) in enumerate(values.items()):
        text.append(" " if i else "")
        cell_style = style or (STATUS_STYLE.get(value, "white") if column == "status" else None)
        text.append(padded(value, widths[column], column in RIGHT_ALIGNED, last=i == last), style=cell_style)


@runs_app.command("reap")
def reap(as_json: JsonOpt = False) -> None:
    """Mark interrupted the running runs whose process is gone (or whose host stopped beating), and remove the
    temporary files and staging folders killed writers left in run folders."""
    reg = registry()
    reaped = reg.reap()
    removed = reg.remove_leftovers() if reg.exists else []
    emit({"reaped": [f"run{i}" for i in reaped], "removed_leftovers": [str(p) for p in removed]}, as_json,
         lambda: out.print(f"reaped {len(reaped)} run(s)" + (": " + ", ".join(f"run{i}" for i in reaped) if reaped else "")
                           + f"; removed {len(removed)} leftover temporary file(s) or folder(s)", highlight=False))


@runs_app.command("rm")
def rm(
    run: RunArg,
    files: Annotated[bool, typer.Option("--files", help="Also delete the run folder and everything in it.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be deleted, delete nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a run's records (and with --files its folder), saying exactly what is deleted."""
    reg = registry()
    plan = reg.removal_plan(run, files=files)
    label = f"run{plan.run_ids[0]}"
    folder = reg.run_dir(plan.run_ids[0])
    lines = [f"{'would delete' if dry_run else 'deleting'} {label}: its registry row, {plan.metric_rows} metric "
             f"value(s), {plan.artifact_rows} artifact record(s)"]
    if plan.orphaned_children:
        lines.append("  unlinking child run(s) " + ", ".join(f"run{i}" for i in plan.orphaned_children))
    if plan.folders:
        lines.append(f"  and the folder {folder} ({plan.folder_bytes} bytes)")
    elif folder.exists():
        lines.append(f"  keeping the folder {folder} (add --files to delete it)")
    if not dry_run:
        reg.remove(plan)
    doc = {"run": label, "dry_run": dry_run, "metric_rows": plan.metric_rows, "artifact_rows": plan.artifact_rows,
           "unlinked_children": [f"run{i}" for i in plan.orphaned_children],
           "deleted_folders": [str(f) for f in plan.folders], "folder_bytes": plan.folder_bytes}
    emit(doc, as_json, lambda: out.print("\n".join(lines), highlight=False))


# -- show -------------------------------------------------------------------------------------------------


def show(run: RunArg, as_json: JsonOpt = False,
         plot: Annotated[bool, typer.Option("--plot", help="Also write its curves (loss per σ bin, loss, lr, EMA β, images/s, FID against kimg) and print the path.")] = False,
         out_path: PlotOutOpt = None) -> None:
    """A run's recipe, metrics (latest and best), artifacts with sha256, sample grids by kimg (a resumed run's
    continue its parent's) and environment; `--plot`: its curves."""
    from edmctl.train.curves import grids

    reg = registry()
    reg.reap()
    record = reg.get(run)
    doc = record.as_dict()
    doc["metrics"] = {key: {"latest": m.value, "step": m.step, "best": m.best, "min": m.min, "max": m.max,
                            "count": m.count} for key, m in reg.metrics(record.id).items()}
    doc["artifacts"] = [{"kind": a.kind, "path": a.path, "sha256": a.sha256, "bytes": a.bytes, "step": a.step,
                         "on_this_node": reg.artifact_path(a).exists()} for a in reg.artifacts(record.id)]
    doc["children"] = [c.label for c in reg.children(record.id)]
    doc["grids"] = [{"kimg": step / 1000, "path": str(path)} for step, path in grids(reg, record)]
    if plot or out_path is not None:
        doc["plot"] = str(write_curves([record.label], out_path, None))
        doc["files"] = [doc["plot"]]  # what `show` wrote, as every command that writes lists it
    emit(doc, as_json, lambda: (render_show(doc), doc.get("plot") and out.print(f"plot: {doc['plot']}", highlight=False)))


def _pairs_table(title: str, pairs: list[tuple[str, Any]]):
    from rich.table import Table

    table = Table(title=title, title_justify="left", title_style="bold", box=None, show_header=False, pad_edge=False)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in pairs:
        if value is None or value == "" or value == []:
            continue  # an empty row says nothing
        table.add_row(name, value if isinstance(value, str) else fmt(value))
    return table


def render_show(doc: dict[str, Any]) -> None:
    from rich.table import Table

    from edmctl.registry.compare import flatten

    ended = doc["ended"] or time.time()
    print_table(_pairs_table(f"{doc['run']}  {doc['kind']}", [
        ("status", styled_status(doc["status"])), ("name", doc["name"]), ("parent", f"run{doc['parent_id']}" if doc["parent_id"] else None),
        ("children", doc["children"]), ("created", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(doc["created"]))),
        ("duration", f"{ended - (doc['started'] or doc['created']):.1f} s"), ("error", doc["error"]),
        ("argv", " ".join(doc["argv"])), ("seeds", seeds_text(doc["seeds"])), ("recipe hash", doc["recipe_hash"]),
        *sorted(doc["extra"].items())]))
    print_table(_pairs_table("recipe", list(flatten(doc["recipe"]).items())))
    metrics = Table(title="metrics", title_justify="left", title_style="bold", box=None, header_style="dim", pad_edge=False)
    for column in ("key", "latest", "step", "best", "count"):
        metrics.add_column(column, justify="left" if column == "key" else "right")
    for key, m in doc["metrics"].items():
        metrics.add_row(key, fmt(m["latest"]), fmt(m["step"]), fmt(m["best"]), str(m["count"]))
    print_table(metrics)
    artifacts = Table(title="artifacts", title_justify="left", title_style="bold", box=None, header_style="dim", pad_edge=False)
    for column in ("kind", "path", "bytes", "sha256"):
        artifacts.add_column(column, overflow="fold", justify="right" if column == "bytes" else "left")
    for a in doc["artifacts"]:
        artifacts.add_row(a["kind"], a["path"], str(a["bytes"]), a["sha256"])
    print_table(artifacts)
    import socket  # here, not at the top: `edmctl --help` imports this module

    for a in doc["artifacts"]:
        if not a["on_this_node"]:
            out.print(f"not on this node ({socket.gethostname()}): {a['path']} (moved, deleted, or on a filesystem "
                      "not mounted here at the same path)", highlight=False)
    if doc["grids"]:
        print_table(_pairs_table("sample grids (kimg)", [(f"{g['kimg']:g}", g["path"]) for g in doc["grids"]]))
    print_table(_pairs_table("environment", [(name, doc[name]) for name in (
        "host", "pid", "cwd", "git_commit", "git_dirty", "python_version", "torch_version", "cuda_version",
        "devices", "world_size", "packages_hash")]))


# -- compare ----------------------------------------------------------------------------------------------


COMPARE_MAX = 64  # runs side by side: more columns cannot be read, and 2,000 took over ten minutes (every pair)


def compare(
    runs_: Annotated[list[str], typer.Argument(metavar="RUN RUN [RUN ...]", help="Two or more runs: run12, 12 or latest.")],
    all_fields: Annotated[bool, typer.Option("--all", help="Every recipe and environment field, not only those that differ.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Runs side by side: the model, the recipe fields that differ (those that apply to each run's kind and
    solver), metrics, and environment differences."""
    from edmctl.errors import UserError
    from edmctl.recipe.applies import field_applies
    from edmctl.registry import compare as compare_runs

    if not 2 <= len(runs_) <= COMPARE_MAX:
        raise UserError(f"compare takes 2 to {COMPARE_MAX} runs (got {len(runs_)}), e.g. `edmctl compare run12 run17`; "
                        f"for more, list them with `edmctl runs --json`.")
    doc = compare_runs(registry(), runs_, all_fields=all_fields, applies=field_applies)

    def render() -> None:
        print_table(compare_table(doc, all_fields))
        for note in doc["notes"]:
            out.print(f"note: {note}", highlight=False)

    emit(doc, as_json, render)


def compare_table(doc: dict[str, Any], all_fields: bool):
    """A vertical table, one column per run, that reads well in 80 columns (long values fold)."""
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    table.add_column("field", style="dim", overflow="fold", max_width=30)
    for label in doc["runs"]:
        table.add_column(label, overflow="fold")
    table.add_row("kind", *doc["kind"])
    table.add_row("status", *(styled_status(s) for s in doc["status"]))
    if any(doc["model"]):
        table.add_row("model", *(fmt(m) for m in doc["model"]))
    table.add_row("recipe hash", *(fmt(h)[:12] for h in doc["recipe_hash"]))
    qualifier = "" if all_fields else " (differences)"
    for title, rows in ((f"recipe{qualifier}", doc["recipe"]), ("metrics (latest)", doc["metrics"]),
                        (f"environment{qualifier}", doc["environment"])):
        table.add_section()
        table.add_row(styled(title, "bold"), *([""] * len(doc["runs"])) if rows else ["none"] + [""] * (len(doc["runs"]) - 1))
        for name, values in rows.items():
            short = [fmt(v)[:12] if name in ("git_commit", "packages_hash") else fmt(v) for v in values]
            table.add_row(name, *short)
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
    app.command("show")(show)
    app.command("compare")(compare)
