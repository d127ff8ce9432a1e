"""Parsed YAML by content digest, so unchanged recipes and locks are not parsed again.

DVC has been measured spending 9-70 s collecting 21k stages, mostly parsing
YAML; so each file is parsed once and cached by content digest. An entry is the plain
data of a document, keyed by sha256 of the file's bytes and valid for this
ftctl version only. Like the stat cache it is an optimisation: a corrupt file
is discarded, a miss is silent. Cached documents carry no positions, so a
loader that finds a problem parses the file again to report file:line:col.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ftctl import __version__
from ftctl.cache import base, paths

CACHE_VERSION = 1
MAX_ENTRIES = 50_000


class ParseCache:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, Any] = _load(path) if path is not None else {}
        self._used: set[str] = set()
        self._dirty = False

    @classmethod
    def of(cls, root: Path) -> ParseCache:
        """The workspace's parse cache."""
        return cls(paths.parse_cache(root))

    @staticmethod
    def key(raw: bytes) -> str:
        return hashlib.sha256(raw).hexdigest()

    def get(self, key: str) -> tuple[bool, Any]:
        if key in self._entries:
            self._used.add(key)
            return True, self._entries[key]
        return False, None

    def put(self, key: str, data: Any) -> None:
        if self.path is None:
            return
        self._entries[key] = data
        self._used.add(key)
        self._dirty = True

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        entries = self._entries
        if len(entries) > MAX_ENTRIES:  # forget what this run did not use
            entries = {k: v for k, v in entries.items() if k in self._used}
        if base.save(self.path, CACHE_VERSION, {"entries": entries}, ftctl=__version__):
            self._dirty = False


def _load(path: Path) -> dict[str, Any]:
    entries = base.load(path, CACHE_VERSION, ftctl=__version__).get("entries")
    return dict(entries) if isinstance(entries, dict) else {}
