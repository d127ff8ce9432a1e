"""The state lock, ``.ftctl/state.lock``: one apply at a time per workspace.

The lock is a small JSON file naming its holder. It is written whole to a temp file and
hard-linked into place, which fails when a lock exists: a reader never sees half a lock,
and of two processes linking at once exactly one wins. The holder also keeps the file
flocked, which the kernel drops when the process dies however it dies.

A lock whose holder is certainly dead (on this host, its pid gone or now another
process, and its flock free) is taken over with a warning. Takers serialise on that
flock, and remove the stale file only if it is still the inode they read: a lock taken
in between is never lost. A lock from another host is never taken over: its holder may
be alive there (``ftctl force-unlock ID`` after checking). A state.lock ftctl cannot read
(a symlink, a FIFO, bad JSON) is never removed or waited on: the error says to check
and remove it. See docs/apply.md, "State lock".
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import json
import os
import socket
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ftctl import __version__
from ftctl.apply.duration import parse_duration
from ftctl.cache import paths
from ftctl.canonical import JSONError, strict_loads
from ftctl.errors import FtctlError, excerpt
from ftctl.files import TEMP_SUFFIX, current_umask, file_kind

__all__ = [
    "LockInfo",
    "StateLockUnreadable",
    "StateLocked",
    "force_unlock",
    "holder_alive",
    "lock_to_unlock",
    "parse_duration",
    "read_lock",
    "state_lock",
]

POLL = 0.2  # seconds between tries while another apply holds the lock
TAKEOVER_GRACE = 0.5  # seconds another taker may hold a stale lock's flock
MAX_LOCK_BYTES = 64 * 1024  # a lock is about 300 bytes
UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class LockInfo(BaseModel):
    """What state.lock says; unknown keys are ignored, so a newer ftctl's lock still holds."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    id: str = Field(pattern=UUID)
    holder: str = Field(max_length=1024)  # user@host
    pid: int = Field(gt=0, lt=2**31)
    host: str = Field(max_length=1024)
    operation: str = Field(max_length=64)
    since: str = Field(max_length=64)  # UTC, ISO 8601
    version: str = Field(max_length=64)  # of the ftctl that holds it
    started: int | None = Field(None, ge=0)  # the holder's start time (/proc), against pid reuse

    def describe(self) -> str:
        """``user@host (pid 12, apply since ..., id ...)`` for messages."""
        where = "" if self.holder.endswith(f"@{self.host}") else f" on {self.host}"
        return (
            f"{self.holder} (pid {self.pid}{where}, {self.operation} since {self.since}, "
            f"id {self.id})"
        )


class StateLocked(FtctlError):
    """Another process holds the state lock."""

    def __init__(self, info: LockInfo, shown: str) -> None:
        self.info = info
        super().__init__(
            f"{shown}: the state is locked by {info.describe()}",
            hint=f"wait for it, or if it is dead: ftctl force-unlock {info.id}",
        )


class StateLockUnreadable(FtctlError):
    """state.lock is not a lock ftctl wrote: never removed, never waited on."""

    def __init__(self, shown: str, reason: str) -> None:
        super().__init__(
            f"{shown} {reason}, not a state lock ftctl can read",
            hint=f"check that no ftctl apply is running, then remove it: rm {shown}",
        )


def _shown(root: Path) -> str:
    return paths.state_lock(root).relative_to(root).as_posix()


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot), where /proc tells."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read(4096)
        return int(raw.rsplit(b")", 1)[1].split()[19])  # field 22; the name may hold ") "
    except (OSError, IndexError, ValueError):
        return None


def _holder_gone(info: LockInfo) -> bool:
    """Whether the holder is certainly dead: on this host, its pid gone or reused."""
    if info.host != socket.gethostname():
        return False
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass  # EPERM: it lives, as another user
    if info.started is not None:
        now = _start_time(info.pid)
        return now is not None and now != info.started
    return False


def holder_alive(info: LockInfo) -> bool | None:
    """Whether the holder still runs; None when it runs on another host (nobody can tell)."""
    return None if info.host != socket.gethostname() else not _holder_gone(info)


def _open(path: Path, shown: str) -> int | None:
    """state.lock opened for reading (never following a symlink, never blocking); None if absent."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        reason = "is a symlink" if exc.errno == errno.ELOOP else f"cannot be read ({exc.strerror})"
        raise StateLockUnreadable(shown, reason) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise StateLockUnreadable(shown, f"is {file_kind(mode)}")
    return fd


def _read_fd(fd: int, shown: str) -> LockInfo:
    chunks, size = [], 0
    while size <= MAX_LOCK_BYTES:
        chunk = os.pread(fd, MAX_LOCK_BYTES + 1 - size, size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_LOCK_BYTES:
        raise StateLockUnreadable(shown, f"is larger than {MAX_LOCK_BYTES // 1024} KiB")
    try:
        return LockInfo.model_validate(strict_loads(b"".join(chunks)))
    except JSONError as exc:
        raise StateLockUnreadable(shown, f"is not valid JSON ({exc.reason})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "content"
        raise StateLockUnreadable(shown, f"has a bad {where} ({first['msg']})") from None


def read_lock(root: Path) -> LockInfo | None:
    """The state lock of the workspace at ``root``, or None; StateLockUnreadable if corrupt."""
    shown = _shown(root)
    fd = _open(paths.state_lock(root), shown)
    if fd is None:
        return None
    try:
        return _read_fd(fd, shown)
    finally:
        os.close(fd)


def _new_info(operation: str) -> LockInfo:
    host = socket.gethostname()
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no passwd entry (a container run as a bare uid)
        user = f"uid{os.getuid()}"
    return LockInfo(
        id=str(uuid.uuid4()),
        holder=f"{user}@{host}",
        pid=os.getpid(),
        host=host,
        operation=operation,
        since=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        version=__version__,
        started=_start_time(os.getpid()),
    )


def _create(path: Path, info: LockInfo) -> int | None:
    """Link a whole lock file into place: its fd, flocked while we hold it; None when held."""
    payload = json.dumps(info.model_dump(exclude_none=True), indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with contextlib.suppress(OSError):  # no flock on some network file systems
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        view = memoryview(payload.encode("utf-8"))
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, 0o666 & ~current_umask())
        os.fsync(fd)
        os.link(tmp, path)
    except FileExistsError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return fd


def _remove_exact(path: Path, held: os.stat_result) -> bool:
    """Remove ``path`` if it is still the file ``held``; True when removed.

    Renamed aside first and checked there: a lock that replaced it since the check is put
    back, never lost.
    """
    try:
        if not os.path.samestat(os.lstat(path), held):
            return False
        aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}.stale")
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    if os.path.samestat(os.lstat(aside), held):
        os.unlink(aside)
        return True
    with contextlib.suppress(OSError):
        os.link(aside, path)
    os.unlink(aside)
    return False


def _flock_soon(fd: int) -> bool:
    """flock ``fd``, waiting out another taker (it holds it for microseconds); False if held on."""
    deadline = time.monotonic() + TAKEOVER_GRACE
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        except OSError:
            return True  # no flock on this file system: the pid check decides alone


def _take_over(path: Path, shown: str, stale: LockInfo) -> bool:
    """Remove the lock ``stale`` whose holder is gone, unless it changed; True when removed."""
    fd = _open(path, shown)
    if fd is None:
        return False
    try:
        if not _flock_soon(fd):
            return False  # a child of the dead holder keeps it: the lock is not free
        if _read_fd(fd, shown).id != stale.id:
            return False
        return _remove_exact(path, os.fstat(fd))
    finally:
        os.close(fd)


def _acquire(
    root: Path,
    info: LockInfo,
    timeout: float,
    on_wait: Callable[[LockInfo], None] | None,
    warn: Callable[[str], None] | None,
) -> int:
    path, shown = paths.state_lock(root), _shown(root)
    deadline = time.monotonic() + timeout
    waited = False
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = _create(path, info)
        except OSError as exc:
            raise FtctlError(f"{shown}: cannot take the state lock ({exc.strerror})") from None
        if fd is not None:
            return fd
        held = read_lock(root)
        if held is None:
            continue  # released in between: try again at once
        if _holder_gone(held):
            if _take_over(path, shown, held):
                if warn is not None:
                    warn(f"took over the state lock of {held.describe()}: that process is gone")
                continue
            now_held = read_lock(root)
            if now_held is None or now_held.id != held.id:
                continue  # another process took it over first: look at the new one
        now = time.monotonic()
        if now >= deadline:
            raise StateLocked(held, shown)
        if not waited and on_wait is not None:
            on_wait(held)
            waited = True
        time.sleep(min(POLL, deadline - now))


@contextmanager
def state_lock(
    root: Path,
    operation: str,
    *,
    timeout: float,
    on_wait: Callable[[LockInfo], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Iterator[LockInfo]:
    """Hold ``.ftctl/state.lock`` for ``operation``, waiting up to ``timeout`` seconds.

    ``on_wait`` is called once if it has to wait; ``warn`` when it takes over a dead
    holder's lock. Released on leaving, Ctrl-C included, if the file is still ours.
    """
    info = _new_info(operation)
    fd = _acquire(root, info, timeout, on_wait, warn)
    try:
        yield info
    finally:
        try:
            with contextlib.suppress(OSError):
                _remove_exact(paths.state_lock(root), os.fstat(fd))
        finally:
            os.close(fd)


def lock_to_unlock(root: Path, lock_id: str) -> LockInfo:
    """The lock ``lock_id`` names; one error when there is none or it has another id."""
    shown = _shown(root)
    held = read_lock(root)
    if held is None:
        raise FtctlError(f"{shown}: no state lock is held", hint="there is nothing to unlock")
    if held.id != lock_id:
        raise FtctlError(
            f"{shown}: the lock id is not {excerpt(lock_id)}; it is held by {held.describe()}",
            hint=f"if that process is dead: ftctl force-unlock {held.id}",
        )
    return held


def force_unlock(root: Path, lock_id: str) -> LockInfo:
    """Remove the state lock if its id is ``lock_id`` (whoever holds it); what it said."""
    shown, path = _shown(root), paths.state_lock(root)
    held = lock_to_unlock(root, lock_id)
    fd = _open(path, shown)
    if fd is None:
        raise FtctlError(f"{shown}: the lock was released meanwhile", hint="nothing to unlock")
    try:
        now = _read_fd(fd, shown)
        if now.id != held.id or not _remove_exact(path, os.fstat(fd)):
            raise FtctlError(
                f"{shown}: the lock changed meanwhile", hint="look again: ftctl force-unlock ID"
            )
    finally:
        os.close(fd)
    return now
