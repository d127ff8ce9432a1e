"""DVC, as ftctl uses it: the version DVC recorded for a path, and whether the workspace matches.

Records are read from ``<path>.dvc`` files and ``dvc.lock`` stage outputs,
exactly as DVC wrote them (md5 or ``.dir`` md5, size, nfiles). They are read as
the YAML data files they are, without importing dvc: ``lock --check`` runs in
every pull request and must start fast (importing dvc.repo alone costs 220 ms).
tests/test_dvc.py checks these records against DVC's own API on real
repositories. Directory digests are computed with dvc-data's ``Tree`` (DVC's
own code), from per-file md5s kept in ftctl's stat cache.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftctl.cache.parse import ParseCache
from ftctl.cache.paths import STATE_DIR
from ftctl.cache.stat import StatCache
from ftctl.errors import ConfigError, FtctlError, Location, excerpt
from ftctl.hashing import file_digest
from ftctl.yamlio import load_yaml_file

MD5_RE = re.compile(r"^[0-9a-f]{32}(\.dir)?$")


@dataclass(frozen=True)
class DvcRecord:
    """What DVC recorded for one tracked output."""

    md5: str  # "<hex>" or "<hex>.dir"
    size: int | None
    nfiles: int | None
    source: str  # the .dvc or dvc.lock file that holds the record, relative to the repo
    legacy: bool  # recorded without `hash: md5` (DVC 2: md5 of text files after dos2unix)


def find_repo(start: Path) -> Path | None:
    """The DVC repository root (the directory holding ``.dvc/``) at or above ``start``."""
    for directory in (start, *start.parents):
        if (directory / ".dvc").is_dir():
            return directory
    return None


# Directories never searched for dvc.lock files: tool state, not pipelines.
_PRUNE = frozenset(
    {".git", ".dvc", STATE_DIR, "node_modules", "__pycache__", ".venv", "manifests", "lockfiles"}
)


class DvcIndex:
    """DVC's records in one repository; every dvc.lock is found and parsed once per run."""

    def __init__(self, repo: Path, cache: ParseCache | None = None) -> None:
        self.repo = repo
        self.cache = cache
        self._stage_outs: dict[Path, DvcRecord] | None = None

    def find(self, target: Path) -> DvcRecord | None:
        """DVC's record for ``target`` (an absolute path inside the repo), or None if untracked."""
        return self.lookup(target)[0]

    def lookup(self, target: Path) -> tuple[DvcRecord | None, bool]:
        """The record and whether finding it took the dvc.lock files (so a new one can change it)."""
        dvc_file = target.with_name(target.name + ".dvc")
        if dvc_file.is_file():
            record = _from_outs(
                _load(dvc_file, self.repo), target.parent, target, dvc_file, self.repo
            )
            if record is not None:
                return record, False
        return self._outs().get(target.resolve()), True

    def _outs(self) -> dict[Path, DvcRecord]:
        if self._stage_outs is None:
            outs: dict[Path, DvcRecord] = {}
            for lock in find_dvc_locks(self.repo):
                self._index_lock(lock, outs)
            self._stage_outs = outs
        return self._stage_outs

    def _index_lock(self, lock: Path, outs: dict[Path, DvcRecord]) -> None:
        data = _load(lock, self.repo, self.cache)
        stages = data.get("stages") if isinstance(data, dict) else None
        if not isinstance(stages, dict):
            if stages is not None:
                raise FtctlError(
                    f"{lock.relative_to(self.repo).as_posix()}: stages is not a mapping",
                    hint="repair it with dvc (dvc repro)",
                )
            return
        for stage in stages.values():
            for out in (stage.get("outs") or []) if isinstance(stage, dict) else []:
                if isinstance(out, dict) and "path" in out:
                    target = (lock.parent / str(out["path"])).resolve()
                    record = _from_outs({"outs": [out]}, lock.parent, target, lock, self.repo)
                    if record is not None:
                        outs.setdefault(target, record)


def find_dvc_locks(repo: Path) -> list[Path]:
    """Every dvc.lock of the repository (pipelines may live in subdirectories)."""
    found = []
    for directory, dirnames, filenames in os.walk(repo):
        dirnames[:] = sorted(d for d in dirnames if d not in _PRUNE and not d.startswith("."))
        if "dvc.lock" in filenames:
            found.append(Path(directory) / "dvc.lock")
    return found


def find_record(repo: Path, target: Path) -> DvcRecord | None:
    """DVC's record for ``target`` (an absolute path inside ``repo``), or None if untracked."""
    return DvcIndex(repo).find(target)


def _load(path: Path, repo: Path, cache: ParseCache | None = None) -> Any:
    shown = path.relative_to(repo).as_posix()
    try:
        return load_yaml_file(path, shown, cache).data
    except ConfigError as exc:
        raise FtctlError(
            f"DVC file is unreadable: {exc.problem.render()}",
            location=Location(shown),
            hint="repair it with dvc (dvc add / dvc repro)",
        ) from None


def _from_outs(data: Any, base: Path, target: Path, source: Path, repo: Path) -> DvcRecord | None:
    outs = data.get("outs") if isinstance(data, dict) else None
    if outs is not None and not isinstance(outs, list):
        raise FtctlError(
            f"{source.relative_to(repo).as_posix()}: outs is not a list",
            hint="repair it with dvc (dvc add / dvc repro)",
        )
    for out in outs or ():
        if not isinstance(out, dict) or "path" not in out:
            continue
        if (base / str(out["path"])).resolve() != target.resolve():
            continue
        md5 = out.get("md5")
        if isinstance(md5, str) and not MD5_RE.match(md5):
            raise FtctlError(
                f"{source.relative_to(repo).as_posix()}: md5 {excerpt(md5)} of {out['path']} "
                "is not an md5 digest",
                hint="run dvc add (or dvc repro) to record it",
            )
        if not isinstance(md5, str):
            raise FtctlError(
                f"{source.relative_to(repo).as_posix()} records no md5 for {out['path']}",
                hint="run dvc add (or dvc repro) to record it",
            )
        size, nfiles = out.get("size"), out.get("nfiles")
        return DvcRecord(
            md5=md5,
            size=size if isinstance(size, int) else None,
            nfiles=nfiles if isinstance(nfiles, int) else (None if md5.endswith(".dir") else 1),
            source=source.relative_to(repo).as_posix(),
            legacy=out.get("hash") != "md5",
        )
    return None


def workspace_md5(path: Path, legacy: bool, cache: StatCache) -> str:
    """The md5 DVC would record for ``path`` as it is in the workspace now."""
    if path.is_file():
        if legacy:
            return _legacy_file_md5(path)
        return file_digest(path, "md5", cache)
    from dvc_data.hashfile.tree import Tree

    entries = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        md5 = _legacy_file_md5(file) if legacy else file_digest(file, "md5", cache)
        entries.append({"md5": md5, "relpath": rel})
    tree = Tree.from_list(entries, hash_name="md5")
    tree.digest()
    return str(tree.hash_info.value)


def _legacy_file_md5(path: Path) -> str:
    # DVC 2 hashed text files after dos2unix; dvc-data knows which files that applies to.
    from dvc_data.hashfile.hash import file_md5
    from dvc_objects.fs.local import LocalFileSystem

    fs = LocalFileSystem()  # type: ignore[no-untyped-call]  # dvc-objects is untyped
    return str(file_md5(str(path), fs, name="md5-dos2unix"))


def pull(repo: Path, target: Path, where: str) -> None:
    """``dvc pull`` one tracked path through DVC's API; a failure is one line naming ``where``."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(repo)) as dvc_repo:
            dvc_repo.pull(targets=[str(target)])
    except DvcException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FtctlError(
            f"{where}: dvc pull failed: {first}",
            hint="check the DVC remote (dvc remote list) and its credentials",
        ) from None
