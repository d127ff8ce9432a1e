"""Recipes: the Axolotl-shaped training configs ftctl locks, plans and trains."""

from ftctl.recipe.load import LoadedRecipe, load_recipe, validate_document
from ftctl.recipe.model import Recipe

__all__ = ["LoadedRecipe", "Recipe", "load_recipe", "validate_document"]
