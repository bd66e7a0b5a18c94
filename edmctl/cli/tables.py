"""Rich tables that never cut a number: text wraps, numbers keep every digit, and columns that cannot fit the
terminal are left out and named below the table (`--json` has them all).

rich alone shrinks a table too wide for the terminal by cutting cells (`1.57e…`, `0.0007…`). `print_table` first
gives every column the width it may shrink to — its widest number in full; text (which wraps) down to
`TEXT_MIN` — leaves out columns from the right until those widths fit, then fixes the widths itself.
"""

import re
from typing import Any

from edmctl.cli.common import out

TEXT_MIN = 8  # terminal cells a text column may be narrowed to (its words wrap, long ones fold)
NUMBER = re.compile(r"[-+]?(\d[\d,_]*\.?\d*|\.\d+)(e[-+]?\d+)?%?|[-+]?inf|nan", re.IGNORECASE)


def plain(cell: Any) -> str:
    """A cell's text (a str or rich Text); "" for other renderables."""
    return cell if isinstance(cell, str) else getattr(cell, "plain", "")


def number_width(text: str) -> int:
    """The widest number among the words of `text` (`fid=1.57e-05` counts its number), 0 when it holds none."""
    words = (word.strip("()[],;:").rpartition("=")[2] for word in text.split())
    return max((len(word) for word in words if NUMBER.fullmatch(word)), default=0)


def column_widths(console, table) -> tuple[list[int], list[int]]:
    """(natural, least) width of each column, padding excluded: the widest cell, and what it may shrink to
    without cutting a number (a no-wrap column: nothing)."""
    from rich.measure import Measurement

    options = console.options.update_width(1 << 20)
    natural, least = [], []
    for column in table.columns:
        cells = [column.header, *column.cells]
        widest = max(Measurement.get(console, options, cell).maximum for cell in cells)
        numbers = max(number_width(plain(cell)) for cell in cells)
        natural.append(widest)
        least.append(widest if column.no_wrap else max(numbers, min(widest, TEXT_MIN)))
    return natural, least


def overhead(console, table, natural: list[int]) -> int:
    """Cells the table adds to its columns' widths: padding, separators, edges."""
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update_width(1 << 20), table).maximum - sum(natural)


def narrowed(natural: list[int], least: list[int], room: int) -> list[int]:
    """Widths within `room`: the widest column still above its least width loses a cell, until all fit."""
    widths = list(natural)
    while sum(widths) > room:
        shrinkable = [i for i, width in enumerate(widths) if width > least[i]]
        if not shrinkable:
            break
        widths[max(shrinkable, key=lambda i: widths[i])] -= 1
    return widths


def fit(table, width: int, console) -> list[str]:
    """Fix `table`'s column widths to fit `width` cells without cutting a number, leaving out columns from the
    right (never the first) while their least widths do not fit; returns the headers left out."""
    dropped = []
    natural, least = column_widths(console, table)
    while sum(least) + overhead(console, table, natural) > width and len(table.columns) > 1:
        dropped.insert(0, plain(table.columns.pop().header) or "(unnamed)")
        natural, least = natural[:-1], least[:-1]
    widths = narrowed(natural, least, width - overhead(console, table, natural))
    if widths != natural:
        for column, cells in zip(table.columns, widths):
            column.width, column.overflow = cells, "fold"
    return dropped


def print_table(table) -> None:
    """Print `table` on stdout at the terminal's width, no number cut (see the module docstring); the columns
    left out are named under it."""
    console = out.console
    dropped = fit(table, console.width, console)
    out.print(table, soft_wrap=False)  # the title wraps too
    if dropped:
        out.print(f"(left out to fit {console.width} columns: {', '.join(dropped)}; a wider terminal or --json "
                  "shows them)", style="dim", highlight=False, soft_wrap=False)
