"""Content digests of files and directory trees, through the stat cache.

A tree digest binds names to contents: sha256 over the sorted list of
``(relative POSIX path, sha256 of the file)``, so renaming a file changes the
digest, unlike OpenSSF model-signing's root digest. Symlinks that leave the
tree's root are refused; symlinks inside it are hashed as what they point at.
Only regular files are read: a FIFO, socket or device in a tree is refused.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ftctl.cache.stat import StatCache
from ftctl.canonical import sha256_of
from ftctl.errors import FtctlError
from ftctl.files import file_kind

CHUNK = 4 * 1024 * 1024
# Kernel pseudo-filesystems: endless, blocking or secret files (/proc/kmsg, /proc/self/environ).
SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))
NOT_REGULAR = "model and run directories hold regular files only; remove it"
# Directories that hold tool state, not content (huggingface_hub's local_dir metadata, VCS).
IGNORED_DIRS = frozenset({".git", ".cache", ".dvc", "__pycache__", ".ipynb_checkpoints"})


@dataclass(frozen=True)
class TreeDigest:
    digest: str  # "sha256:<hex>"
    size: int  # bytes in all files
    nfiles: int


def file_digest(path: Path, algorithm: str, cache: StatCache) -> str:
    """Hex digest of one file's bytes (``sha256`` or ``md5``), read only on a cache miss."""
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise FtctlError(f"{path} is {file_kind(st.st_mode)}, not a regular file", hint=NOT_REGULAR)
    cached = cache.get(path, st, algorithm)
    if cached is not None:
        return cached
    digest = hashlib.new(algorithm)
    # Non-blocking: a FIFO swapped in after the stat above is refused, not waited on.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise FtctlError(f"{path} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FtctlError(f"{path} is not a regular file", hint=NOT_REGULAR)
    with open(fd, "rb", buffering=0) as handle:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while True:
            try:
                n = handle.readinto(buffer)
            except OSError as exc:  # an I/O error, or a kernel file that refuses plain reads
                raise FtctlError(f"{path} cannot be read ({exc.strerror})") from None
            if not n:
                break
            digest.update(view[:n])
    value = digest.hexdigest()
    cache.put(path, st, algorithm, value)
    return value


def refuse_system_tree(root: Path, display: str) -> None:
    """A root inside /proc, /sys or /dev is refused: its files block, never end or leak secrets."""
    real = root.resolve()
    for system in SYSTEM_TREES:
        if real.is_relative_to(system):
            raise FtctlError(
                f"{display} is under {system} ({real}): kernel files, not a model, dataset or "
                "run directory",
                hint="name a directory of regular files",
            )


def walk_files(root: Path, display: str) -> Iterator[tuple[str, Path]]:
    """(relative POSIX path, file) for every file under ``root``, sorted, refusing escapes."""
    refuse_system_tree(root, display)
    real_root = root.resolve()
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        for name in sorted(filenames + [d for d in dirnames if Path(directory, d).is_symlink()]):
            path = Path(directory) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                target = path.resolve()
                if not target.is_relative_to(real_root):
                    rel = path.relative_to(root).as_posix()
                    raise FtctlError(
                        f"{display}/{rel} is a symlink to {target}, outside {display}",
                        hint="copy the file in, or point the recipe at the real location",
                    )
                if target.is_dir():
                    continue  # files under it are reached through the real directory
            elif not stat.S_ISREG(mode):  # a FIFO would block the read, a device never end
                rel = path.relative_to(root).as_posix()
                raise FtctlError(
                    f"{display}/{rel} is {file_kind(mode)}, not a regular file", hint=NOT_REGULAR
                )
            yield path.relative_to(root).as_posix(), path


def tree_digest(root: Path, display: str, cache: StatCache) -> TreeDigest:
    """Digest of a file or of a directory tree (names bound to contents)."""
    refuse_system_tree(root, display)
    try:
        st = root.stat()
    except OSError as exc:  # gone since the caller looked, or a symlink loop
        raise FtctlError(f"{display} cannot be read ({exc.strerror})") from None
    if stat.S_ISREG(st.st_mode):
        return TreeDigest(f"sha256:{file_digest(root, 'sha256', cache)}", st.st_size, 1)
    if not stat.S_ISDIR(st.st_mode):  # os.walk would list nothing: an empty tree's digest
        raise FtctlError(
            f"{display} is {file_kind(st.st_mode)}, not a regular file", hint=NOT_REGULAR
        )
    entries: list[tuple[str, str]] = []
    size = 0
    for rel, path in walk_files(root, display):
        entries.append((rel, file_digest(path, "sha256", cache)))
        size += path.stat().st_size
    return TreeDigest(sha256_of(entries), size, len(entries))
