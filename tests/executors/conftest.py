"""Fixtures of the ssh executor's tests: a real sshd on 127.0.0.1, and workspaces using it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from ftctl.apply.rundirs import run_dir
from ftctl.lock.lockfile import load_lock
from ftctl.runspec import RunSpec
from ftctl.workspace import Workspace, discover
from tests.conftest import REPO, invoke_cli, write
from tests.executors.sshd import Sshd, sshd_binary, start_sshd

RECIPE = (REPO / "recipes" / "tiny-alpaca.yaml").read_text().replace(
    "num_epochs: 2", "num_epochs: 1"
) + "  executor: box\n"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if sshd_binary() is None or shutil.which("ssh") is None:
        pytest.skip("OpenSSH's sshd is not installed (apt-get install openssh-server)")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


def make_workspace(
    root: Path,
    server: Sshd,
    host_dir: Path,
    recipe: str = RECIPE,
    settings: Mapping[str, object] | None = None,
    **executor: object,
) -> Workspace:
    """A locked workspace with the tiny model and the alpaca rows, on executor ``box``
    (``executor`` adds to its ftctl.yaml entry, ``settings`` to ftctl.yaml)."""
    shutil.copytree(REPO / "models" / "tiny-llama", root / "models" / "tiny-llama")
    write(root / "data" / "alpaca-tiny.jsonl", (REPO / "data" / "alpaca-tiny.jsonl").read_text())
    write(root / "recipes" / "tiny-alpaca.yaml", recipe)
    config = {**(settings or {}), "executors": {"box": server.executor(host_dir, **executor)}}
    write(root / "ftctl.yaml", json.dumps(config, indent=2) + "\n")
    (root / ".git").mkdir(exist_ok=True)  # discovery stops at a repository boundary
    locked = invoke_cli("lock", cwd=root)
    assert locked.code == 0, locked.err
    return discover(root)


def apply_spec(workspace: Workspace, name: str = "tiny-alpaca") -> tuple[RunSpec, Path]:
    """The run spec apply's train action builds for ``name``, and its run directory."""
    root = workspace.root
    lock_path = root / "lockfiles" / f"{name}.lock"
    lock = load_lock(lock_path, str(lock_path))
    directory = run_dir(root, lock.fingerprint)
    directory.mkdir(parents=True, exist_ok=True)
    spec = RunSpec(
        recipe_path=str((root / "recipes" / f"{name}.yaml").resolve()),
        name=name,
        workspace=str(root.resolve()),
        output_dir=str(directory.resolve()),
        lock=str(lock_path.resolve()),
        checkpoint_seconds=0.0,
        progress=str((directory / "progress.jsonl").resolve()),
    )
    return spec, directory
