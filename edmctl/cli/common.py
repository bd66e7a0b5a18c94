"""What every command shares: the two consoles, `--json` output and the common options.

rich is imported on first use, not here: `edmctl --help` needs only typer (see bench/startup.py).
"""

import math
import re
import time
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Annotated, Any, Callable, Iterator, Sequence

import typer


# C0 control characters but tab and newline, DEL and C1: in user or registry text (a run name in a shared registry,
# a recipe string) an escape sequence would drive the terminal (clear it, retitle it, fake output); shown as \x1b.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """`text` with every control character written as its escape (`\x1b`)."""
    return CONTROL_CHARACTERS.sub(lambda match: match.group().encode("unicode_escape").decode(), text)


def safe_console(**options: Any):
    """A rich Console that writes the text it is given with `visible` control characters; its own control
    sequences (styles, cursor moves of progress bars) go out as they are."""
    from rich.console import Console
    from rich.segment import Segment

    class SafeConsole(Console):
        def _render_buffer(self, buffer):
            return super()._render_buffer(segment if segment.control else Segment(visible(segment.text), segment.style)
                                          for segment in buffer)

    return SafeConsole(**options)


class LazyConsole:
    """A rich Console made on first attribute access (`out.print`, `err.rule`); `.console` is the Console itself."""

    def __init__(self, **options: Any):
        self._options, self._console = options, None

    @property
    def console(self):
        if self._console is None:
            self._console = safe_console(**self._options)
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


def print_warning(message: object) -> None:
    print_error(message, label="warning:", style="yellow")


def file_lines(files: Sequence[Any]) -> list[str]:
    """The files a command wrote as lines: three or more files of one folder whose names differ only in their
    digits (`000000.png` … `000063.png`, snapshots) as one line `FIRST … LAST (N files)`, the others one a line."""
    import re
    from pathlib import Path

    groups: dict[tuple, list[Path]] = {}
    for file in map(Path, files):
        groups.setdefault((file.parent, re.sub(r"\d+", "#", file.name)), []).append(file)
    return [line for group in groups.values() for line in (
        [f"{group[0]} … {group[-1].name} ({len(group)} files)"] if len(group) >= 3 else map(str, group))]


def run_outputs(run: int | str) -> list:
    """The files run `run` (`run12`, 12) and its trials wrote (`Registry.outputs`), for `files` and `wrote` lines."""
    from edmctl.registry import Registry

    registry = Registry()
    return registry.outputs(registry.resolve(run))


def print_files(files: Sequence[Any], label: str = "wrote") -> None:
    """`wrote PATH` on stdout for every file a command wrote (`file_lines`); `--json` lists them as `files`."""
    for line in file_lines(files):
        out.print(f"{label} {line}", highlight=False)


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
        import json

        print(json.dumps(_jsonable(doc), indent=2, default=str, allow_nan=False))
    else:
        render()


@contextmanager
def on_interrupt(kept: Callable[[], tuple[str, str | None]]) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) inside the block ends the command with `interrupted: <what was kept>; resume with:
    <command>` (exit 130); `kept()` returns those two (command None: the same one again)."""
    from edmctl.errors import Interrupted

    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(*kept()) from None


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


PLAIN_EVERY_S = 10.0  # seconds between plain progress lines where stderr is no terminal
PLAIN_COUNT = "{task.completed:g}/{task.total:g}"


class PlainProgress:
    """`RateBar`'s updates as plain lines on stderr, where no terminal shows a bar (a CI log, a pipe): one line
    every `PLAIN_EVERY_S` seconds — `training: 1.2/5 kimg (24%)  loss 0.4361  512 img/s  ETA 0:01:20` — and a
    last one at the end when any was printed. The rate is the mean since the first update."""

    def __init__(self, description: str, total: float, count: str, extra: Sequence[str], rate: Callable[[float], str],
                 fields: dict[str, Any]):
        self.task = SimpleNamespace(description=description, total=total, completed=0.0, fields=dict(fields))
        self.count, self.extra, self.rate = count, extra, rate
        self.first: tuple[float, float] | None = None  # (time, completed) at the first update
        self.last_line, self.lines = time.monotonic(), 0

    def update(self, completed: float | None = None, advance: float | None = None, **fields: Any) -> None:
        task = self.task
        task.completed = completed if completed is not None else task.completed + (advance or 0)
        task.fields.update(fields)
        self.first = self.first or (time.monotonic(), task.completed)
        if time.monotonic() - self.last_line >= PLAIN_EVERY_S:
            self.print_line()

    def advance(self, n: float) -> None:
        self.update(advance=n)

    def speed(self) -> float:
        """Units per second since the first update (0 before a second one)."""
        if self.first is None or time.monotonic() <= self.first[0]:
            return 0.0
        return (self.task.completed - self.first[1]) / (time.monotonic() - self.first[0])

    def line(self) -> str:
        from datetime import timedelta

        task, speed = self.task, self.speed()
        parts = [f"{task.description}:", self.count.format(task=task),
                 f"({100 * task.completed / task.total:.0f}%)" if task.total else "",
                 *(column.format(task=task) for column in self.extra), self.rate(speed) if speed > 0 else "",
                 f"ETA {timedelta(seconds=round((task.total - task.completed) / speed))}" if speed > 0 else ""]
        return "  ".join(part for part in parts if part)

    def print_line(self) -> None:
        err.print(self.line(), highlight=False)
        self.last_line, self.lines = time.monotonic(), self.lines + 1

    def close(self) -> None:
        if self.lines:
            self.print_line()


@contextmanager
def progress_bar(description: str, total: float, count: str | None = None, extra: Sequence[str] = (),
                 rate: Callable[[float], str] = images_per_s, **fields: Any) -> Iterator[RateBar | PlainProgress]:
    """A transient rich bar on stderr: description, bar, count (default `done/total`; else a TextColumn format),
    the `extra` TextColumn formats (over `fields`, given their first values), the rate and the time remaining.
    Where stderr is no terminal (a bar would print nothing), the same as plain lines every ~10 s (`PlainProgress`)."""
    if not err.is_terminal:
        plain = PlainProgress(description, total, count or PLAIN_COUNT, extra, rate, fields)
        yield plain
        plain.close()
        return
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
