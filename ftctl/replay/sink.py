"""Where a bundle's files go: a directory or a tar stream, each file hashed as it is copied.

Every file is streamed in fixed-size chunks (a 10 GiB base model bundles in
constant memory) and its sha256 (and md5, for DVC's records) is computed from
the bytes actually written, so what the index records is what the bundle holds.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from ftctl.errors import FtctlError
from ftctl.files import check_target, file_kind, write_atomic

CHUNK = 1 << 20


@dataclass(frozen=True)
class Copied:
    sha256: str
    md5: str
    size: int


class Sink(Protocol):
    def add_file(self, rel: str, source: Path) -> Copied: ...

    def add_bytes(self, rel: str, data: bytes) -> Copied: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class _Hashing(io.RawIOBase):
    """A reader that hashes what passes through it (tarfile reads the member's bytes from it)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.sha256.update(data)
        self.md5.update(data)
        self.size += len(data)
        return data

    def copied(self) -> Copied:
        return Copied(self.sha256.hexdigest(), self.md5.hexdigest(), self.size)


def open_regular(source: Path, shown: str) -> tuple[IO[bytes], int]:
    """A regular file opened without blocking or following a swapped-in FIFO; (stream, size)."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise FtctlError(f"{shown} cannot be read ({exc.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FtctlError(f"{shown} is {file_kind(st.st_mode)}, not a regular file")
    return open(fd, "rb", buffering=0), st.st_size


class DirSink:
    """Files written under ``root`` (which must not exist yet, or be empty)."""

    def __init__(self, root: Path) -> None:
        if root.exists() and (not root.is_dir() or root.is_symlink() or any(root.iterdir())):
            raise FtctlError(
                f"{root} exists and is not an empty directory", hint="choose another -o"
            )
        root.mkdir(parents=True, exist_ok=True)
        self.root = root

    def _target(self, rel: str) -> Path:
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        check_target(target)
        return target

    def add_file(self, rel: str, source: Path) -> Copied:
        stream, _ = open_regular(source, str(source))
        hashing = _Hashing(stream)
        with stream, self._target(rel).open("xb") as out:
            while chunk := hashing.read(CHUNK):
                out.write(chunk)
        return hashing.copied()

    def add_bytes(self, rel: str, data: bytes) -> Copied:
        write_atomic(self._target(rel), data)
        return _of_bytes(data)

    def close(self) -> None:
        pass

    def abort(self) -> None:
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)


class TarSink:
    """A tar archive (``.tar``, or ``.tar.zst`` through zstandard), written to a temp name and
    renamed into place when whole."""

    def __init__(self, path: Path, zstd: bool) -> None:
        if path.exists() or path.is_symlink():
            raise FtctlError(f"{path} exists", hint="choose another -o; a bundle is never replaced")
        self.path = path
        self.partial = path.with_name(f".{path.name}.partial")
        self.raw = self.partial.open("wb")
        self.compressor: IO[bytes] | None = None
        if zstd:
            try:
                import zstandard  # type: ignore[import-not-found]  # optional, untyped
            except ImportError:
                self.raw.close()
                self.partial.unlink(missing_ok=True)
                raise FtctlError(
                    f"{path}: .tar.zst needs the zstandard package, which is not installed",
                    hint="pip install zstandard, or write a .tar or a directory",
                ) from None
            self.compressor = zstandard.ZstdCompressor().stream_writer(self.raw, closefd=False)
        stream = self.compressor if self.compressor is not None else self.raw
        # Closed by close() or abort(): the archive outlives this constructor.
        self.tar = tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115

    def _info(self, rel: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(rel)
        info.size, info.mode, info.mtime = size, 0o644, 0
        return info

    def add_file(self, rel: str, source: Path) -> Copied:
        stream, size = open_regular(source, str(source))
        hashing = _Hashing(stream)
        with stream:
            self.tar.addfile(self._info(rel, size), hashing)
        copied = hashing.copied()
        if copied.size != size:
            raise FtctlError(f"{source} changed while it was bundled", hint="bundle again")
        return copied

    def add_bytes(self, rel: str, data: bytes) -> Copied:
        self.tar.addfile(self._info(rel, len(data)), io.BytesIO(data))
        return _of_bytes(data)

    def close(self) -> None:
        self.tar.close()
        if self.compressor is not None:
            self.compressor.close()
        self.raw.flush()
        os.fsync(self.raw.fileno())
        self.raw.close()
        self.partial.replace(self.path)

    def abort(self) -> None:
        self.raw.close()
        self.partial.unlink(missing_ok=True)


def _of_bytes(data: bytes) -> Copied:
    return Copied(
        hashlib.sha256(data).hexdigest(),
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
        len(data),
    )


def sink_for(out: Path) -> Sink:
    name = out.name
    if name.endswith(".tar.zst"):
        return TarSink(out, zstd=True)
    if name.endswith(".tar"):
        return TarSink(out, zstd=False)
    return DirSink(out)
