"""Apply's run directories, ``.ftctl/runs/<fingerprint>/``: one per fingerprint, kept until recorded.

A run directory outlives a killed apply: the next apply finds it finished
(result.json is there: only attest, publish and record are left), or
interrupted with a complete checkpoint (one whose trainer_state.json, the last
file transformers writes, is whole), and resumes from it. Anything else in it
is an unfinished attempt and is cleared before training again.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from ftctl.cache.paths import state_dir
from ftctl.files import UnreadableInput, read_regular

CHECKPOINTS = "checkpoints"
PREPUBLICATION = (
    "provenance.intoto.json"  # the signed statement the registry gets, kept for retries
)
_CHECKPOINT = re.compile(r"checkpoint-([0-9]{1,12})")


def runs_dir(root: Path) -> Path:
    return state_dir(root) / "runs"


def run_dir(root: Path, fingerprint: str) -> Path:
    return runs_dir(root) / fingerprint.removeprefix("sha256:")


def finished(directory: Path) -> bool:
    """Whether the worker finished here: it renames result.json into place last."""
    return (directory / "result.json").is_file() and not (directory / "result.json").is_symlink()


def newest_checkpoint(directory: Path) -> Path | None:
    """The newest checkpoint that transformers finished writing, or None."""
    folder = directory / CHECKPOINTS
    if not folder.is_dir() or folder.is_symlink():
        return None
    steps = []
    for child in folder.iterdir():
        match = _CHECKPOINT.fullmatch(child.name)
        if match and child.is_dir() and not child.is_symlink():
            steps.append((int(match.group(1)), child))
    for _, child in sorted(steps, reverse=True):
        if _complete(child):
            return child
    return None


def _complete(checkpoint: Path) -> bool:
    try:
        raw = read_regular(checkpoint / "trainer_state.json", 64 * 1024 * 1024, str(checkpoint))
        state = json.loads(raw)
    except (UnreadableInput, ValueError, RecursionError):
        return False  # a kill while it was written: transformers would fail on it, so skip it
    return isinstance(state, dict) and isinstance(state.get("global_step"), int)


def clear_attempt(directory: Path, *, keep_checkpoints: bool) -> None:
    """Remove what an unfinished attempt left, except the checkpoints to resume from."""
    if directory.is_symlink():
        directory.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    for child in directory.iterdir():
        if keep_checkpoints and child.name == CHECKPOINTS:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def remove_checkpoints(directory: Path) -> None:
    """Checkpoints are only for resuming: once the run is recorded they go (they are large)."""
    folder = directory / CHECKPOINTS
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)
