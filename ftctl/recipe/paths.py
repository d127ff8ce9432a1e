"""Dataset paths that name nothing: "file not found" with the nearby names, never a Hub guess.

A dataset ``path`` is a workspace file or directory, a DVC-tracked output, or a Hub dataset id.
A path that is not there and cannot be a Hub id (``./x``, ``data/a/b.jsonl``, ``train.jsonl``,
``data/x`` where the workspace has a ``data/`` folder) is a mistyped file name far more often than a dataset on the Hub;
saying so, with the closest names in the workspace, beats a network error about the Hub.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ftctl.cache.paths import STATE_DIR
from ftctl.errors import FtctlError
from ftctl.recipe.messages import closest
from ftctl.recipe.refs import check_hf_id, split_revision
from ftctl.workspace import resolve_path

# Extensions of the data files `datasets:` reads; a Hub id does not end in one.
DATA_SUFFIXES = frozenset(
    ".json .jsonl .ndjson .parquet .csv .tsv .arrow .txt .gz .zst .bz2 .xz".split()
)
# Folders never searched for nearby names: tool state, caches and outputs, not data.
_PRUNE = frozenset(
    {".git", ".dvc", STATE_DIR, "node_modules", "__pycache__", ".venv", "manifests", "outputs"}
)
_MAX_ENTRIES = 5000  # a huge workspace is searched only this far
_MAX_DEPTH = 4


def looks_local(root: Path, text: str) -> bool:
    """Whether ``text`` can only mean a path (it cannot be a Hub dataset id)."""
    if text.startswith(("./", "../", "/", "~")) or "\\" in text:
        return True
    repo_id, _ = split_revision(text)
    if repo_id.count("/") > 1 or check_hf_id(repo_id) is not None:
        return True
    if PurePosixPath(repo_id).suffix.lower() in DATA_SUFFIXES:
        return True
    if "/" not in repo_id:
        return False  # a canonical Hub dataset (squad, imdb)
    first = repo_id.split("/", 1)[0]
    return (root / first).is_dir()  # data/x: the workspace has a data/ folder


@dataclass(frozen=True)
class MissingPath:
    """A dataset path that names nothing, and the workspace path it probably means."""

    message: str
    hint: str
    suggestion: str | None


def missing_dataset(root: Path, text: str) -> MissingPath | None:
    """Why dataset ``text`` names no file and cannot be a Hub id, or None when it may be fine."""
    try:
        target = resolve_path(root, text)
        if target.exists() or target.is_symlink() or not looks_local(root, text):
            return None
    except (FtctlError, OSError, ValueError):
        return None  # a path the OS cannot take is reported where it is read
    if _tracked_by_dvc(root, target):
        return None  # recorded by DVC, not checked out yet: the lock pins the record
    suggestion = nearby_name(root, text)
    hint = (
        f"did you mean '{suggestion}'?"
        if suggestion
        else "the path is relative to the workspace root"
    )
    return MissingPath("file not found (and it cannot be a Hub dataset id)", hint, suggestion)


def nearby_name(root: Path, text: str) -> str | None:
    """The workspace path closest to ``text``, written as ``text`` is (``./`` kept)."""
    prefix = "./" if text.startswith("./") else ""
    wanted = text[len(prefix) :].rstrip("/")
    if wanted.startswith(("/", "~", "../")):
        return None
    names = workspace_names(root)
    match = closest(wanted, names)
    if match is None:
        # the right file name in another folder: data/train.jsonl for train.jsonl
        base = PurePosixPath(wanted).name
        same = [n for n in names if PurePosixPath(n).name == base]
        match = same[0] if len(same) == 1 else None
    return prefix + match if match else None


def workspace_names(root: Path) -> list[str]:
    """Relative POSIX paths of the workspace's files and folders, shallow and bounded."""
    names: list[str] = []
    top = len(root.parts)
    for directory, dirnames, filenames in os.walk(root):
        here = Path(directory)
        depth = len(here.parts) - top
        dirnames[:] = sorted(d for d in dirnames if d not in _PRUNE and not d.startswith("."))
        if depth >= _MAX_DEPTH:
            dirnames[:] = []
        relative = here.relative_to(root).as_posix()
        for name in [*dirnames, *sorted(filenames)]:
            names.append(name if relative == "." else f"{relative}/{name}")
        if len(names) >= _MAX_ENTRIES:
            break
    return names


def _tracked_by_dvc(root: Path, target: Path) -> bool:
    if target.with_name(target.name + ".dvc").is_file():
        return True
    from ftctl._dvc import DvcIndex, find_repo  # only for a path that is not there

    repo = find_repo(root)
    if repo is None or not target.resolve().is_relative_to(repo):
        return False
    try:
        return DvcIndex(repo).find(target.resolve()) is not None
    except FtctlError:
        return False  # a broken dvc.lock is reported by lock
