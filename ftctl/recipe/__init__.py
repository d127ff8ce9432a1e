"""Recipes: the Axolotl-shaped training configs ftctl locks, plans and trains."""
