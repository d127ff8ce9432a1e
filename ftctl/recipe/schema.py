"""JSON Schema of ftctl's YAML formats, for yaml-language-server and other editors.

Use it with a modeline at the top of a recipe:
``# yaml-language-server: $schema=./recipe.schema.json`` after
``ftctl schema > recipe.schema.json``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from ftctl import __version__
from ftctl.errors import UsageError

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_dict(kind: str) -> dict[str, Any]:
    """The schema of a recipe (``kind="recipe"``) or of ftctl.yaml (``"workspace"``)."""
    model: type[BaseModel]
    if kind == "recipe":
        from ftctl.recipe.model import Recipe

        model, title = Recipe, "ftctl recipe"
    elif kind == "workspace":
        from ftctl.workspace import WorkspaceConfig

        model, title = WorkspaceConfig, "ftctl workspace (ftctl.yaml)"
    else:
        raise UsageError(f"unknown schema kind {kind!r}", hint="use recipe or workspace")
    body = model.model_json_schema(mode="validation")
    _describe(body, model.__name__)
    for name, definition in body.get("$defs", {}).items():
        _describe(definition, name)
    if kind == "recipe":
        _add_axolotl_keys(body)
    body["title"] = title
    body["description"] = f"{title}, as checked by ftctl {__version__}"
    return {"$schema": SCHEMA_DIALECT, **body}


def _describe(node: dict[str, Any], model_name: str) -> None:
    """Fill in each property's description from ftctl.recipe.descriptions where it has none."""
    from ftctl.recipe.descriptions import FIELDS

    texts = FIELDS.get(model_name, {})
    for key, prop in node.get("properties", {}).items():
        if not prop.get("description") and key in texts:
            prop["description"] = texts[key]
    if model_name == "FSDPConfig":
        # FSDP2 configs leave the fsdp_ prefix out; both spellings mean the same setting.
        props = node.get("properties", {})
        for key in list(props):
            short = "version" if key == "fsdp_version" else key.removeprefix("fsdp_")
            props[short] = {"description": f"FSDP2 spelling of {key}: {props[key]['description']}"}


def _add_axolotl_keys(body: dict[str, Any]) -> None:
    """Axolotl keys that are not recipe fields but that a recipe may hold, each described."""
    from ftctl.recipe.descriptions import key_description
    from ftctl.recipe.keys import (
        ATTENTION_FLAGS,
        MAPPED_KEYS,
        PLUGIN_OF_KEY,
        all_axolotl_keys,
        kind_of,
    )
    from ftctl.recipe.prepare import plugin_feature
    from ftctl.recipe.unsupported import UNSUPPORTED_KEYS

    mapped = {
        **MAPPED_KEYS,
        **{k: f"attn_implementation: {v} (when true)" for k, v in ATTENTION_FLAGS.items()},
        "hub_model_id": "ftctl.publish: hf://<hub_model_id>",
        "fsdp_version": "fsdp_config.fsdp_version",
        "revision_of_model": "the @revision of base_model (base_model: org/name@<revision>)",
        "model_revision": "the @revision of base_model (base_model: org/name@<revision>)",
    }
    props = body["properties"]
    fields = frozenset(props)
    for key in all_axolotl_keys():
        kind = kind_of(key, fields)
        if key in props or kind not in ("non_semantic", "mapped", "unsupported"):
            continue
        if kind == "mapped":
            detail = mapped[key]
        elif key in UNSUPPORTED_KEYS:
            detail = UNSUPPORTED_KEYS[key].feature
        else:
            detail = plugin_feature(PLUGIN_OF_KEY.get(key, key))
        props[key] = {"description": key_description(key, kind, detail)}


def json_schema(kind: str) -> str:
    return json.dumps(schema_dict(kind), indent=2, sort_keys=True)
