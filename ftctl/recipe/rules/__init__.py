"""Cross-field rules: combinations of recipe fields that cannot train as written.

Each rule is a plain function from a valid-per-field recipe to the violations
it finds. Where Axolotl silently auto-fixes a combination, ftctl reports it
instead. Every violation points at the key the user should edit. Rules are
registered in the order of the modules below; docs/recipes.md lists them all.
"""

from ftctl.recipe.rules import adapters, data, distributed, training
from ftctl.recipe.rules.engine import RULES, Violation, check_rules

__all__ = ["RULES", "Violation", "adapters", "check_rules", "data", "distributed", "training"]
