"""Every path under ``.ftctl/``, the workspace's local, git-ignored state, named in one place."""

from __future__ import annotations

from pathlib import Path

STATE_DIR = ".ftctl"


def state_dir(root: Path) -> Path:
    """``.ftctl/`` of the workspace at ``root``."""
    return root / STATE_DIR


def stat_cache(root: Path) -> Path:
    """File digests by (device, inode, size, mtime_ns, ctime_ns): :mod:`ftctl.cache.stat`."""
    return state_dir(root) / "statcache.json"


def parse_cache(root: Path) -> Path:
    """Parsed YAML by content digest: :mod:`ftctl.cache.parse`."""
    return state_dir(root) / "parsed.json"


def plan_memo(root: Path) -> Path:
    """What plan computed, by the signatures of its inputs: :mod:`ftctl.cache.planmemo`."""
    return state_dir(root) / "plan-memo.json"


def configs_dir(root: Path) -> Path:
    """Training configs by the digest the lock records (``recipe.digest``)."""
    return state_dir(root) / "configs"


def state_lock(root: Path) -> Path:
    """Who applies now: :mod:`ftctl.apply.statelock` (one apply at a time per workspace)."""
    return state_dir(root) / "state.lock"
