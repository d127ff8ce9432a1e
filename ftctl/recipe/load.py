"""Load one recipe file: parse, validate every field, check the cross-field rules.

Every problem becomes one :class:`~ftctl.errors.Problem` with ``file:line:col``;
all problems of a file are raised together as :class:`ValidationFailed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ftctl.cache.parse import ParseCache
from ftctl.errors import Problem, ValidationFailed
from ftctl.recipe.datasets import DATASET_TYPE_POINTERS
from ftctl.recipe.keys import PLUGIN_OF_KEY, all_axolotl_keys, ignored_settings
from ftctl.recipe.messages import describe_errors
from ftctl.recipe.model import Recipe, recipe_name_problem
from ftctl.recipe.prepare import plugin_feature, prepare
from ftctl.recipe.rules import check_rules
from ftctl.recipe.unsupported import RENAMED_KEYS, UNSUPPORTED_KEYS
from ftctl.yamlio import Document, display_path, load_yaml_file


@dataclass(frozen=True)
class LoadedRecipe:
    """A valid recipe with its name and where it was read from."""

    name: str
    path: Path
    shown: str
    recipe: Recipe
    document: Document
    # Settings accepted but not applied (speed or memory only): shown by validate.
    warnings: tuple[Problem, ...] = ()


def load_recipe(
    path: Path, shown: str | None = None, cache: ParseCache | None = None
) -> LoadedRecipe:
    """Load and fully check the recipe at ``path``; raises ValidationFailed or ConfigError."""
    shown = shown if shown is not None else display_path(path)
    document = load_yaml_file(path, shown, cache)
    if document.from_cache:
        try:
            return _checked(path, shown, document)
        except ValidationFailed:
            document = load_yaml_file(path, shown)  # again, for the positions of the problems
    return _checked(path, shown, document)


def _checked(path: Path, shown: str, document: Document) -> LoadedRecipe:
    problems: list[Problem] = []
    name_problem = recipe_name_problem(path.stem)
    if name_problem:
        problems.append(Problem(name_problem, document.location(()), hint="rename the file"))
    recipe = validate_document(document, problems)
    if problems or recipe is None:
        raise ValidationFailed(problems)
    return LoadedRecipe(path.stem, path, shown, recipe, document, ignored_warnings(document))


def ignored_warnings(document: Document) -> tuple[Problem, ...]:
    """A located warning for each speed or memory setting ftctl accepts but does not apply."""
    data = document.data if isinstance(document.data, dict) else {}
    return tuple(
        Problem(message, document.location((key,), key=True), (key,))
        for key, message in ignored_settings(data)
    )


def validate_document(document: Document, problems: list[Problem]) -> Recipe | None:
    """Validate parsed data as a recipe, appending every problem found."""
    data = document.data
    if data is None:
        problems.append(
            Problem(
                "the file is empty",
                document.location(()),
                hint="a recipe needs at least base_model, datasets and learning_rate",
            )
        )
        return None
    if not isinstance(data, dict):
        problems.append(
            Problem(
                f"a recipe is a mapping of keys to values, not a {_yaml_kind(data)}",
                document.location(()),
                hint="write 'key: value' lines",
            )
        )
        return None
    document, early = prepare(document, frozenset(Recipe.model_fields))
    data = document.data
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        found = early + describe_errors(
            exc, document, Recipe, _recipe_key, DATASET_TYPE_POINTERS, all_axolotl_keys()
        )
        problems.extend(sorted(found + _rules_without(data, found, document), key=_position))
        return None
    if early:
        problems.extend(sorted(early + _rules_without(data, early, document), key=_position))
        return None
    problems.extend(_rule_problems(recipe, document))
    return recipe


def _position(problem: Problem) -> tuple[int, int]:
    loc = problem.location
    return (loc.line or 0, loc.col or 0) if loc is not None else (0, 0)


# Stand-ins for required fields whose value was missing or invalid; no rule reads them.
_STAND_INS = {"base_model": "stand-in/model", "learning_rate": 1.0}


def _rules_without(
    data: dict[str, Any], value_problems: list[Problem], document: Document
) -> list[Problem]:
    """Rule violations among the valid keys, when other keys failed (see check_rules)."""
    bad = {str(p.key_path[0]) for p in value_problems if p.key_path}
    rest = {k: v for k, v in data.items() if k not in bad}
    rest.update({k: v for k, v in _STAND_INS.items() if k not in rest})
    try:
        recipe = Recipe.model_validate(rest)
    except ValidationError:
        return []
    return _rule_problems(recipe, document, frozenset(bad | set(_STAND_INS) - set(data)))


def _rule_problems(
    recipe: Recipe, document: Document, unknown: frozenset[str] = frozenset()
) -> list[Problem]:
    problems = []
    for violation in check_rules(recipe, unknown):
        problems.append(
            Problem(
                violation.message,
                document.location(violation.path, key=True),
                violation.path,
                violation.hint,
            )
        )
    return problems


def _yaml_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    return "single value"


def _recipe_key(key: str) -> tuple[str, str] | None:
    """The message for a key Axolotl has but ftctl does not take, or None."""
    if key in UNSUPPORTED_KEYS:
        feature = UNSUPPORTED_KEYS[key]
        return f"not supported by ftctl (Axolotl's {feature.feature})", feature.hint
    if key in RENAMED_KEYS:
        return "ftctl does not take this key", RENAMED_KEYS[key]
    if key in PLUGIN_OF_KEY:
        return f"not supported by ftctl (Axolotl's {plugin_feature(PLUGIN_OF_KEY[key])})", (
            "remove it"
        )
    return None
