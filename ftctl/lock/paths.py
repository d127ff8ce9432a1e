"""Where locks live: ``lockfiles/<name>.lock`` (no models imported, so plan's fast path can ask)."""

from __future__ import annotations

from pathlib import Path

LOCKS_DIR = "lockfiles"


def locks_dir(root: Path) -> Path:
    """Where the workspace's locks live."""
    return root / LOCKS_DIR


def lock_path(root: Path, name: str) -> Path:
    """The lock of recipe ``name``."""
    return locks_dir(root) / f"{name}.lock"
