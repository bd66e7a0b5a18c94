"""From a sweep file to its trials: grid points × zip rows × random draws, each a full recipe validated up front.

A block that is absent contributes one empty assignment, so a sweep with only `[grid]` is the grid's product.
"""

import copy
import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from edmctl.errors import UserError
from edmctl.recipe import Recipe, validate

DISTRIBUTIONS: dict[str, Callable[[random.Random, dict], Any]] = {
    "choice": lambda rng, d: rng.choice(d["values"]),
    "uniform": lambda rng, d: rng.uniform(d["low"], d["high"]),
    "log-uniform": lambda rng, d: math.exp(rng.uniform(math.log(d["low"]), math.log(d["high"]))),
    "int": lambda rng, d: rng.randint(d["low"], d["high"]),
}
PARAMETERS = {"choice": ("values",), "uniform": ("low", "high"), "log-uniform": ("low", "high"), "int": ("low", "high")}


@dataclass
class Trial:
    index: int
    axes: dict[str, Any]  # dotted field -> value of this trial
    recipe: Recipe

    @property
    def label(self) -> str:
        """`s_churn=10 s_tmin=0.05`: the swept values with the section dropped."""
        return " ".join(f"{key.rsplit('.', 1)[-1]}={format_value(v)}" for key, v in self.axes.items()) or "base"


def format_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def check_random(table: dict[str, Any], path: Path) -> None:
    """`[random]`: n >= 1, an integer seed, and for each field a distribution with its parameters."""
    if not table:
        return
    n, seed = table.get("n"), table.get("seed", 0)
    if not isinstance(n, int) or n < 1 or not isinstance(seed, int):
        raise UserError(f"{path}: [random] needs n = an integer >= 1 and seed = an integer (got n={n!r}, seed={seed!r}).")
    for key, dist in table.items():
        if key in ("n", "seed"):
            continue
        kind = dist.get("dist") if isinstance(dist, dict) else None
        if kind not in DISTRIBUTIONS:
            raise UserError(f"{path}: [random] {key} must be {{ dist = ... }} with dist one of {', '.join(DISTRIBUTIONS)}, got {dist!r}.")
        missing = [p for p in PARAMETERS[kind] if p not in dist]
        if missing:
            raise UserError(f"{path}: [random] {key}: dist = {kind!r} needs {', '.join(missing)}.")
        if kind == "log-uniform" and not 0 < dist["low"] <= dist["high"]:
            raise UserError(f"{path}: [random] {key}: log-uniform needs 0 < low <= high.")


def grid_points(grid: dict[str, list]) -> list[dict[str, Any]]:
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def zip_rows(zipped: dict[str, list]) -> list[dict[str, Any]]:
    if not zipped:
        return [{}]
    return [dict(zip(zipped, values)) for values in zip(*zipped.values())]


def random_draws(table: dict[str, Any]) -> list[dict[str, Any]]:
    """n draws, field by field in file order, from one `random.Random(seed)`: the same file gives the same draws."""
    if not table:
        return [{}]
    rng = random.Random(table.get("seed", 0))
    fields = {key: dist for key, dist in table.items() if key not in ("n", "seed")}
    return [{key: DISTRIBUTIONS[dist["dist"]](rng, dist) for key, dist in fields.items()} for _ in range(table["n"])]


def assignments(spec) -> list[dict[str, Any]]:
    """Every trial's swept values: grid points × zip rows × random draws."""
    blocks = (grid_points(spec.grid), zip_rows(spec.zip), random_draws(spec.random))
    return [{**g, **z, **r} for g, z, r in itertools.product(*blocks)]


def set_field(raw: dict, dotted: str, value: Any, where: str) -> None:
    """raw["sampler"]["steps"] = value for "sampler.steps"."""
    path = dotted.split(".")
    if len(path) != 2:
        raise UserError(f"{where}: {dotted!r} must be SECTION.FIELD, e.g. sampler.steps.")
    section = raw.setdefault(path[0], {})
    if not isinstance(section, dict):
        raise UserError(f"{where}: {path[0]} is not a section.")
    section[path[1]] = value


def trial_recipe(spec, axes: dict[str, Any], index: int) -> Recipe:
    """Base recipe + fixed overrides + this trial's values, validated; errors name the trial and its values."""
    raw = copy.deepcopy(spec.base)
    for key, value in {**spec.fixed, **axes}.items():
        set_field(raw, key, value, str(spec.path))
    shown = ", ".join(f"{k}={format_value(v)}" for k, v in axes.items())
    origin = {tuple(k.split(".")): f"{spec.path} trial {index} ({shown})" for k in axes}
    origin.update({tuple(k.split(".")): f"{spec.path} [set] {k}" for k in spec.fixed})
    return validate(raw, f"{spec.base_origin} in {spec.path} trial {index} ({shown or 'base'})", origin)


def expand(spec) -> list[Trial]:
    """Every trial of the sweep, validated before anything runs; repeated recipes are kept once (first wins)."""
    trials, seen = [], set()
    for axes in assignments(spec):
        recipe = trial_recipe(spec, axes, len(trials))
        if recipe.hash() not in seen:
            seen.add(recipe.hash())
            trials.append(Trial(len(trials), axes, recipe))
    return trials
