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
    body["title"] = title
    body["description"] = f"{title}, as checked by ftctl {__version__}"
    return {"$schema": SCHEMA_DIALECT, **body}


def json_schema(kind: str) -> str:
    return json.dumps(schema_dict(kind), indent=2, sort_keys=True)
