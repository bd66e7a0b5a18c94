"""`edmctl runs copy RUN... --to URL` / `--from URL`: runs moved between this registry and another one."""

from typing import Annotated, Optional

import typer

from edmctl.cli.common import JsonOpt, emit, out
from edmctl.cli.runs import runs_app
from edmctl.errors import UserError

WhereOpt = "A database URL (postgresql+psycopg://user@host/db, sqlite:////path/registry.db) or an edmctl home folder."


def copy(
    runs: Annotated[list[str], typer.Argument(metavar="RUN...", help="Runs to copy (run12, 12, latest), each with its ancestors and descendants.")],
    to: Annotated[Optional[str], typer.Option("--to", metavar="URL", help=f"Copy from this registry into that one. {WhereOpt}")] = None,
    source: Annotated[Optional[str], typer.Option("--from", metavar="URL", help=f"Copy from that registry into this one. {WhereOpt}")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy runs with their metrics, artifact records and lineage into another registry (ids renumbered there);
    runs the target already holds are left as they are, so copying twice adds nothing. Files are not moved."""
    from edmctl.registry import Registry
    from edmctl.registry.copy import read_copy, registry_at, write_copy

    if (to is None) == (source is None):
        raise UserError("runs copy needs exactly one of --to URL (from this registry) or --from URL (into this one).")
    if to is not None:  # all is read, and bad input refused, before the target is created
        report = write_copy(read_copy(Registry(create=False), runs), registry_at(to, create=True, what="--to"))
    else:
        report = write_copy(read_copy(registry_at(source, create=False, what="--from"), runs), Registry(create=True))
    doc = {"copied": {f"run{a}": f"run{b}" for a, b in report.copied.items()},
           "already_there": {f"run{a}": f"run{b}" for a, b in report.present.items()},
           "metric_rows": report.metric_rows, "artifact_rows": report.artifact_rows}
    emit(doc, as_json, lambda: out.print(_summary(doc), highlight=False))


def _summary(doc: dict) -> str:
    pairs = lambda mapping: ", ".join(f"{a} -> {b}" for a, b in mapping.items())
    lines = [f"copied {len(doc['copied'])} run(s){': ' + pairs(doc['copied']) if doc['copied'] else ''} "
             f"({doc['metric_rows']} metric value(s), {doc['artifact_rows']} artifact record(s))"]
    if doc["already_there"]:
        lines.append(f"already there, left as they are: {pairs(doc['already_there'])}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    runs_app.command("copy")(copy)
