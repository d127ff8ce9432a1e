"""A stat cache: file digests keyed by (device, inode, size, mtime_ns, ctime_ns), so unchanged files are never re-read.

Only an optimisation, in the manner of DVC's state table: a miss is silent, a
corrupt or foreign cache file is discarded and rebuilt, never trusted.
Entries live in ``.ftctl/statcache.json`` and are written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ftctl.cache import base, paths

CACHE_VERSION = 2


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
    def of(cls, root: Path) -> StatCache:
        """The workspace's stat cache."""
        return cls(paths.stat_cache(root))

    @classmethod
    def disabled(cls) -> StatCache:
        """A cache that remembers nothing (for tests and one-off hashing)."""
        return cls(None)

    def get(self, file: Path, st: os.stat_result, algorithm: str) -> str | None:
        entry = self._entries.get(_key(file, algorithm))
        if entry is not None and entry[:-1] == _identity(st):
            self.hits += 1
            return str(entry[-1])
        self.misses += 1
        return None

    def put(self, file: Path, st: os.stat_result, algorithm: str, digest: str) -> None:
        if self.path is None:
            return
        self._entries[_key(file, algorithm)] = [*_identity(st), digest]
        self._dirty = True

    def save(self) -> None:
        """Write the cache if anything changed; a cache that cannot be written is skipped."""
        if self.path is None or not self._dirty:
            return
        if base.save(self.path, CACHE_VERSION, {"entries": self._entries}):
            self._dirty = False


def _identity(st: os.stat_result) -> list[int]:
    """What must be unchanged for a digest to stand: the file's identity, size, mtime and ctime.

    ctime cannot be set back by a user, so an in-place edit that restores the size and
    mtime (``touch -r``) still misses.
    """
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _key(file: Path, algorithm: str) -> str:
    return f"{algorithm}:{file}"


def _load(path: Path) -> dict[str, list[Any]]:
    entries = base.load(path, CACHE_VERSION).get("entries")
    if not isinstance(entries, dict):
        return {}
    return {
        key: value
        for key, value in entries.items()
        if isinstance(value, list)
        and len(value) == 6
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value[:5])
        and isinstance(value[5], str)
    }
