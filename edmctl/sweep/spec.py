"""The sweep file: a base recipe, what each trial runs, fixed overrides and the axes (`[grid]`, `[zip]`, `[random]`).

    base = "digits.toml"           # a recipe path relative to this file, or an inline [base] table
    trial = "sample"               # a name in edmctl.sweep.trials.TRIALS
    model = "ideal:digits?std=0.2" # sample and fid trials: the model spec (as `edmctl sample --model`)
    seeds = "0-63"                 # sample trials: one image per seed
    metric = "rms_median"          # the trial metric the results are sorted by (default: the trial's own)
    direction = "min"              # min or max

    [set]                          # fixed overrides, as `--set`
    "sampler.solver" = "heun"
    [grid]                         # cartesian product
    "sampler.s_churn" = [0, 10, 40]
    [zip]                          # walked together (equal lengths)
    "sampler.steps" = [8, 16]
    "sampler.rho" = [5.0, 7.0]
    [random]                       # n draws from per-field distributions
    n = 4
    seed = 0
    "sampler.s_noise" = { dist = "uniform", low = 1.0, high = 1.01 }

Dotted keys may be quoted or bare (`sampler.s_churn = [...]` is a nested table in TOML; both read the same).
"""

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edmctl.errors import UserError

SETTINGS = ("base", "trial", "model", "seeds", "metric", "direction", "batch", "set", "grid", "zip", "random")
DIRECTIONS = ("min", "max")


@dataclass
class SweepSpec:
    """A parsed sweep file: everything a trial needs besides its recipe."""

    path: Path
    base: dict  # the raw base recipe (TOML tables)
    base_origin: str  # where it came from, for error messages
    trial: str
    model: str | None
    seeds: str
    metric: str
    direction: str
    batch: int
    fixed: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list] = field(default_factory=dict)
    zip: dict[str, list] = field(default_factory=dict)
    random: dict[str, Any] = field(default_factory=dict)  # n, seed, and field -> distribution

    @property
    def name(self) -> str:
        return self.path.stem

    def settings(self) -> dict[str, Any]:
        """What every trial shares (passed to each trial function), as plain data."""
        return {"trial": self.trial, "model": self.model, "seeds": self.seeds, "metric": self.metric,
                "direction": self.direction, "batch": self.batch}

    def as_dict(self) -> dict[str, Any]:
        return {**self.settings(), "path": str(self.path), "base": self.base, "set": self.fixed, "grid": self.grid,
                "zip": self.zip, "random": self.random}

    def axes(self) -> list[str]:
        """The swept fields, in file order: grid, zip, then random."""
        return [*self.grid, *self.zip, *(k for k in self.random if k not in ("n", "seed"))]


def flatten(table: dict, where: str, prefix: str = "") -> dict[str, Any]:
    """{"sampler": {"steps": [..]}} → {"sampler.steps": [..]}; a table with `dist` is a leaf (a distribution)."""
    flat = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and "dist" not in value:
            flat.update(flatten(value, where, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _lists(table: dict, section: str, path: Path) -> dict[str, list]:
    flat = flatten(table, str(path))
    for key, values in flat.items():
        if not isinstance(values, list) or not values:
            raise UserError(f"{path}: [{section}] {key} must be a non-empty list of values, got {values!r}.")
    return flat


def _check_zip(zipped: dict[str, list], path: Path) -> None:
    lengths = {key: len(values) for key, values in zipped.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise UserError(f"{path}: the [zip] lists must have equal lengths ({shown}).")


def _base(raw: dict, path: Path) -> tuple[dict, str]:
    """The base recipe: a path relative to the sweep file, an inline table, or absent (the paper's defaults)."""
    from edmctl.recipe.load import read_toml

    base = raw.get("base")
    if base is None:
        return {}, f"{path} (default recipe)"
    if isinstance(base, dict):
        return base, f"{path} [base]"
    if isinstance(base, str):
        recipe_path = (path.parent / base) if not Path(base).is_absolute() else Path(base)
        return read_toml(recipe_path), str(recipe_path)
    raise UserError(f"{path}: base must be a recipe path (string) or an inline [base] table, got {base!r}.")


def read_sweep(path: str | Path) -> SweepSpec:
    """Parse and check a sweep file (the axes' values are checked later, trial by trial, by the recipe schema)."""
    from edmctl.sweep.trials import TRIALS, default_metric

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: sweep file not found.")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: TOML syntax error: {e}") from None
    except RecursionError:
        raise UserError(f"{path}: arrays or tables nested too deeply to read.") from None
    except ValueError:  # an integer of over 4,300 digits (Python's int-from-text limit)
        raise UserError(f"{path}: a number has more than 4,300 digits; no field takes one that long.") from None
    unknown = [key for key in raw if key not in SETTINGS]
    if unknown:
        raise UserError(f"{path}: unknown setting {unknown[0]!r}; allowed: {', '.join(SETTINGS)}.")
    trial = raw.get("trial", "sample")
    if trial not in TRIALS:
        raise UserError(f"{path}: trial = {trial!r} is not one of {', '.join(TRIALS)}.")
    direction = raw.get("direction", "min")
    if direction not in DIRECTIONS:
        raise UserError(f"{path}: direction = {direction!r} is not one of min, max.")
    batch = raw.get("batch", 256)
    if not isinstance(batch, int) or batch < 1:
        raise UserError(f"{path}: batch must be an integer >= 1, got {batch!r}.")
    base, origin = _base(raw, path)
    zipped = _lists(raw.get("zip", {}), "zip", path)
    _check_zip(zipped, path)
    from edmctl.sweep.expand import check_random

    spec = SweepSpec(path=path, base=base, base_origin=origin, trial=trial, model=raw.get("model"),
                     seeds=str(raw.get("seeds", "0-63")),
                     metric=raw.get("metric") or default_metric(trial, raw.get("model")), direction=direction, batch=batch,
                     fixed=flatten(raw.get("set", {}), str(path)), grid=_lists(raw.get("grid", {}), "grid", path),
                     zip=zipped, random=flatten(raw.get("random", {}), str(path)))
    check_random(spec.random, path)
    return spec


def sweep_hash(spec: SweepSpec, trial_hashes: list[str]) -> str:
    """The sweep's identity: its shared settings and its trials' recipe hashes (so a rerun finds it again)."""
    doc = json.dumps({"settings": spec.settings(), "trials": trial_hashes}, sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()
