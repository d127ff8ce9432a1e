"""A stat cache: file digests keyed by (inode, size, mtime_ns), so unchanged files are never re-read.

Only an optimisation, in the manner of DVC's state table: a miss is silent, a
corrupt or foreign cache file is discarded and rebuilt, never trusted.
Entries live in ``.ftctl/statcache.json`` and are written atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ftctl.files import write_atomic

CACHE_VERSION = 1


class StatCache:
    """Digests of files by path, valid while the file's inode, size and mtime_ns are unchanged."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, list[Any]] = {}
        self._dirty = False
        self.hits = 0
        self.misses = 0
        if path is not None:
            self._entries = _load(path)

    @classmethod
    def disabled(cls) -> StatCache:
        """A cache that remembers nothing (for tests and one-off hashing)."""
        return cls(None)

    def get(self, file: Path, st: os.stat_result, algorithm: str) -> str | None:
        entry = self._entries.get(_key(file, algorithm))
        if entry is not None and entry[:3] == [st.st_ino, st.st_size, st.st_mtime_ns]:
            self.hits += 1
            return str(entry[3])
        self.misses += 1
        return None

    def put(self, file: Path, st: os.stat_result, algorithm: str, digest: str) -> None:
        if self.path is None:
            return
        self._entries[_key(file, algorithm)] = [st.st_ino, st.st_size, st.st_mtime_ns, digest]
        self._dirty = True

    def save(self) -> None:
        """Write the cache if anything changed; a cache that cannot be written is skipped."""
        if self.path is None or not self._dirty:
            return
        body = {"version": CACHE_VERSION, "entries": self._entries}
        try:
            write_atomic(self.path, json.dumps(body, separators=(",", ":")))
        except OSError:
            return  # read-only checkout: correctness does not depend on the cache
        self._dirty = False


def _key(file: Path, algorithm: str) -> str:
    return f"{algorithm}:{file}"


def _load(path: Path) -> dict[str, list[Any]]:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(body, dict) or body.get("version") != CACHE_VERSION:
        return {}
    entries = body.get("entries")
    if not isinstance(entries, dict):
        return {}
    return {
        key: value
        for key, value in entries.items()
        if isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, int) for v in value[:3])
        and isinstance(value[3], str)
    }
