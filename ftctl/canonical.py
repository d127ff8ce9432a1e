"""The one canonical JSON serialiser (for hashing and signing) and a strict JSON reader.

Canonical: sorted keys, no whitespace, UTF-8, no NaN/Infinity. Strict
reading rejects duplicate keys and NaN/Infinity, so two parsers can never
disagree about what a signed document says.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ftctl.errors import FtctlError


class JSONError(FtctlError):
    """Malformed or ambiguous JSON; ``reason`` says what is wrong (the message, no path)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_of(value: Any) -> str:
    return f"sha256:{hashlib.sha256(canonical_json(value)).hexdigest()}"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested dicts/lists by path: ``{"a": [{"b": 1}]}`` -> ``{"a[0].b": 1}``."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else key))
        return out
    if isinstance(value, list) and value and all(isinstance(v, (dict, list)) for v in value):
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix: value}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise JSONError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise JSONError(f"{name} is not allowed")


def strict_loads(data: bytes | str) -> Any:
    """Parse JSON, refusing duplicate keys and NaN/Infinity."""
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise JSONError(str(exc)) from None
