"""What every command shares: the two consoles, `--json` output and the common options."""

import json
import math
from typing import Annotated, Any, Callable

import typer
from rich.console import Console

out = Console(soft_wrap=True)  # results: stdout
err = Console(stderr=True, soft_wrap=True)  # progress and errors: stderr

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one machine-readable JSON document instead of tables.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="SECTION.FIELD=VALUE", help="Override a recipe field (repeatable), e.g. sampler.steps=32."),
]


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
