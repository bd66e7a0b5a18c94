"""What every command shares: the two consoles, `--json` output and the common options.

rich is imported on first use, not here: `edmctl --help` needs only typer (see bench/startup.py).
"""

import json
import math
from contextlib import contextmanager
from typing import Annotated, Any, Callable, Iterator, Sequence

import typer


class LazyConsole:
    """A rich Console made on first attribute access (`out.print`, `err.rule`); `.console` is the Console itself."""

    def __init__(self, **options: Any):
        self._options, self._console = options, None

    @property
    def console(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


# No markup in printed strings: paths, values and messages are user text, where `[file, class]` would vanish and
# `[/x]` would raise; styling goes through `styled` (rich Text) instead.
out = LazyConsole(soft_wrap=True, markup=False)  # results: stdout
err = LazyConsole(stderr=True, soft_wrap=True, markup=False)  # progress and errors: stderr

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one machine-readable JSON document instead of tables.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="SECTION.FIELD=VALUE", help="Override a recipe field (repeatable), e.g. sampler.steps=32."),
]


def styled(text: str, style: str):
    """`text` in a rich style (a colour, "bold red"), printed as it is (a rich Text)."""
    from rich.text import Text

    return Text(text, style=style)


def print_error(message: object, label: str = "error:", style: str = "bold red") -> None:
    """`error: <message>` on stderr (the label coloured, the message as it is)."""
    err.print(styled(label, style), str(message), highlight=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # inf/nan are not JSON: "inf", "-inf", "nan"
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def emit(doc: Any, as_json: bool, render: Callable[[], None]) -> None:
    """Print `doc` as one JSON document when `--json` was given, else call `render` (rich tables) on stdout."""
    if as_json:
        print(json.dumps(_jsonable(doc), indent=2, default=str, allow_nan=False))
    else:
        render()


def images_per_s(speed: float) -> str:
    return f"{speed:.1f} img/s"


class RateBar:
    """One task of a rich progress bar whose `rate` column follows rich's speed estimate after every update."""

    def __init__(self, bar, task, rate: Callable[[float], str]):
        self.bar, self.task, self.rate = bar, task, rate

    def update(self, completed: float | None = None, advance: float | None = None, **fields: Any) -> None:
        self.bar.update(self.task, completed=completed, advance=advance, **fields)
        speed = self.bar.tasks[self.task].speed
        self.bar.update(self.task, rate=self.rate(speed) if speed else "")

    def advance(self, n: float) -> None:
        self.update(advance=n)


@contextmanager
def progress_bar(description: str, total: float, count: str | None = None, extra: Sequence[str] = (),
                 rate: Callable[[float], str] = images_per_s, **fields: Any) -> Iterator[RateBar]:
    """A transient rich bar on stderr: description, bar, count (default `done/total`; else a TextColumn format),
    the `extra` TextColumn formats (over `fields`, given their first values), the rate and the time remaining."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    def text(template: str) -> TextColumn:
        return TextColumn(template, markup=False)  # a description may hold a user's path

    columns = [text("{task.description}"), BarColumn(), MofNCompleteColumn() if count is None else text(count),
               *(text(column) for column in extra), text("{task.fields[rate]}"), TimeRemainingColumn()]
    with Progress(*columns, console=err.console, transient=True) as bar:
        yield RateBar(bar, bar.add_task(description, total=total, rate="", **fields), rate)


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = (),
               style_of: Callable[[int, str], str | None] = lambda column, value: None):
    """Rows as aligned lines (a rich Group of one Text per line): every column padded to its widest cell, one
    space apart, the header bold, a cell styled by `style_of(column, value)`. Fast for 10k rows, where a rich
    Table measures and wraps every cell (a minute). Nothing is cut: a line wider than the terminal wraps."""
    from rich.cells import cell_len
    from rich.console import Group
    from rich.text import Text

    widths = [max([cell_len(header[c]), *(cell_len(row[c]) for row in rows)]) for c in range(len(header))]
    right, lines = set(right), []
    for index, row in enumerate([header, *rows]):
        line = Text(style="bold" if index == 0 else "")
        for c, value in enumerate(row):
            fill = " " * (widths[c] - cell_len(value))
            line.append(" " if c else "")
            line.append(fill if c in right else "")
            line.append(value, style=style_of(c, value) if index else None)
            line.append("" if c in right or c == len(row) - 1 else fill)
        lines.append(line)
    return Group(*lines)
