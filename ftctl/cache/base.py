"""The one file format of ftctl's caches: a versioned JSON object, authenticated, written atomically.

A cache is only an optimisation, in the manner of DVC's state table: a
missing, unreadable, oversized, corrupt or foreign file (another version,
another ftctl) reads as empty and is rebuilt; a cache that cannot be written
(a read-only checkout) is skipped.

A cache must never change an answer, and ``.ftctl/`` is as open to a pull
request as any other path (a committed file, a restored CI cache). So each
file starts with an HMAC-SHA256 of its JSON body under a key that lives
outside the workspace: ``FTCTL_CACHE_KEY`` when set (a CI secret, so caches
can travel between runs), else a random key made once in the user's cache
directory. A file whose MAC does not verify is discarded like a corrupt one:
it costs time, never truth. Without a usable key, caches are neither read nor
written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from ftctl.files import UnreadableInput, UnsafeTarget, read_regular, write_atomic

MAX_BYTES = 256 * 1024 * 1024  # far above 10,000 recipes' worth; a larger file is not ours
KEY_ENV = "FTCTL_CACHE_KEY"
_MAC_LEN = 64  # hex digits of the HMAC-SHA256 on the first line


def key_file() -> Path:
    """Where the machine's own cache key lives (outside any workspace)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ftctl" / "cache.key"


@lru_cache(maxsize=1)
def cache_key() -> bytes | None:
    """The key caches are authenticated with, or None when none can be had."""
    configured = os.environb.get(KEY_ENV.encode())
    if configured:
        return hashlib.sha256(b"ftctl-cache\0" + configured).digest()
    path = key_file()
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    except OSError:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(32))
    except FileExistsError:
        pass  # another ftctl made it meanwhile
    except OSError:
        return None
    try:
        return _read_key(path)
    except OSError:
        return None


def _read_key(path: Path) -> bytes | None:
    try:
        raw = read_regular(path, 32, str(path))
    except UnreadableInput as exc:
        if "not found" in exc.problem.message:
            raise FileNotFoundError(path) from None
        raise OSError(exc.problem.message) from None
    return raw if len(raw) == 32 else None


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).hexdigest().encode("ascii")


def load(path: Path | None, version: int, **stamp: Any) -> dict[str, Any]:
    """The cache's body when it is authentic and its ``version`` and every ``stamp`` field match, else ``{}``."""
    key = cache_key()
    if path is None or key is None:
        return {}
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError:
        return {}
    mac, newline, body = raw[:_MAC_LEN], raw[_MAC_LEN : _MAC_LEN + 1], raw[_MAC_LEN + 1 :]
    if len(raw) > MAX_BYTES or newline != b"\n" or not hmac.compare_digest(mac, _mac(key, body)):
        return {}
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(document, dict) or document.get("version") != version:
        return {}
    if any(document.get(name) != value for name, value in stamp.items()):
        return {}
    return document


def save(path: Path | None, version: int, body: dict[str, Any], **stamp: Any) -> bool:
    """Write ``body`` with its version, stamp and MAC; False when the cache cannot be written."""
    key = cache_key()
    if path is None or key is None:
        return False
    document = json.dumps(
        {**body, "version": version, **stamp}, separators=(",", ":"), ensure_ascii=False
    )
    data = document.encode("utf-8")
    try:
        write_atomic(path, _mac(key, data) + b"\n" + data)
    except (OSError, UnsafeTarget):
        return False
    return True
