"""`ftctl schema`: every key has a description, for editor hovers."""

from __future__ import annotations

from typing import Any

import pytest

from ftctl.recipe.keys import all_axolotl_keys, kind_of
from ftctl.recipe.model import Recipe
from ftctl.recipe.schema import schema_dict


def undescribed(node: dict[str, Any], where: str) -> list[str]:
    missing = []
    for key, prop in node.get("properties", {}).items():
        if not str(prop.get("description", "")).strip():
            missing.append(f"{where}.{key}")
    for name, definition in node.get("$defs", {}).items():
        missing.extend(undescribed(definition, name))
    return missing


@pytest.mark.parametrize("kind", ["recipe", "workspace"])
def test_every_key_has_a_description(kind: str) -> None:
    assert undescribed(schema_dict(kind), kind) == []


def test_every_accepted_axolotl_key_is_in_the_schema() -> None:
    # An editor must not flag a key validate accepts: non-semantic, mapped and unsupported
    # (accepted while off) keys are listed too, each saying how ftctl treats it.
    props = schema_dict("recipe")["properties"]
    fields = frozenset(Recipe.model_fields)
    accepted = {
        k
        for k in all_axolotl_keys()
        if kind_of(k, fields) in ("trained", "non_semantic", "unsupported")
    }
    assert accepted - set(props) == set()
    assert "ignored" in props["use_wandb"]["description"]
    assert props["dpo_beta"]["description"].startswith("older spelling of rl_beta")
    assert "quantization-aware training" in props["qat"]["description"]
    assert "learning rate" in props["learning_rate"]["description"]


def test_fsdp2_spellings_are_described() -> None:
    fsdp = schema_dict("recipe")["$defs"]["FSDPConfig"]["properties"]
    assert fsdp["reshard_after_forward"]["description"].startswith("FSDP2 spelling of")
    assert "version" in fsdp


def test_descriptions_are_distinct_for_recipe_fields() -> None:
    # Written per field, not one placeholder repeated.
    props = schema_dict("recipe")["properties"]
    texts = [props[name]["description"] for name in Recipe.model_fields]
    assert len(set(texts)) == len(texts)
