"""The published JSON Schema of the statement matches the code, and accepts what attest writes."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def schema_text() -> str:
    """The schema as scripts/write_provenance_schema.py writes it (scripts/ is no package)."""
    path = REPO / "scripts" / "write_provenance_schema.py"
    spec = importlib.util.spec_from_file_location("write_provenance_schema", path)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    text: str = script.schema_text()
    return text


def test_schema_file_is_current() -> None:
    assert (REPO / "docs" / "provenance.schema.json").read_text() == schema_text(), (
        "run: python scripts/write_provenance_schema.py"
    )
