"""Artifact directories on disk: list them strictly, copy them hashing in the same pass, stage them.

Copying reads each chunk once: the main thread writes it while a second thread hashes
it (hashlib releases the GIL on large buffers), so verifying a restored artifact costs
about what a plain copy does, and the bytes hashed are the very bytes written.

Staging directories (``.tmp-*``) are flocked by their publisher while it fills them; a
sweep removes only those nobody holds, so a crashed publish leaves nothing for long and a
live one is never disturbed. Where the file system has no flock, nothing is swept.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import stat
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ftctl.cache.stat import StatCache
from ftctl.errors import FtctlError
from ftctl.files import current_umask
from ftctl.provenance.rundir import PROVENANCE_DIR
from ftctl.registries.base import PROVENANCE_FILE

CHUNK = 4 * 1024 * 1024
MAX_ENTRIES = 100_000  # files and directories in one artifact: an adapter has a dozen
TEMP_PREFIX = ".tmp-"
CARD = "README.md"
ALTERED = "an artifact holds regular files only; the registry copy was altered"
NO_FLOCK = frozenset({errno.ENOLCK, errno.EBADF, errno.EOPNOTSUPP, errno.EINVAL})
CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Copier:
    """Copies files while hashing them; three buffers keep reading, writing and hashing apart."""

    pool: ThreadPoolExecutor
    buffers: list[bytearray] = field(default_factory=lambda: [bytearray(CHUNK) for _ in range(3)])

    def copy(self, src: int, dst: int) -> str:
        """sha256 hex of the bytes copied from ``src`` to ``dst``."""
        digest = hashlib.sha256()
        pending: deque[Future[None]] = deque()
        index = 0
        while True:
            while len(pending) > 2:  # a buffer is refilled only once it is hashed
                pending.popleft().result()
            buffer = self.buffers[index % 3]
            n = os.readv(src, [buffer])
            if not n:
                break
            view = memoryview(buffer)[:n]
            pending.append(self.pool.submit(digest.update, view))  # in order: one worker
            while view:
                view = view[os.write(dst, view) :]
            index += 1
        for future in pending:
            future.result()
        return digest.hexdigest()


@contextlib.contextmanager
def copier() -> Iterator[Copier]:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ftctl-hash") as pool:
        yield Copier(pool)


def open_source(path: Path, shown: str, *, follow: bool) -> int:
    """A file to copy, opened non-blocking; anything but a regular file is one error."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        reason = "is a symlink" if exc.errno == errno.ELOOP else f"cannot be read ({exc.strerror})"
        raise FtctlError(f"{shown} {reason}", hint=ALTERED) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for a FIFO since it was listed
        os.close(fd)
        raise FtctlError(f"{shown} is not a regular file", hint=ALTERED)
    return fd


def copy_file(copy: Copier, src: int, dest: Path, *, sync: bool) -> str:
    """Copy ``src`` into the new file ``dest`` (0666 less the umask); its sha256 hex."""
    dst = os.open(dest, CREATE, 0o666)
    try:
        digest = copy.copy(src, dst)
        if sync:
            os.fsync(dst)
        return digest
    finally:
        os.close(dst)


def write_new(path: Path, data: bytes) -> None:
    """A new file in a directory of ours, fsynced."""
    fd = os.open(path, CREATE, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries durable (best effort: not every file system can)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def list_artifact(directory: Path, shown: str) -> list[tuple[str, Path]]:
    """(relative POSIX path, file) of every file of an artifact, sorted; only regular files."""
    found: list[tuple[str, Path]] = []
    stack, seen = [(directory, "")], 0
    while stack:
        current, prefix = stack.pop()
        try:
            with os.scandir(current) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            raise FtctlError(f"{shown}/{prefix} cannot be listed ({exc.strerror})") from None
        seen += len(entries)
        if seen > MAX_ENTRIES:
            raise FtctlError(f"{shown} holds more than {MAX_ENTRIES} entries", hint=ALTERED)
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), f"{rel}/"))
            elif entry.is_file(follow_symlinks=False):
                found.append((rel, Path(entry.path)))
            else:
                kind = "a symlink" if entry.is_symlink() else "not a regular file"
                raise FtctlError(f"{shown}/{rel} is {kind}", hint=ALTERED)
    return sorted(found)


def copy_tree(
    files: list[tuple[str, Path]], dest: Path, shown: str, known: StatCache | None = None
) -> dict[str, str]:
    """Copy listed artifact files into ``dest`` (made here, removed again on any failure).

    Not fsynced: like ``cp``, a copy the caller can redo. Raises OSError as it came.
    ``known``: digests by file identity (the workspace's stat cache, which publish filled);
    a file whose inode, size, mtime and ctime are those it was hashed with is copied
    without hashing it again (any write to it changes its ctime), others are hashed.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        dest.mkdir()
    except FileExistsError:
        raise FtctlError(f"{dest} exists already; refusing to copy an artifact over it") from None
    digests: dict[str, str] = {}
    try:
        with copier() as copy:
            for rel, path in files:
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                src = open_source(path, f"{shown}/{rel}", follow=False)
                try:
                    before = os.fstat(src)
                    cached = known.get(path, before, "sha256") if known is not None else None
                    if cached is not None:
                        _plain_copy(src, target, before.st_size)
                        digests[rel] = cached
                    else:
                        digests[rel] = copy_file(copy, src, target, sync=False)
                        if known is not None:
                            known.put(path, before, "sha256", digests[rel])
                finally:
                    os.close(src)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return digests


def _plain_copy(src: int, dest: Path, size: int) -> None:
    """Copy without reading into Python (copy_file_range, else sendfile)."""
    dst = os.open(dest, CREATE, 0o666)
    try:
        left = size
        while left > 0:
            try:
                sent = os.copy_file_range(src, dst, left)
            except OSError:
                sent = os.sendfile(dst, src, None, left)
            if sent == 0:
                raise OSError(errno.EIO, "the file shrank while it was copied")
            left -= sent
    finally:
        os.close(dst)


def remember(files: list[tuple[str, Path]], digests: dict[str, str], known: StatCache) -> None:
    """Record the digests of files just written (publish), by their identity now."""
    for rel, path in files:
        if rel in digests:
            with contextlib.suppress(OSError):
                known.put(path, os.lstat(path), "sha256", digests[rel])


def make_temp(folder: Path) -> tuple[Path, int]:
    """A staging dir of ours in ``folder`` and its fd, flocked while we fill it."""
    while True:
        tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=folder))
        fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            mine = os.path.samestat(os.fstat(fd), os.lstat(tmp))
        except (BlockingIOError, FileNotFoundError):
            mine = False  # a sweep took it between mkdtemp and flock: make another
        except OSError as exc:
            if exc.errno not in NO_FLOCK:
                os.close(fd)
                raise
            mine = True  # no flock on this file system: the sweep cannot remove it either
        if mine:
            os.fchmod(fd, 0o777 & ~current_umask())  # mkdtemp makes it private
            return tmp, fd
        os.close(fd)


def sweep_temps(folder: Path) -> None:
    """Remove staging dirs that crashed publishes left: by name, real dirs, nobody's flock."""
    try:
        with os.scandir(folder) as scan:
            names = [e.name for e in scan if e.name.startswith(TEMP_PREFIX)]
    except OSError:
        return
    for name in names:
        path = folder / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue  # a symlink, a file, or gone: not ours to remove
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while its publisher lives
            if os.path.samestat(os.fstat(fd), os.lstat(path)):
                shutil.rmtree(path, ignore_errors=True)  # fd-based: never follows a symlink
        except OSError:
            pass
        finally:
            os.close(fd)


def stage(
    tmp: Path, sources: list[tuple[str, Path]], provenance: bytes, card: str | None, display: str
) -> dict[str, str]:
    """Copy the adapter files, the provenance and the card into ``tmp``, all fsynced.

    Returns the adapter files' digests (the subjects); an adapter README.md of its own is
    one of them and is kept, so ``card`` is then not written.
    """
    digests: dict[str, str] = {}
    made = {tmp}
    with copier() as copy:
        for rel, path in sources:
            target = tmp / rel
            for parent in reversed(target.parents):
                if parent.is_relative_to(tmp) and parent not in made:
                    parent.mkdir()
                    made.add(parent)
            src = open_source(path, f"{display}/{rel}", follow=True)
            try:
                digests[rel] = copy_file(copy, src, target, sync=True)
            finally:
                os.close(src)
    provenance_dir = tmp / PROVENANCE_DIR
    provenance_dir.mkdir(exist_ok=True)
    made.add(provenance_dir)
    write_new(tmp / PROVENANCE_FILE, provenance)
    if card is not None and CARD not in digests:
        write_new(tmp / CARD, card.encode("utf-8"))
    for directory in sorted(made, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(directory)
    return digests
