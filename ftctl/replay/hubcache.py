"""The Hugging Face cache's layout, read without huggingface_hub (which only ftctl._hf imports).

A repository at a commit is ``<cache>/<kind>s--<org>--<name>/snapshots/<commit>/``, its files
symlinks into ``blobs/`` named by their etag (the sha256 of the content for LFS files). A
bundle copies the snapshot as plain files, and replay points the worker's HF_HUB_CACHE at it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from ftctl.errors import FtctlError

BUNDLE_CACHE = "hf-cache"  # the bundle's own Hub cache, beside the workspace's files
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def cache_dir() -> Path:
    """Where huggingface_hub keeps its cache, by the same environment variables it reads."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def repo_folder(repo_id: str, kind: str) -> str:
    """``models--org--name`` or ``datasets--org--name``."""
    return f"{kind}s--" + repo_id.replace("/", "--")


def snapshot_files(repo_id: str, kind: str, commit: str) -> Iterator[tuple[str, Path, str | None]]:
    """(path in the bundle, the file it resolves to, the sha256 its blob name promises or None)."""
    folder = cache_dir() / repo_folder(repo_id, kind)
    snapshot = folder / "snapshots" / commit
    if not snapshot.is_dir():
        raise FtctlError(
            f"{repo_id}@{commit} is not in the Hugging Face cache ({cache_dir()})",
            hint=f"download it first: huggingface-cli download {'--repo-type dataset ' if kind == 'dataset' else ''}"
            f"{repo_id} --revision {commit}",
        )
    real_folder = folder.resolve()
    for directory, dirnames, filenames in os.walk(snapshot):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(directory) / name
            rel = path.relative_to(snapshot).as_posix()
            target = path.resolve()
            if not target.is_relative_to(real_folder) or not target.is_file():
                raise FtctlError(
                    f"{repo_id}@{commit}: {rel} in the Hugging Face cache points outside it",
                    hint="remove the damaged entry from the cache and download it again",
                )
            blob = target.name if target.parent.name == "blobs" else ""
            promised = blob if _SHA256.match(blob) else None
            yield (
                f"{BUNDLE_CACHE}/{repo_folder(repo_id, kind)}/snapshots/{commit}/{rel}",
                target,
                promised,
            )
