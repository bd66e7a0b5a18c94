"""Side-by-side comparison of runs: the recipe fields that differ, metrics, and environment differences (the
settings that change how results round, `numerics.*`, among them), with a note on what most likely explains a
difference in results."""

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


def environment(record) -> dict[str, Any]:
    """A run's environment row values: the columns of `ENVIRONMENT_FIELDS` and its recorded `numerics.*`."""
    columns = {name: getattr(record, name) for name in ENVIRONMENT_FIELDS if name != "devices"}
    return columns | {"devices": ", ".join(record.devices)} | flatten(record.extra.get("numerics") or {}, "numerics.")


def notes(labels: list[str], environments: list[dict[str, Any]]) -> list[str]:
    """Why runs of the same recipe and seeds may still differ: another intra-op thread count."""
    counts = [env.get("numerics.intra_op_threads") for env in environments]
    if len(set(counts)) == 1:
        return []
    used = ", ".join(f"{label} {count if count is not None else 'not recorded'}" for label, count in zip(labels, counts))
    return [f"the runs used different torch thread counts ({used}): a sum split over another number of threads adds "
            f"in another order, so results differ in their last bits and trained weights drift apart; this is the "
            f"likely cause of a failed reproduction (`edmctl reproduce` uses the recorded count)."]


def compare(registry: Registry, refs: list[str | int], all_fields: bool = False,
            applies: Applies = lambda kind, recipe, field: True) -> dict[str, Any]:
    """{"runs": [labels], "model": [...], "recipe": {field: values}, "metrics": {key: latest values}, "environment": {...},
    "notes": [sentences]}.

    Recipe fields are those that `applies` to each run's kind and recipe (e.g. a sample run's solver's own), None
    for a run they do not apply to. Recipe and environment rows list only what differs (all rows with
    `all_fields`); metrics list every key. `model` is what a run sampled from (None for runs without one).
    """
    records = [registry.get(ref) for ref in refs]
    latest = registry.latest_values([r.id for r in records])
    environments = [environment(r) for r in records]
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
        "notes": notes([r.label for r in records], environments),
    }
