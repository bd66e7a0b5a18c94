"""Recipes: TOML files validated by pydantic, one section per part of EDM Table 1.

    recipe = load_recipe("recipes/edm.toml", overrides=["sampler.steps=32"])
    recipe.sampler.solver, recipe.hash(), recipe.canonical()
"""

from edmctl.recipe.load import load_recipe, validate
from edmctl.recipe.schema import Recipe

__all__ = ["Recipe", "load_recipe", "validate"]
