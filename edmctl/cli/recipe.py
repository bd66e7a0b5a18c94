"""`edmctl recipe show|validate`: print a resolved recipe and its hash; check recipe files."""

from pathlib import Path
from typing import Annotated

import typer

from edmctl.cli.common import JsonOpt, SetOpt, emit, out, print_error
from edmctl.cli.tables import print_table

recipe_app = typer.Typer(help="Show and validate recipes.", no_args_is_help=True)


@recipe_app.command("show")
def show(
    file: Annotated[Path | None, typer.Argument(help="Recipe TOML file (default: the paper's EDM recipe).")] = None,
    set_: SetOpt = None,
    as_toml: Annotated[bool, typer.Option("--toml", help="Print the resolved recipe as a TOML file that loads back to the same recipe (same sha256).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Print the resolved recipe (every default filled in) and its sha256."""
    from edmctl.errors import UserError
    from edmctl.recipe import load_recipe
    from edmctl.recipe.write import recipe_toml

    if as_toml and as_json:
        raise UserError("give --toml or --json, not both.")
    recipe = load_recipe(file, set_)
    doc = {"file": str(file) if file else None, "hash": recipe.hash(), "recipe": recipe.canonical()}
    if as_toml:
        origin = " ".join([str(file) if file else "the default recipe", *(f"--set {s}" for s in set_ or [])])
        print(recipe_toml(doc["recipe"], [f"{origin}, resolved by `edmctl recipe show --toml`", f"sha256 {doc['hash']}"]), end="")
        return

    def render() -> None:
        from rich.table import Table

        table = Table(title=f"recipe {file or '(defaults)'}", caption=f"sha256 {doc['hash']}")
        table.add_column("field")
        table.add_column("value")
        for section, fields in doc["recipe"].items():
            for name, value in fields.items():
                table.add_row(f"{section}.{name}", repr(value) if isinstance(value, str) else str(value))
        print_table(table)

    emit(doc, as_json, render)


@recipe_app.command("validate")
def validate(
    files: Annotated[list[Path], typer.Argument(help="Recipe files to check.")],
    as_json: JsonOpt = False,
) -> None:
    """Check recipe files (and sweep files: every trial): exit 0 when all are valid, 2 when any is not."""
    from edmctl.errors import UserError

    results = []
    for file in files:
        try:
            results.append({"file": str(file), "valid": True, **_check(file)})
        except UserError as e:
            results.append({"file": str(file), "valid": False, "error": str(e)})
            print_error(e)

    def render() -> None:
        for r in results:
            detail = (f"  sweep of {r['trials']} trials" if "trials" in r else f"  {r['hash'][:12]}") if r["valid"] else ""
            out.print(f"{'ok     ' if r['valid'] else 'invalid'} {r['file']}{detail}", highlight=False)

    emit(results, as_json, render)
    if not all(r["valid"] for r in results):
        raise typer.Exit(2)


def _check(file: Path) -> dict:
    """A recipe's hash, or for a sweep file (it names a `base` recipe) the number of valid trials."""
    from edmctl.recipe import load_recipe
    from edmctl.recipe.load import read_toml

    if "base" in read_toml(file):
        from edmctl.sweep import plan_sweep, read_sweep

        return {"trials": len(plan_sweep(read_sweep(file)))}
    return {"hash": load_recipe(file).hash()}


def register(app: typer.Typer) -> None:
    app.add_typer(recipe_app, name="recipe")
