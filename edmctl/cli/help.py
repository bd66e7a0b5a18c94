"""Readable `--help`: every value shown by a name (`--batch N`, `--model MODEL`, `fid measure TARGET`), not by
typer's type labels (`<int range>`, `{target}`), and every `--solver` listing the solver names of `SOLVERS`.

Applied to the click command tree once it is built (`readable`), so the command modules declare their parameters
plainly. Nothing here imports torch: the solver names are read from the source of `edmctl.design.solvers`, and
only when a help page is shown.
"""

from functools import lru_cache
from pathlib import Path

from typer.core import TyperArgument, TyperOption

# A value's type (typer >= 0.26 keeps the annotation, older typer a click type name) -> its metavar; others: the name.
METAVAR_OF_TYPE = {int: "N", Path: "PATH", "integer": "N", "integer range": "N", "path": "PATH"}
SOLVERS_SOURCE = Path(__file__).resolve().parents[1] / "design" / "solvers.py"


@lru_cache(maxsize=1)
def solver_names() -> tuple[str, ...]:
    """The keys of `edmctl.design.solvers.SOLVERS`, in order, from the module's source (importing it loads torch)."""
    import ast

    for node in ast.parse(SOLVERS_SOURCE.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["SOLVERS"]:
            return tuple(key.value for key in node.value.keys)
    raise LookupError(f"no SOLVERS table in {SOLVERS_SOURCE}")


class ReadableArgument(TyperArgument):
    """An argument shown by its metavar alone: `RUN` in the usage line and the help, not `{run}` / `run <str>`."""

    def get_usage_pieces(self, ctx) -> list[str]:
        return [self.metavar if self.required else f"[{self.metavar}]"]

    def get_help_record(self, ctx):
        record = super().get_help_record(ctx)
        return None if record is None else (self.metavar, record[1])


class SolverOption(TyperOption):
    """`--solver`: its help ends with the allowed names (read when the help is shown)."""

    def get_help_record(self, ctx):
        names, text = super().get_help_record(ctx)
        return names, f"{text} One of: {', '.join(solver_names())}."


def metavar(param) -> str:
    """N for integers, PATH for paths, else the parameter's name in capitals (FILES... for several)."""
    kind = getattr(getattr(param, "type_descriptor", None), "annotation", None) or getattr(param.type, "name", None)
    name = METAVAR_OF_TYPE.get(kind, param.name.upper())
    return name + ("..." if param.nargs != 1 else "")


def readable(command) -> None:
    """Give every parameter of `command` and its subcommands a readable metavar (where none was declared), shown
    as such; `--solver` options list the solvers."""
    for param in command.params:
        if isinstance(param, TyperArgument):
            param.metavar = param.metavar or metavar(param)
            param.__class__ = ReadableArgument
        elif isinstance(param, TyperOption) and not param.is_flag:
            param.metavar = param.metavar or metavar(param)
            if param.name == "solver":
                param.__class__ = SolverOption
    for sub in getattr(command, "commands", {}).values():
        readable(sub)
