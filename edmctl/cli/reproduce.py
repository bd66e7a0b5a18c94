"""`edmctl reproduce RUN`: re-execute a run with its recorded recipe and seeds, compare, print the verdict."""

from typing import Annotated

import typer

from edmctl.cli.common import JsonOpt, emit, out, print_files, run_outputs, styled
from edmctl.cli.tables import print_table
from edmctl.errors import CheckFailed


def reproduce(
    run: Annotated[str, typer.Argument(help="The run to reproduce: run12, 12 or latest.")],
    as_json: JsonOpt = False,
) -> None:
    """Re-run RUN (a sample, train or fid run) as a new run linked to it and compare the outputs; exit 1 on a mismatch."""
    from edmctl.reproduce import reproduce as reproduce_run

    verdict = reproduce_run(run)
    files = run_outputs(verdict.reproduction)

    def render() -> None:
        from rich.table import Table

        table = Table(title=f"{verdict.reproduction} reproduces {verdict.original}")
        for column in ("check", "tolerance", "result", "detail"):
            table.add_column(column)
        for c in verdict.checks:
            table.add_row(c.name, c.tolerance, styled("match", "green") if c.ok else styled("MISMATCH", "red"), c.detail)
        print_table(table)
        for note in verdict.notes:
            out.print(f"note: {note}", highlight=False)
        out.print(f"verdict: {'reproduced' if verdict.ok else 'NOT reproduced'}", highlight=False)
        print_files(files)

    emit({**verdict.as_dict(), "files": [str(f) for f in files]}, as_json, render)
    if not verdict.ok:
        raise CheckFailed(f"{verdict.reproduction} does not reproduce {verdict.original}.")


def register(app: typer.Typer) -> None:
    app.command("reproduce")(reproduce)
