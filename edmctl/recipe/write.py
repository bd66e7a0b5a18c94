"""Writing recipes back as TOML that `load_recipe` reads to the same recipe (same hash): a whole recipe
(`recipe_toml`: `edmctl recipe show --toml`, `edmctl train --dry-run`) or one section (`section_toml`: `edmctl
steps optimize` writes its [sampler] this way)."""

import json
import math


def toml_value(value) -> str:
    """A TOML literal: strings quoted, floats in full precision (`repr`, `inf`), lists element by element."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # a JSON string is a TOML basic string, but for DEL and astral characters
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"  # repr: nan is TOML's nan already
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def comment(text: str) -> str:
    """`# text` with the control characters a TOML comment cannot hold (a newline would end it) escaped."""
    return "# " + "".join(c if c == "\t" or " " <= c != "\x7f" else repr(c)[1:-1] for c in text)


def section_toml(name: str, fields: dict, comments: list[str] = ()) -> str:
    """`# comment` lines, then `[name]` with one `key = value` line per field that is set (None fields left out)."""
    lines = [comment(line) for line in comments] + [f"[{name}]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in fields.items() if value is not None]
    return "\n".join(lines) + "\n"


def recipe_toml(canonical: dict, comments: list[str] = ()) -> str:
    """A whole recipe (`Recipe.canonical()`: every field filled in) as a loadable TOML file, `# comment` lines
    first, one section after another; unset (None) fields are left out, and read back unset."""
    header = "".join(f"{comment(line)}\n" for line in comments)
    return header + "\n".join(section_toml(name, fields) for name, fields in canonical.items())
