"""Read and write ftctl's authenticated cache files in tests, as ftctl itself does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftctl.cache.base import _mac, cache_key


def read_body(path: Path) -> dict[str, Any]:
    """The JSON body of a cache file (its MAC line dropped)."""
    body: dict[str, Any] = json.loads(path.read_bytes().split(b"\n", 1)[1])
    return body


def write_body(path: Path, text: str) -> None:
    """Write ``text`` as a cache body with a valid MAC: what a bug in ftctl, not an attacker, could write."""
    key = cache_key()
    assert key is not None
    data = text.encode("utf-8")
    path.write_bytes(_mac(key, data) + b"\n" + data)
