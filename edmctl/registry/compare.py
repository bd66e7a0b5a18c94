"""Side-by-side comparison of runs: the recipe fields that differ, metrics, and environment differences."""

from typing import Any, Callable

from edmctl.registry.store import Registry

Applies = Callable[[str, dict[str, Any], str], bool]  # (kind, recipe, dotted field) -> does the field shape the run

ENVIRONMENT_FIELDS = ("git_commit", "git_dirty", "torch_version", "cuda_version", "devices", "world_size",
                      "python_version", "packages_hash", "host")


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"sampler": {"steps": 18}} -> {"sampler.steps": 18}; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _rows(columns: list[dict[str, Any]], all_fields: bool) -> dict[str, list[Any]]:
    """field -> one value per run (None where a run lacks it), keeping only fields that differ unless `all_fields`."""
    names = sorted(set().union(*columns)) if columns else []
    rows = {name: [column.get(name) for column in columns] for name in names}
    if all_fields:
        return rows
    return {name: values for name, values in rows.items() if any(v != values[0] for v in values[1:])}


def compare(registry: Registry, refs: list[str | int], all_fields: bool = False,
            applies: Applies = lambda kind, recipe, field: True) -> dict[str, Any]:
    """{"runs": [labels], "model": [...], "recipe": {field: values}, "metrics": {key: latest values}, "environment": {...}}.

    Recipe fields are those that `applies` to each run's kind and recipe (e.g. a sample run's solver's own), None
    for a run they do not apply to. Recipe and environment rows list only what differs (all rows with
    `all_fields`); metrics list every key. `model` is what a run sampled from (None for runs without one).
    """
    records = [registry.get(ref) for ref in refs]
    latest = registry.latest_values([r.id for r in records])
    environments = [{name: getattr(r, name) for name in ENVIRONMENT_FIELDS if name != "devices"}
                    | {"devices": ", ".join(r.devices)} for r in records]
    metric_columns = [latest[r.id] for r in records]
    recipes = [{name: value for name, value in flatten(r.recipe).items() if applies(r.kind, r.recipe, name)}
               for r in records]
    return {
        "runs": [r.label for r in records],
        "kind": [r.kind for r in records],
        "status": [r.status for r in records],
        "model": [r.extra.get("model") for r in records],
        "recipe_hash": [r.recipe_hash for r in records],
        "recipe": _rows(recipes, all_fields),
        "metrics": _rows(metric_columns, all_fields=True),
        "environment": _rows(environments, all_fields),
    }
