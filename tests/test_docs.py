"""The documentation names every rule and every refused key, so it cannot drift."""

from __future__ import annotations

from ftctl.recipe.rules import RULES
from tests.conftest import REPO

RECIPES_DOC = (REPO / "docs" / "recipes.md").read_text(encoding="utf-8")


def test_every_rule_is_documented() -> None:
    missing = [rule.__name__ for rule in RULES if f"`{rule.__name__}`" not in RECIPES_DOC]
    assert missing == []


def test_readme_opens_with_the_two_commands() -> None:
    head = (REPO / "README.md").read_text(encoding="utf-8").split("\n\n")[1]
    assert "make demo" in head and "make test" in head
