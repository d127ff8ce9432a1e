"""The published JSON Schema of the statement matches the code, and accepts what attest writes."""

from __future__ import annotations

import sys

from tests.conftest import REPO


def test_schema_file_is_current() -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    from write_provenance_schema import schema_text

    assert (REPO / "docs" / "provenance.schema.json").read_text() == schema_text(), (
        "run: python scripts/write_provenance_schema.py"
    )
