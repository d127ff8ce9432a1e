"""The one canonical JSON serialiser (for hashing and signing) and a strict JSON reader.

Canonical: sorted keys, no whitespace, UTF-8, no NaN/Infinity. Strict
reading rejects duplicate keys and NaN/Infinity, so two parsers can never
disagree about what a signed document says, and nesting deeper than
``MAX_DEPTH`` (the decoder recurses; Python's recursion limit stops it long
before the C stack would overflow) or text larger than ``MAX_BYTES``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ftctl.errors import FtctlError, one_line


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
    # dict() in C: every object of every manifest comes here. Fewer keys than pairs: a repeat.
    out = dict(pairs)
    if len(out) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONError(f"duplicate key {key!r}")
            seen.add(key)
    return out


def _no_constant(name: str) -> Any:
    raise JSONError(f"{name} is not allowed")


MAX_DEPTH = 64  # far above any document ftctl writes or reads
MAX_BYTES = 64 * 1024 * 1024


def nesting_depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed value, walked without recursion.

    Only containers are pushed (the decoder makes exactly dicts and lists), so a document
    of a few hundred values costs a few microseconds.
    """
    if type(value) is not dict and type(value) is not list:
        return 0
    deepest, stack = 1, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        for child in item.values() if type(item) is dict else item:
            if type(child) is dict or type(child) is list:
                if depth + 1 > deepest:
                    deepest = depth + 1
                stack.append((child, depth + 1))
    return deepest


def strict_loads(
    data: bytes | str, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES
) -> Any:
    """Parse JSON, refusing duplicate keys, NaN/Infinity, nesting past ``max_depth`` and oversize text."""
    if len(data) > max_bytes:
        raise JSONError(f"larger than {max_bytes // (1024 * 1024)} MiB")
    try:
        value = json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise JSONError(one_line(str(exc))) from None
    except RecursionError:  # the decoder recurses per level; Python's limit stops it first
        raise JSONError(f"nested more than {max_depth} levels deep") from None
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    openers = raw.count(b"{") + raw.count(b"[")
    if openers > max_depth and nesting_depth(value) > max_depth:  # fewer openers: cannot be deeper
        raise JSONError(f"nested more than {max_depth} levels deep")
    return value
