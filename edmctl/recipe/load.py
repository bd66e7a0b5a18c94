"""Reading a recipe: TOML file, `--set` overrides, validation with errors that name the file, the dotted field
and the allowed values."""

import difflib
import tomllib
import typing
from pathlib import Path

from pydantic import BaseModel, ValidationError

from edmctl.errors import UserError
from edmctl.recipe.schema import Recipe


def parse_value(text: str):
    """A `--set` value: any TOML value (`32`, `1e-3`, `inf`, `true`, `[1, 2]`, `"x"`), else the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (ValueError, RecursionError):  # not TOML (TOMLDecodeError), or an integer of over 4,300 digits
        return text


class FlagOverride(str):
    """A `--set` made from an alias flag (`--solver hune` is `sampler.solver="hune"`): errors name the flag the
    user typed (`flag`), not the `--set` it stands for."""

    def __new__(cls, text: str, flag: str):
        override = super().__new__(cls, text)
        override.flag = flag
        return override


def origin_of(item: str) -> str:
    """How the user gave an override: `--solver hune` for an alias flag, else `--set sampler.solver=hune`."""
    return item.flag if isinstance(item, FlagOverride) else f"--set {item}"


def set_keys(overrides: list[str]) -> set[str]:
    """The dotted fields a list of `--set SECTION.FIELD=VALUE` names (spaces around the dots ignored)."""
    return {".".join(part.strip() for part in item.partition("=")[0].split(".")) for item in overrides}


def check_flag_conflicts(flags: dict[str, tuple[str, object]], overrides: list[str]) -> None:
    """`flags` maps a recipe field to (flag, value given or None): a flag and a `--set` of its field at once
    is refused, naming both, rather than one silently winning."""
    given = set_keys(overrides)
    for field, (flag, value) in flags.items():
        if value is not None and field in given:
            raise UserError(f"{flag} and --set {field}=... both set {field}; give only one of them.")


def apply_overrides(raw: dict, overrides: list[str]) -> dict[tuple, str]:
    """Apply `section.field=value` overrides to the raw TOML dict; returns which dotted keys came from `--set`."""
    origin = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        path = tuple(part.strip() for part in key.strip().split("."))
        if not sep or len(path) != 2 or not all(path):
            raise UserError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. --set sampler.steps=32")
        section = raw.setdefault(path[0], {})
        if not isinstance(section, dict):
            raise UserError(f"--set {item!r}: {path[0]} is not a section")
        if path in origin:
            raise UserError(f"{origin[path]} and {origin_of(item)} both set {'.'.join(path)}; give it once.")
        section[path[1]] = parse_value(value.strip())
        origin[path] = origin_of(item)
    return origin


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class that owns the field at `loc` (for did-you-mean and allowed values)."""
    model: type[BaseModel] = Recipe
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return model


def _allowed(loc: tuple) -> list[str]:
    model = _model_at(loc)
    field = model.model_fields.get(loc[-1]) if model else None
    if field is None:
        return []
    annotation = field.annotation  # Literal[...] or Literal[...] | None
    options = [annotation, *typing.get_args(annotation)]
    literal = next((a for a in options if typing.get_origin(a) is typing.Literal), None)
    return list(typing.get_args(literal)) if literal is not None else []


def _hint(value, candidates: list[str]) -> str:
    close = difflib.get_close_matches(str(value), candidates, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe(error: dict) -> str:
    """One pydantic error as `dotted.field: what is wrong; allowed values (did you mean …?)`."""
    loc = tuple(str(p) for p in error["loc"])
    dotted = ".".join(loc)
    value = error.get("input")
    if error["type"] == "extra_forbidden":
        model = _model_at(loc)
        fields = list(model.model_fields) if model else []
        where = "section" if len(loc) == 1 else "field"
        return f"{dotted}: unknown {where}{_hint(loc[-1], fields)}; allowed: {', '.join(fields)}"
    if error["type"] == "literal_error":
        allowed = _allowed(loc)
        return f"{dotted}: {value!r} is not one of {', '.join(map(str, allowed))}{_hint(value, allowed)}"
    if error["type"] == "value_error":
        message = error["msg"].removeprefix("Value error, ")
        return f"{dotted}: {message}" if dotted and not message.startswith(dotted) else message
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
    return f"{dotted}: {error['msg'].lower()}{shown}"


def _source(error: dict, origin: dict[tuple, str], where: str) -> str:
    """The file, or the `--set` that caused the error (for a cross-field error: the file and the section's sets)."""
    loc = tuple(str(p) for p in error["loc"])
    if loc[:2] in origin:
        return origin[loc[:2]]
    related = [text for key, text in origin.items() if not loc or key[0] == loc[0]]
    return f"{where} with {', '.join(related)}" if related else where


def validate(raw: dict, where: str, origin: dict[tuple, str] | None = None) -> Recipe:
    """Validate a raw recipe dict; errors name `where` (the file) or the `--set` that caused them."""
    try:
        return Recipe.model_validate(raw)
    except ValidationError as e:
        lines = [f"{_source(err, origin or {}, where)}: {describe(err)}" for err in e.errors()]
        raise UserError("; ".join(lines)) from None


def read_toml(path: Path) -> dict:
    if Path(path).exists() and not Path(path).is_dir() and not Path(path).is_file():
        raise UserError(f"{path}: not a regular file (a pipe, device or socket), which could block for ever; give a recipe file")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: recipe file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read the recipe ({e})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: TOML syntax error: {e}") from None
    except RecursionError:
        raise UserError(f"{path}: arrays or tables nested too deeply to read; a recipe is two levels deep.") from None
    except ValueError:  # an integer of over 4,300 digits (Python's int-from-text limit)
        raise UserError(f"{path}: a number has more than 4,300 digits; no field takes one that long.") from None


def load_recipe(path: str | Path | None = None, overrides: list[str] | None = None) -> Recipe:
    """The recipe in `path` (the paper's EDM defaults when None) with `--set` overrides applied, validated."""
    raw = read_toml(Path(path)) if path is not None else {}
    origin = apply_overrides(raw, list(overrides or []))
    return validate(raw, str(path) if path is not None else "default recipe", origin)
