"""What the Hub answers about ftctl's repositories, read as hostile input.

Refs and file listings are parsed strictly (ftctl.canonical.strict_loads: no duplicate
keys, bounded size and depth) and checked for shape: a commit is 40 hex digits, a path
is a relative POSIX path with no empty, '.' or '..' segment. The provenance a
publication carries is read without its signature (apply and verify check that with
the trusted keys): here it only says which fingerprint, recipe and files it claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ftctl.canonical import JSONError, strict_loads
from ftctl.errors import excerpt
from ftctl.provenance import dsse
from ftctl.provenance.statement import Statement, check_subject_name
from ftctl.recipe.refs import COMMIT_RE

MAX_REPLY = 16 * 1024 * 1024  # refs and one page of a listing: a few KiB for an adapter repository
MAX_ENTRIES = 100_000
MAX_FILE = 64 * 1024**3  # an adapter, or a whole merged model, is far below this


class ReplyError(ValueError):
    """A reply that is not what the Hub sends; the message says what is wrong."""


@dataclass(frozen=True)
class Refs:
    branches: dict[str, str]  # name -> 40-hex commit
    tags: dict[str, str]


@dataclass(frozen=True)
class Entry:
    """A file of a commit, as the listing gives it."""

    path: str
    size: int


def parse_refs(data: bytes) -> Refs:
    body = _json(data, "refs")
    if not isinstance(body, dict):
        raise ReplyError("the refs are not a JSON object")
    return Refs(_refs(body.get("branches"), "branches"), _refs(body.get("tags", []), "tags"))


def _refs(items: Any, what: str) -> dict[str, str]:
    if not isinstance(items, list):
        raise ReplyError(f"the refs have no list of {what}")
    out: dict[str, str] = {}
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        commit = item.get("targetCommit") if isinstance(item, dict) else None
        if not isinstance(name, str) or not isinstance(commit, str) or not COMMIT_RE.match(commit):
            raise ReplyError(f"an entry of the {what} is not a name with a 40-hex commit")
        out[name] = commit
    return out


def parse_tree(data: bytes, seen: dict[str, Entry]) -> None:
    """Add the files of one page of a recursive tree listing to ``seen`` (folders are skipped)."""
    body = _json(data, "file listing")
    if not isinstance(body, list):
        raise ReplyError("the file listing is not a JSON list")
    for item in body:
        if not isinstance(item, dict) or item.get("type") not in ("file", "directory"):
            raise ReplyError("an entry of the file listing is neither a file nor a folder")
        path, size = item.get("path"), item.get("size", 0)
        if not isinstance(path, str):
            raise ReplyError("an entry of the file listing has no path")
        try:
            check_subject_name(path)
        except ValueError:
            raise ReplyError(
                f"the file listing names {excerpt(path)}, not a path inside the repository"
            ) from None
        if item["type"] == "directory":
            continue
        if type(size) is not int or not 0 <= size <= MAX_FILE:
            raise ReplyError(f"the file listing gives {excerpt(path)} no plausible size")
        if path in seen:
            raise ReplyError(f"the file listing names {excerpt(path)} twice")
        if len(seen) >= MAX_ENTRIES:
            raise ReplyError(f"the file listing holds more than {MAX_ENTRIES} files")
        seen[path] = Entry(path, size)


def statement_of(envelope: bytes) -> Statement:
    """The statement a provenance envelope carries, unverified; ReplyError if it is not one."""
    try:
        payload = dsse.parse(envelope).payload
        return Statement.model_validate(strict_loads(payload))
    except dsse.EnvelopeError as exc:
        raise ReplyError(f"not a signed ftctl manifest ({exc.reason})") from None
    except JSONError as exc:
        raise ReplyError(f"its statement is not valid JSON ({exc.reason})") from None
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ReplyError(f"not an ftctl statement: {where}: {first['msg']}") from None


def _json(data: bytes, what: str) -> Any:
    try:
        return strict_loads(data, max_bytes=MAX_REPLY)
    except JSONError as exc:
        raise ReplyError(f"the {what} is not valid JSON ({exc.reason})") from None
