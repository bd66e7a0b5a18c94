"""Reproducing an import run: the source pickle, read again, gives the same recipe and the same weights."""

from pathlib import Path

from edmctl.reproduce.checks import check, file_unchanged


def reproduce_import(record, run, registry) -> list[dict]:
    """Re-read the recorded NVlabs pickle (if unchanged) and compare recipe hash and every weight bitwise."""
    import torch

    from edmctl.paths import read_tensors
    from edmctl.pretrained.store import prepare_import

    source = Path(record.extra["source"])
    unchanged = file_unchanged(f"source {source.name}", source, record.extra.get("source_sha256"))
    if not unchanged["ok"]:
        return [unchanged]
    recipe, found, _ = prepare_import(source)
    artifact = next(a for a in registry.artifacts(record.id) if a.kind == "checkpoint")
    weights = read_tensors(registry.artifact_path(artifact), "imported weights")["ema"]
    differing = sorted(k for k in weights.keys() | found.state_dict.keys()
                       if k not in weights or k not in found.state_dict or not torch.equal(weights[k], found.state_dict[k]))
    return [unchanged,
            check("recipe", recipe.hash() == record.recipe_hash, f"sha256 {recipe.hash()[:12]} vs recorded {str(record.recipe_hash)[:12]}", "equal"),
            check(f"{len(weights)} weight tensors", not differing, f"differing: {', '.join(differing[:3]) or 'none'}")]
