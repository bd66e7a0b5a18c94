"""From a sweep file to its trials: grid points × zip rows × random draws, each a full recipe validated up front.

A block that is absent contributes one empty assignment, so a sweep with only `[grid]` is the grid's product.
"""

import copy
import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from edmctl.errors import UserError
from edmctl.recipe import Recipe, validate

DISTRIBUTIONS: dict[str, Callable[[random.Random, dict], Any]] = {
    "choice": lambda rng, d: rng.choice(d["values"]),
    "uniform": lambda rng, d: rng.uniform(d["low"], d["high"]),
    "log-uniform": lambda rng, d: math.exp(rng.uniform(math.log(d["low"]), math.log(d["high"]))),
    "int": lambda rng, d: rng.randint(d["low"], d["high"]),
}
PARAMETERS = {"choice": ("values",), "uniform": ("low", "high"), "log-uniform": ("low", "high"), "int": ("low", "high")}
MAX_TRIALS = 10_000  # a sweep with more trials is refused unless `--max-trials` raises the cap


@dataclass
class Trial:
    index: int
    axes: dict[str, Any]  # dotted field -> value of this trial
    recipe: Recipe

    @property
    def label(self) -> str:
        return axes_label(self.axes)


def axes_label(axes: dict[str, Any]) -> str:
    """`s_churn=10 s_tmin=0.05`: the swept values with the section dropped."""
    return " ".join(f"{key.rsplit('.', 1)[-1]}={format_value(v)}" for key, v in axes.items()) or "base"


@dataclass
class Duplicate:
    """An assignment of the sweep's axes that samples exactly like an earlier trial (`sampling_key`)."""

    axes: dict
    kept: Trial

    @property
    def text(self) -> str:
        """`s_churn=0 s_tmin=0.05 as s_churn=0 s_tmin=0`."""
        return f"{axes_label(self.axes)} as {self.kept.label}"


def axes_text(axes: dict[str, Any]) -> str:
    """`network.model_channels=20, network.channel_mult=[1, 3]`: a trial's values with their full field names."""
    return ", ".join(f"{k}={format_value(v)}" for k, v in axes.items())


def format_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_distribution(key: str, dist: Any, path: Path) -> None:
    """One `[random]` field: a known `dist` with its parameters, of the right types, low <= high."""
    kind = dist.get("dist") if isinstance(dist, dict) else None
    if kind not in DISTRIBUTIONS:
        raise UserError(f"{path}: [random] {key} must be {{ dist = ... }} with dist one of {', '.join(DISTRIBUTIONS)}, got {dist!r}.")
    missing = [p for p in PARAMETERS[kind] if p not in dist]
    if missing:
        raise UserError(f"{path}: [random] {key}: dist = {kind!r} needs {', '.join(missing)}.")
    if kind == "choice":
        if not isinstance(dist["values"], list) or not dist["values"]:
            raise UserError(f"{path}: [random] {key}: dist = \"choice\" needs values = a non-empty list, got {dist['values']!r}.")
        return
    low, high = dist["low"], dist["high"]
    exact = kind == "int"
    if not all((isinstance(v, int) and not isinstance(v, bool)) if exact else _is_number(v) for v in (low, high)):
        kind_text = "integers" if exact else "finite numbers"
        raise UserError(f"{path}: [random] {key}: dist = {kind!r} needs low and high {kind_text}, got low={low!r}, high={high!r}.")
    if low > high or (kind == "log-uniform" and low <= 0):
        raise UserError(f"{path}: [random] {key}: dist = {kind!r} needs {'0 < ' if kind == 'log-uniform' else ''}low <= high, "
                        f"got low={low!r}, high={high!r}.")


def check_random(table: dict[str, Any], path: Path) -> None:
    """`[random]`: n >= 1, an integer seed, and for each field a distribution with its parameters."""
    if not table:
        return
    n, seed = table.get("n"), table.get("seed", 0)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1 or not isinstance(seed, int) or isinstance(seed, bool):
        raise UserError(f"{path}: [random] needs n = an integer >= 1 and seed = an integer (got n={n!r}, seed={seed!r}).")
    for key, dist in table.items():
        if key not in ("n", "seed"):
            check_distribution(key, dist, path)


def count_trials(spec) -> int:
    """How many assignments the sweep has (grid points × zip rows × random draws), without building them."""
    return math.prod(len(values) for values in spec.grid.values()) * max(1, len(next(iter(spec.zip.values()), []))) \
        * (spec.random.get("n", 1) if spec.random else 1)


def check_count(spec, max_trials: int) -> int:
    """The number of trials, refused (UserError) above `max_trials` before any is built."""
    count = count_trials(spec)
    if count > max_trials:
        raise UserError(f"{spec.path} has {count:,} trials, more than the cap of {max_trials:,}; shrink the grid, or "
                        f"pass --max-trials {count} if you mean it.")
    return count


def grid_points(grid: dict[str, list]) -> Iterator[dict[str, Any]]:
    return (dict(zip(grid, values)) for values in itertools.product(*grid.values()))


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
    shown = axes_text(axes)
    origin = {tuple(k.split(".")): f"{spec.path} trial {index} ({shown})" for k in axes}
    origin.update({tuple(k.split(".")): f"{spec.path} [set] {k}" for k in spec.fixed})
    return validate(raw, f"{spec.base_origin} in {spec.path} trial {index} ({shown or 'base'})", origin)


def assignments(spec) -> Iterator[dict[str, Any]]:
    """Every trial's swept values, one at a time: grid points × zip rows × random draws."""
    rows, draws = zip_rows(spec.zip), random_draws(spec.random)
    return ({**g, **z, **r} for g in grid_points(spec.grid) for z in rows for r in draws)


def sampling_key(recipe: Recipe) -> str:
    """The recipe's hash with the churn fields that cannot change its samples put at the values that stand for
    them (`inert_churn`): trials with equal keys give bit-identical samples."""
    from edmctl.design.sampler import inert_churn

    sampler = recipe.sampler.model_copy(update=inert_churn(recipe.sampler))
    return recipe.model_copy(update={"sampler": sampler}).hash()


def iter_trials(spec, max_trials: int = MAX_TRIALS,
                on_progress: Callable[[int, int], None] = lambda done, total: None,
                on_duplicate: Callable[[Duplicate], None] = lambda duplicate: None) -> Iterator[Trial]:
    """Every trial of the sweep, validated, one at a time. An assignment whose recipe samples exactly like an
    earlier trial's (same `sampling_key`: the same canonical recipe, or one differing only in inert churn
    fields) is not a trial: `on_duplicate(Duplicate(axes, kept_trial))` is called instead. Refused before any is built
    above `max_trials`; `on_progress(done, total)` after each assignment."""
    total = check_count(spec, max_trials)
    kept: dict[str, Trial] = {}
    for done, axes in enumerate(assignments(spec), 1):
        recipe = trial_recipe(spec, axes, len(kept))
        key = sampling_key(recipe)
        if key in kept:
            on_duplicate(Duplicate(axes, kept[key]))
        else:
            kept[key] = Trial(len(kept), axes, recipe)
            yield kept[key]
        on_progress(done, total)


def expand(spec, max_trials: int = MAX_TRIALS,
           on_progress: Callable[[int, int], None] = lambda done, total: None,
           on_duplicate: Callable[[Duplicate], None] = lambda duplicate: None) -> list[Trial]:
    """Every distinct trial of the sweep, validated before anything runs (see `iter_trials`)."""
    return list(iter_trials(spec, max_trials, on_progress, on_duplicate))
