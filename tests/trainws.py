"""A git workspace that trains this repository's tiny model for real, for the slow apply tests."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, git, write

TINY_RECIPE = (REPO / "recipes" / "tiny-alpaca.yaml").read_text()
ONE_EPOCH = TINY_RECIPE.replace("num_epochs: 2", "num_epochs: 1")  # 12 steps


def make_workspace(
    root: Path,
    home: Path,
    recipe: str = TINY_RECIPE,
    *,
    executors: dict[str, object] | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, str]:
    """The tiny model, the alpaca rows and ``recipe``, locked and committed, with a signing key."""
    shutil.copytree(REPO / "models" / "tiny-llama", root / "models" / "tiny-llama")
    if not (REPO / "data" / "alpaca-tiny.jsonl").is_file():
        subprocess.run(
            [sys.executable, "-m", "dvc", "pull", "-q"], cwd=REPO, check=True, timeout=300
        )
    write(root / "data" / "alpaca-tiny.jsonl", (REPO / "data" / "alpaca-tiny.jsonl").read_text())
    write(root / "recipes" / "tiny-alpaca.yaml", recipe)
    if executors is not None:
        write(root / "ftctl.yaml", json.dumps({"executors": executors}, indent=2) + "\n")
    write(root / ".gitignore", ".ftctl/\nregistry/\noutputs/\n")
    git(root, "init", "-q")
    environ = {**os.environ, "XDG_CONFIG_HOME": str(home), **(env or {})}
    environ.pop("FTCTL_SIGNING_KEY", None)
    ftctl(root, environ, "keygen", "ci")
    environ["FTCTL_SIGNING_KEY"] = str(home / "ftctl" / "keys" / "ci.key")
    ftctl(root, environ, "lock")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "recipes")
    return environ


def ftctl(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``ftctl ARGS`` in a subprocess, which must succeed without a traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "ftctl", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def registry_digests(root: Path) -> dict[str, str]:
    """sha256 of each file the file registry holds for tiny-alpaca (the card aside)."""
    [artifact] = (root / "registry" / "tiny-alpaca").iterdir()
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in artifact.iterdir()
        if p.is_file() and p.name != "README.md"
    }
