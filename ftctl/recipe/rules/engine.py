"""The machinery of cross-field rules: a rule is a function from a recipe to its violations.

Rules only look, they never change the recipe. :func:`check_rules` runs every
registered rule; with ``unknown`` fields it drops the violations of rules that
read them, so value errors and rule violations are reported in one run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, cast

from ftctl.recipe.model import Recipe

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Violation:
    path: KeyPath
    message: str
    hint: str | None = None
    rule: str = ""  # the name of the rule that found it, filled in by check_rules


Rule = Callable[[Recipe], Iterator[Violation]]
RULES: list[Rule] = []


def rule(func: Rule) -> Rule:
    RULES.append(func)
    return func


def check_rules(recipe: Recipe, unknown: frozenset[str] = frozenset()) -> list[Violation]:
    """Every violation of every rule, in rule order.

    ``unknown`` names fields whose written value was invalid (and left out of
    ``recipe``): a rule that reads any of them cannot be trusted, so its
    violations are dropped. This lets one run report rule violations next to
    value errors without inventing problems from the stand-in values.
    """
    if not unknown:
        return [replace(v, rule=check.__name__) for check in RULES for v in check(recipe)]
    found: list[Violation] = []
    for check in RULES:
        reads = _RecordingRecipe(recipe)
        violations = list(check(cast(Recipe, reads)))
        if reads.fields & unknown:
            continue
        found.extend(replace(v, rule=check.__name__) for v in violations)
    return found


class _RecordingRecipe:
    """A read-only view of a recipe that records which fields a rule reads."""

    def __init__(self, recipe: Recipe) -> None:
        self._recipe = recipe
        self.fields: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        self.fields.add(name)
        return getattr(self._recipe, name)


def given(recipe: Recipe, name: str) -> bool:
    getattr(recipe, name)  # counts as reading the field (see check_rules)
    return name in recipe.model_fields_set


def uses_fsdp(recipe: Recipe) -> bool:
    """FSDP is on with an ``fsdp:`` list or an ``fsdp_config:`` block, as Axolotl reads it."""
    return bool(recipe.fsdp) or recipe.fsdp_config is not None


def has_eval_set(recipe: Recipe) -> bool:
    return recipe.val_set_size > 0 or recipe.test_datasets is not None
