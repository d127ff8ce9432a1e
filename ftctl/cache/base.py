"""The one file format of ftctl's caches: a versioned JSON object, read whole, written atomically.

A cache is only an optimisation, in the manner of DVC's state table: a
missing, unreadable, oversized, corrupt or foreign file (another version,
another ftctl) reads as empty and is rebuilt; a cache that cannot be written
(a read-only checkout) is skipped. Nothing read from a cache is trusted
without the checks of the module that owns it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftctl.files import UnsafeTarget, write_atomic

MAX_BYTES = 256 * 1024 * 1024  # far above 10,000 recipes' worth; a larger file is not ours


def load(path: Path | None, version: int, **stamp: Any) -> dict[str, Any]:
    """The cache's body when its ``version`` and every ``stamp`` field match, else ``{}``."""
    if path is None:
        return {}
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            return {}
        body = json.loads(raw)
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(body, dict) or body.get("version") != version:
        return {}
    if any(body.get(key) != value for key, value in stamp.items()):
        return {}
    return body


def save(path: Path | None, version: int, body: dict[str, Any], **stamp: Any) -> bool:
    """Write ``body`` with its version and stamp; False when the cache cannot be written."""
    if path is None:
        return False
    document = {**body, "version": version, **stamp}
    try:
        write_atomic(path, json.dumps(document, separators=(",", ":"), ensure_ascii=False))
    except (OSError, UnsafeTarget):
        return False
    return True
