"""Write docs/provenance.schema.json: the JSON Schema of ftctl's in-toto statement.

    python scripts/write_provenance_schema.py

tests/test_provenance.py fails when the file is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def schema_text() -> str:
    from ftctl.provenance.statement import Statement

    body = Statement.model_json_schema(by_alias=True)
    body = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://ftctl.dev/schemas/provenance/v1",
        **body,
        "title": "ftctl manifest statement (in-toto Statement v1, SLSA Provenance v1 predicate)",
    }
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    (ROOT / "docs" / "provenance.schema.json").write_text(schema_text())
