"""Read a bundle back: check it against its index while copying it into a fresh workspace.

A bundle is hostile input like any file: a tar member that is not a regular
file, has an absolute or ``..`` name, is not in the index, or declares another
size than the index records is refused before anything is written for it; every
file is streamed and its sha256 compared with the index; nothing else is there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from ftctl.canonical import JSONError, strict_loads
from ftctl.errors import FtctlError
from ftctl.files import UnreadableInput, file_kind, read_regular
from ftctl.provenance.statement import check_subject_name
from ftctl.replay.bundle import INDEX, BundleIndex, IndexEntry
from ftctl.replay.sink import CHUNK, open_regular

MAX_INDEX = 64 * 1024 * 1024
HINT = "the bundle is damaged or was altered: make it again with `ftctl bundle`"


def unpack(bundle: Path, into: Path) -> BundleIndex:
    """Copy ``bundle`` (a directory, ``.tar`` or ``.tar.zst``) into the empty directory ``into``."""
    if bundle.is_dir() and not bundle.is_symlink():
        return _from_directory(bundle, into)
    with _plain_tar(bundle) as tar_path:
        return _from_tar(bundle, tar_path, into)


def parse_index(data: bytes, shown: str) -> BundleIndex:
    try:
        index = BundleIndex.model_validate(strict_loads(data))
    except JSONError as exc:
        raise FtctlError(f"{shown}: {INDEX} is not valid JSON ({exc.reason})", hint=HINT) from None
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FtctlError(
            f"{shown}: {INDEX} is malformed: {where}: {first['msg']}", hint=HINT
        ) from None
    seen: set[str] = set()
    for entry in index.files:
        try:
            check_subject_name(entry.path)
        except ValueError as exc:
            raise FtctlError(f"{shown}: {INDEX}: {exc}", hint=HINT) from None
        if entry.path in seen or entry.path == INDEX:
            raise FtctlError(f"{shown}: {INDEX} lists {entry.path} twice", hint=HINT)
        seen.add(entry.path)
    for needed in (index.manifest, index.recipe, index.lock):
        if needed not in seen:
            raise FtctlError(f"{shown}: {INDEX} does not list {needed}", hint=HINT)
    return index


def _copy_checked(stream: IO[bytes], entry: IndexEntry, into: Path, shown: str) -> None:
    target = into / entry.path
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with target.open("xb") as out:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > entry.size:
                break
            digest.update(chunk)
            out.write(chunk)
    if size != entry.size or digest.hexdigest() != entry.sha256:
        raise FtctlError(f"{shown}/{entry.path} differs from the bundle's {INDEX}", hint=HINT)


def _from_directory(bundle: Path, into: Path) -> BundleIndex:
    try:
        data = read_regular(bundle / INDEX, MAX_INDEX, f"{bundle}/{INDEX}", what="bundle index")
    except UnreadableInput as exc:
        raise FtctlError(
            exc.problem.message, hint="is it a bundle made by `ftctl bundle`?"
        ) from None
    index = parse_index(data, str(bundle))
    listed = {e.path: e for e in index.files}
    for directory, dirnames, filenames in os.walk(bundle):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if Path(directory, d).is_symlink()]):
            path = Path(directory) / name
            rel = path.relative_to(bundle).as_posix()
            mode = path.lstat().st_mode
            if not stat.S_ISREG(mode):
                raise FtctlError(
                    f"{bundle}/{rel} is {file_kind(mode)}, not a regular file", hint=HINT
                )
            if rel != INDEX and rel not in listed:
                raise FtctlError(f"{bundle}/{rel} is not in the bundle's {INDEX}", hint=HINT)
    for entry in index.files:
        path = bundle / entry.path
        if not path.is_file():
            raise FtctlError(f"{bundle}/{entry.path} is missing", hint=HINT)
        stream, _ = open_regular(path, f"{bundle}/{entry.path}")
        with stream:
            _copy_checked(stream, entry, into, str(bundle))
    return index


@contextmanager
def _plain_tar(bundle: Path) -> Iterator[Path]:
    """The bundle as an uncompressed tar (a .tar.zst is decompressed to a temp file first)."""
    if not bundle.name.endswith(".tar.zst"):
        yield bundle
        return
    try:
        import zstandard  # type: ignore[import-not-found]  # optional, untyped
    except ImportError:
        raise FtctlError(
            f"{bundle}: reading .tar.zst needs the zstandard package, which is not installed",
            hint="pip install zstandard, or decompress it: zstd -d",
        ) from None
    with tempfile.TemporaryDirectory() as scratch:
        plain = Path(scratch) / "bundle.tar"
        stream, _ = open_regular(bundle, str(bundle))
        with stream, plain.open("wb") as out:
            try:
                zstandard.ZstdDecompressor().copy_stream(stream, out)
            except zstandard.ZstdError as exc:
                raise FtctlError(f"{bundle}: not a zstd stream ({exc})", hint=HINT) from None
        yield plain


def _from_tar(bundle: Path, tar_path: Path, into: Path) -> BundleIndex:
    shown = str(bundle)
    try:
        tar = tarfile.open(tar_path, "r:")  # noqa: SIM115  # closed by the with below
    except (tarfile.TarError, OSError) as exc:
        raise FtctlError(f"{shown}: not a tar archive ({exc})", hint=HINT) from None
    with tar:
        try:
            members = tar.getmembers()  # headers only: tarfile seeks over the contents
        except tarfile.TarError as exc:
            raise FtctlError(f"{shown}: the archive is damaged ({exc})", hint=HINT) from None
        index_members = [m for m in members if m.name == INDEX]
        if len(index_members) != 1 or not index_members[0].isreg():
            raise FtctlError(
                f"{shown} holds no single {INDEX}", hint="is it a bundle made by `ftctl bundle`?"
            )
        if index_members[0].size > MAX_INDEX:
            raise FtctlError(f"{shown}: its {INDEX} is over {MAX_INDEX >> 20} MiB", hint=HINT)
        index = parse_index(_read_member(tar, index_members[0], shown), shown)
        listed = {e.path: e for e in index.files}
        seen: set[str] = set()
        for member in members:
            _check_member(member, listed, seen, shown)
        missing = sorted(set(listed) - seen)
        if missing:
            raise FtctlError(f"{shown}: {missing[0]} is missing from the archive", hint=HINT)
        for member in members:
            if member.name == INDEX or member.isdir():
                continue
            stream = tar.extractfile(member)
            if stream is None:
                raise FtctlError(f"{shown}: {member.name} cannot be read", hint=HINT)
            with stream:
                _copy_checked(stream, listed[member.name], into, shown)
    return index


def _check_member(
    member: tarfile.TarInfo, listed: dict[str, IndexEntry], seen: set[str], shown: str
) -> None:
    name = member.name
    try:
        check_subject_name(name.rstrip("/") if member.isdir() else name)
    except ValueError as exc:
        raise FtctlError(f"{shown}: member {exc}", hint=HINT) from None
    if member.isdir():
        return
    if not member.isreg():
        what = (
            "a symlink"
            if member.issym()
            else "a hard link"
            if member.islnk()
            else "not a regular file"
        )
        raise FtctlError(f"{shown}: {name} is {what}", hint=HINT)
    if name == INDEX:
        return
    entry = listed.get(name)
    if entry is None:
        raise FtctlError(f"{shown}: {name} is not in the bundle's {INDEX}", hint=HINT)
    if name in seen:
        raise FtctlError(f"{shown}: {name} is in the archive twice", hint=HINT)
    if member.size != entry.size:
        raise FtctlError(
            f"{shown}: {name} declares {member.size} bytes, the bundle's {INDEX} records {entry.size}",
            hint=HINT,
        )
    seen.add(name)


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, shown: str) -> bytes:
    stream = tar.extractfile(member)
    if stream is None:
        raise FtctlError(f"{shown}: {member.name} cannot be read", hint=HINT)
    with stream:
        return stream.read(MAX_INDEX + 1)


def fresh_workspace(parent: Path | None = None) -> Path:
    """An empty directory for one replay (removed by the caller)."""
    return Path(tempfile.mkdtemp(prefix="ftctl-replay-", dir=parent))


def remove_workspace(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
