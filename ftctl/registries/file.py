"""The ``file://PATH/<name>`` registry: artifacts as directories, found by fingerprint.

    PATH/
      <name>/<fingerprint hex>/      adapter files, README.md (the card), .ftctl/provenance.intoto.json
      .index/<fingerprint hex>.json  {"name": "<recipe>", "path": "<name>/<fingerprint hex>"}

A publication is staged in ``PATH/<name>/.tmp-*`` (same file system), fsynced and renamed
into place: a reader sees the whole artifact or none. The index lets restore find a
fingerprint published under any recipe name. Every file here is hostile input: an index
entry is bounded strict JSON whose path must stay inside PATH and name a whole artifact,
and an artifact may hold only regular files and directories.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ftctl.cache.stat import StatCache
from ftctl.canonical import JSONError, canonical_json, strict_loads
from ftctl.errors import FtctlError, excerpt
from ftctl.files import UnreadableInput, confined, read_regular, write_atomic
from ftctl.hashing import walk_files
from ftctl.provenance.rundir import PROVENANCE_DIR, artifact_digests
from ftctl.registries import tree
from ftctl.registries.base import PROVENANCE_FILE, Found, Published
from ftctl.workspace import resolve_path

SCHEME = "file://"
INDEX_DIR = ".index"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_INDEX_BYTES = 64 * 1024  # an entry is two short strings
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
LOST_RACE = frozenset({errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR})  # rename onto a publication


class IndexEntry(BaseModel):
    """``PATH/.index/<fp hex>.json``; unknown keys are ignored (a newer ftctl may add some)."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    name: str = Field(min_length=1, max_length=256)
    path: str = Field(min_length=66, max_length=400)


def fingerprint_hex(fingerprint: str) -> str:
    """``sha256:<hex>`` (or the bare hex) -> hex; anything else is one error."""
    hexpart = fingerprint.removeprefix("sha256:")
    if not HEX64.match(hexpart):
        raise FtctlError(f"fingerprint {excerpt(fingerprint)} is not sha256:<64 hex digits>")
    return hexpart


def _split(text: str) -> tuple[str, str]:
    """``a/b/c`` -> (``a/b``, ``c``); ``c`` -> ("", ``c``); ``/c`` -> ("/", ``c``)."""
    head, sep, tail = text.rpartition("/")
    return (head or "/", tail) if sep else ("", tail)


def _join(head: str, *parts: str) -> str:
    tail = "/".join(parts)
    if not head:
        return tail
    return f"/{tail}" if head == "/" else f"{head.rstrip('/')}/{tail}"


def _plain_name(name: str) -> bool:
    """A recipe folder: one printable name; ``.`` names are the registry's own (index, temps)."""
    return bool(name) and not name.startswith(".") and name.isprintable()


def _name_problems(files: list[str], expected: dict[str, str]) -> list[str]:
    """What is missing or extra; the card and the provenance copy are not subjects."""
    present = set(files)
    problems = [f"{name} is missing" for name in sorted(set(expected) - present)]
    problems.extend(
        f"{name} is not in the manifest"
        for name in sorted(present - set(expected))
        if name != tree.CARD and not name.startswith(f"{PROVENANCE_DIR}/")
    )
    return problems


def _os_error(shown: str, exc: OSError, what: str) -> FtctlError:
    """A failed write as one line; a full disk or quota says so."""
    if exc.errno in NO_SPACE:
        return FtctlError(
            f"{shown}: no space left to {what} ({exc.strerror}); nothing was left half-written",
            hint="free space there (or raise the quota) and run it again",
        )
    return FtctlError(f"{shown}: cannot {what} ({exc.strerror or exc})")


class FileRegistry:
    """A ``file://PATH/<name>`` publish target; a relative PATH is the workspace's."""

    def __init__(self, target: str, root: Path) -> None:
        head, folder = _split(target.removeprefix(SCHEME).rstrip("/"))
        if not target.startswith(SCHEME) or not _plain_name(folder):
            raise FtctlError(
                f"publish target {excerpt(target)} is not file://PATH/NAME",
                hint="write e.g. file://registry/support-bot",
            )
        self.target = target
        self.folder = folder
        self.head = head  # PATH as written: publications are named with it
        self.workspace = root
        self.root = resolve_path(root, head) if head else root

    def _uri(self, hexpart: str, folder: str | None = None) -> str:
        return SCHEME + _join(self.head, folder or self.folder, hexpart)

    def _shown(self, *parts: str) -> str:
        return _join(self.head, *parts)

    # --- find

    def find(self, fingerprint: str) -> Found | None:
        """The artifact of ``fingerprint``: by the index, else in this target's own folder."""
        hexpart = fingerprint_hex(fingerprint)
        entry = self._index_entry(hexpart)
        if entry is not None and self._artifact_at(entry.path, hexpart):
            return Found(uri=self._uri(hexpart, entry.path.split("/")[0]), name=entry.name)
        if self._artifact_at(f"{self.folder}/{hexpart}", hexpart):
            return Found(uri=self._uri(hexpart), name=self.folder)
        return None

    def _index_entry(self, hexpart: str) -> IndexEntry | None:
        path = self.root / INDEX_DIR / f"{hexpart}.json"
        try:
            raw = read_regular(path, MAX_INDEX_BYTES, self._shown(INDEX_DIR, path.name))
            return IndexEntry.model_validate(strict_loads(raw))
        except (UnreadableInput, JSONError, ValidationError):
            return None  # an entry that cannot be trusted is no entry: the fallback decides

    def _artifact_at(self, rel: str, hexpart: str) -> bool:
        """Whether ``ROOT/<folder>/<hex>`` is a published artifact inside ROOT."""
        parts = rel.split("/")
        if len(parts) != 2 or parts[1] != hexpart or not _plain_name(parts[0]):
            return False
        directory = self.root / rel
        try:
            if not stat.S_ISDIR(os.lstat(directory).st_mode) or not confined(directory, self.root):
                return False
            return stat.S_ISREG(os.lstat(directory / PROVENANCE_FILE).st_mode)
        except (OSError, ValueError):
            return False

    # --- fetch

    def _located(self, found: Found) -> tuple[Path, str]:
        """The directory of ``file://PATH/<name>/<hex>`` (any PATH: a manifest records it)."""
        head, hexpart = _split(found.uri.removeprefix(SCHEME))
        head, folder = _split(head)
        if not found.uri.startswith(SCHEME) or not HEX64.match(hexpart) or not _plain_name(folder):
            raise FtctlError(f"{excerpt(found.uri)} is not file://PATH/<name>/<fingerprint>")
        shown = _join(head, folder, hexpart)
        root = resolve_path(self.workspace, head) if head else self.workspace
        directory = root / folder / hexpart
        try:
            real = stat.S_ISDIR(os.lstat(directory).st_mode) and confined(directory, root)
        except OSError:
            real = False
        if not real:
            raise FtctlError(f"{shown}: no such artifact in the registry")
        return directory, shown

    def fetch(self, found: Found, dest: Path) -> None:
        """Copy the artifact into ``dest`` (absent; made here), unverified.

        Restore uses :meth:`fetch_verified` (or :meth:`fetch_digests`), which hash every
        file in the same pass as the copy, so nothing is read twice.
        """
        self.fetch_digests(found, dest)

    def fetch_digests(self, found: Found, dest: Path) -> dict[str, str]:
        """:meth:`fetch`, returning the sha256 hex of every file copied, by relative path."""
        source, shown = self._located(found)
        return self._copy(tree.list_artifact(source, shown), dest, shown)

    def fetch_verified(self, found: Found, dest: Path, expected: dict[str, str]) -> None:
        """Copy the artifact into ``dest``, checking each file against ``expected`` (relative
        path -> sha256 hex: the manifest's subjects) while it is copied, in one read.

        Nothing may be missing, nor extra but the card and ``.ftctl/``; on any mismatch
        ``dest`` is removed again and the error names the file.
        """
        source, shown = self._located(found)
        files = tree.list_artifact(source, shown)
        problems = _name_problems([rel for rel, _ in files], expected)
        if problems:
            raise FtctlError(f"{shown}: {'; '.join(problems)}", hint="the registry copy differs")
        digests = self._copy(files, dest, shown)
        bad = sorted(name for name, digest in expected.items() if digests[name] != digest)
        if bad:
            shutil.rmtree(dest, ignore_errors=True)
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise FtctlError(
                f"{shown}/{bad[0]} differs from the recorded digest{more}",
                hint="the registry copy was altered or damaged; retrain it with --replace",
            )

    def _copy(self, files: list[tuple[str, Path]], dest: Path, shown: str) -> dict[str, str]:
        known = StatCache.of(self.workspace)  # what publish hashed here needs no second hash
        try:
            digests = tree.copy_tree(files, dest, shown, known)
        except OSError as exc:
            raise _os_error(str(dest), exc, f"copy {shown}") from None
        known.save()
        return digests

    # --- publish

    def publish(
        self, name: str, fingerprint: str, files: Path, provenance: bytes, card: str | None
    ) -> Published:
        """Publish ``files`` as ``ROOT/<folder>/<hex>/`` atomically, then index it.

        A publication already there is kept when its files have the same digests (another
        publisher, or a rerun); other files are an error. An adapter README.md of its own
        is a subject and is kept: ``card`` is then not written.
        """
        hexpart = fingerprint_hex(fingerprint)
        if not files.is_dir():
            raise FtctlError(f"{files}: no such adapter directory to publish")
        folder_dir = self._prepare()
        final = folder_dir / hexpart
        if os.path.lexists(final):
            self._check_same(final, artifact_digests(files), fingerprint)
        else:
            ours, placed = self._place(folder_dir, final, files, provenance, card)
            if not placed:  # another publisher renamed theirs into place first
                self._check_same(final, ours, fingerprint)
        try:
            self._index(hexpart, name)
        except OSError as exc:
            raise _os_error(self._shown(INDEX_DIR), exc, "write the index entry") from None
        return Published(uri=self._uri(hexpart))

    def _prepare(self) -> Path:
        """``ROOT/<folder>/`` and ``ROOT/.index/``, made if missing; never through a symlink out."""
        if self.root.exists() and not self.root.is_dir():
            raise FtctlError(
                f"registry {self.head or '.'} is not a directory",
                hint="point file:// at a folder",
            )
        folder_dir = self.root / self.folder
        for directory in (folder_dir, self.root / INDEX_DIR):
            shown = self._shown(directory.name)
            if directory.is_symlink() and not (
                directory.is_dir() and confined(directory, self.root)
            ):
                raise FtctlError(
                    f"{shown} is a symlink leaving the registry",
                    hint="remove it; ftctl makes its own folders there",
                )
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except FileExistsError:
                raise FtctlError(f"{shown} is not a directory", hint="remove it") from None
            except OSError as exc:
                raise _os_error(shown, exc, "create the registry folder") from None
        return folder_dir

    def _place(
        self, folder_dir: Path, final: Path, files: Path, provenance: bytes, card: str | None
    ) -> tuple[dict[str, str], bool]:
        """Stage the artifact beside ``final`` and rename it there: (subject digests, placed)."""
        shown = self._shown(self.folder)
        tree.sweep_temps(folder_dir)
        sources = [
            (rel, path)
            for rel, path in walk_files(files, str(files))
            if rel.split("/", 1)[0] != PROVENANCE_DIR
        ]
        try:
            tmp, held = tree.make_temp(folder_dir)
        except OSError as exc:
            raise _os_error(shown, exc, "stage the artifact") from None
        try:
            digests = tree.stage(tmp, sources, provenance, card, str(files))
            try:
                os.rename(tmp, final)  # onto a publication (never empty) it fails: kept as is
            except OSError as exc:
                if exc.errno not in LOST_RACE:
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
                return digests, False
            tree.fsync_dir(folder_dir)
            known = StatCache.of(self.workspace)  # so restoring it here hashes nothing twice
            tree.remember(tree.list_artifact(final, shown), digests, known)
            known.save()
            return digests, True
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _os_error(shown, exc, f"publish {_short(final)}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            os.close(held)

    def _check_same(self, final: Path, ours: dict[str, str], fingerprint: str) -> None:
        """The publication already at ``final`` must hold our subjects, digest for digest."""
        shown = self._shown(self.folder, final.name)
        if final.is_symlink() or not final.is_dir():
            raise FtctlError(f"{shown} is not a directory ftctl published", hint="remove it")
        if not (final / PROVENANCE_FILE).is_file():
            raise FtctlError(f"{shown} has no {PROVENANCE_FILE}", hint="remove the incomplete copy")
        tree.list_artifact(final, shown)  # only regular files in it
        theirs = artifact_digests(final)
        if tree.CARD not in ours:
            theirs.pop(tree.CARD, None)
        if theirs != ours:
            differ = sorted(set(theirs) ^ set(ours)) or sorted(
                n for n in ours if theirs[n] != ours[n]
            )
            raise FtctlError(
                f"{shown} already holds other files for {fingerprint} ({differ[0]} differs)",
                hint="the same fingerprint was trained to different weights; check the registry",
            )

    def _index(self, hexpart: str, name: str) -> None:
        """Index ``name``'s publication unless a valid entry is there already (first one wins)."""
        entry = self._index_entry(hexpart)
        if entry is not None and self._artifact_at(entry.path, hexpart):
            return
        record = {"name": name, "path": f"{self.folder}/{hexpart}"}
        write_atomic(self.root / INDEX_DIR / f"{hexpart}.json", canonical_json(record) + b"\n")


def _short(final: Path) -> str:
    """``sha256:<first 12 hex>`` of a publication directory, for messages."""
    return f"sha256:{final.name[:12]}"
