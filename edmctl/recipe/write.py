"""Writing a recipe section back as TOML (`edmctl steps optimize` writes its [sampler] this way)."""

import json
import math


def toml_value(value) -> str:
    """A TOML literal: strings quoted, floats in full precision (`repr`, `inf`), lists element by element."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def section_toml(name: str, fields: dict, comments: list[str] = ()) -> str:
    """`# comment` lines, then `[name]` with one `key = value` line per field that is set (None fields left out)."""
    lines = [f"# {line}" for line in comments] + [f"[{name}]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in fields.items() if value is not None]
    return "\n".join(lines) + "\n"
