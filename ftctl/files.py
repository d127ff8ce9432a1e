"""Reading input files safely, and writing files ftctl owns atomically.

Reading: regular files only (a FIFO, a device or a socket is refused, never
waited on), at most a stated size, and opened without following a path out of
the directory it must stay in.

Writing: atomically, with the mode a user expects, never over something else.

A reader sees the old file or the new one, never a torn one: the data goes to
a temp file in the same directory, is fsynced and renamed over the target.
The new file gets the mode any program would create it with (0666 less the
umask, so a group that shares a checkout can read locks and manifests); only
callers that say so (private keys) get a stricter one. A target that is a
symlink, a directory, a FIFO or a device is refused, never replaced or
written through.
"""

from __future__ import annotations

import contextlib
import os
import stat
from functools import lru_cache
from pathlib import Path

from ftctl.errors import FtctlError, Location

TEMP_SUFFIX = ".tmp"  # temp files are ".<name>.<random>.tmp", which .gitignore patterns can name


class UnsafeTarget(FtctlError):
    """The path to write exists and is not a regular file."""


class UnreadableInput(FtctlError):
    """An input file that is not a regular file, too large, outside where it must be, or unreadable."""


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words (for messages)."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def confined(path: Path, root: Path) -> bool:
    """Whether ``path``, symlinks resolved, lies inside ``root``."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False


def read_regular(
    path: str | Path,
    limit: int,
    shown: str,
    *,
    what: str = "file",
    expected: str = "a regular file",
    hint: str | None = None,
) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; anything else is one error naming ``shown``.

    Opened non-blocking, so a FIFO is refused at once instead of waiting for a writer.
    """
    return read_regular_stat(path, limit, shown, what=what, expected=expected, hint=hint)[0]


def read_regular_stat(
    path: str | Path,
    limit: int,
    shown: str,
    *,
    what: str = "file",
    expected: str = "a regular file",
    hint: str | None = None,
) -> tuple[bytes, os.stat_result]:
    """:func:`read_regular`, and the ``fstat`` of the file it read (no second ``stat`` of the path)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UnreadableInput(f"{what} not found", location=Location(shown)) from None
    except OSError as exc:
        raise _cannot_read(what, exc, shown) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableInput(
                f"is {file_kind(st.st_mode)}, expected {expected}", location=Location(shown)
            )
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise _cannot_read(what, exc, shown) from None
    finally:
        os.close(fd)
    if size > limit:
        raise UnreadableInput(
            f"{what} is larger than {_size(limit)}", location=Location(shown), hint=hint
        )
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), st


def _cannot_read(what: str, exc: OSError, shown: str) -> UnreadableInput:
    return UnreadableInput(f"cannot read {what} ({exc.strerror})", location=Location(shown))


SMALL_FILE = 16 * 1024 * 1024  # locks, recipes, manifests, run records: far below this


def read_small(path: str | Path, limit: int = SMALL_FILE) -> bytes:
    """:func:`read_regular` for files ftctl reads whole (named by their path in errors)."""
    return read_regular(path, limit, str(path))


def _size(limit: int) -> str:
    return f"{limit // 1024} KiB" if limit >= 1024 else f"{limit} bytes"


@lru_cache(maxsize=1)
def current_umask() -> int:
    """The process umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, then put it back
    os.umask(mask)
    return mask


def check_target(path: Path) -> None:
    """Refuse to write over anything but a regular file (or nothing)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a symlink"
            if stat.S_ISLNK(st.st_mode)
            else "a directory"
            if stat.S_ISDIR(st.st_mode)
            else "not a regular file"
        )
        raise UnsafeTarget(
            f"{path} is {kind}; refusing to replace it", hint="remove it or choose another path"
        )


STALE_AFTER = 60.0  # seconds: no write of ours takes this long, so an older temp file is a leftover


@lru_cache(maxsize=64)
def remove_stale_temps(directory: Path) -> None:
    """Remove temp files a killed ftctl left in ``directory`` (once per directory per run)."""
    import time

    cutoff = time.time() - STALE_AFTER
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)):
            continue
        with contextlib.suppress(OSError):
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
                os.unlink(entry.path)


def write_atomic(path: Path, data: bytes | str, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory, fsync, rename.

    ``mode`` defaults to 0666 less the umask, as for any newly created file.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent)
    import tempfile  # imported when something is written: the read-only commands never need it

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fchmod(handle.fileno(), mode if mode is not None else 0o666 & ~current_umask())
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
