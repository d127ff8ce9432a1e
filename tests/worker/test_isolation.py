"""The worker runs only installed code: a pull request cannot plant its own ftctl or dependency."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ftctl.launch import SAFE_PYTHON, worker_env
from tests.conftest import write

PLANTED = "import pathlib; pathlib.Path({marker!r}).write_text('planted code ran')\n"
MODULES = ("ftctl/__init__.py", "ftctl/worker/__init__.py", "ftctl/worker/__main__.py",
           "torch/__init__.py", "transformers/__init__.py")  # fmt: skip


def planted(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace whose files include an ``ftctl`` package and a ``torch`` of their own."""
    workspace, marker = tmp_path / "ws", tmp_path / "marker"
    (workspace / ".git").mkdir(parents=True)
    (workspace / "recipes").mkdir()
    for module in MODULES:
        write(workspace / module, PLANTED.format(marker=str(marker)))
    return workspace, marker


def test_train_never_runs_a_planted_worker(tmp_path: Path) -> None:
    workspace, marker = planted(tmp_path)
    # `ftctl train` starts the worker at once, then finds no such recipe and stops it. The CLI
    # itself is started as its console script would be: nothing of the cwd on sys.path.
    proc = subprocess.run(
        [*SAFE_PYTHON, "-c", "from ftctl.cli import main; main()", "train", "nope"],
        cwd=workspace, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "no recipe file or recipe named 'nope'" in proc.stderr
    assert not marker.exists(), "code from the workspace ran"


def test_the_worker_environment_points_at_no_other_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace, marker = planted(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(workspace))  # e.g. a CI job that exports PYTHONPATH=.
    monkeypatch.setenv("PYTHONSTARTUP", str(workspace / "ftctl" / "__init__.py"))
    env = worker_env()
    assert "PYTHONPATH" not in env and "PYTHONSTARTUP" not in env and env["PYTHONSAFEPATH"] == "1"
    probe = subprocess.run(
        [*SAFE_PYTHON, "-c", "import ftctl, torch; print(ftctl.__file__); print(torch.__file__)"],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert all(not line.startswith(str(workspace)) for line in probe.stdout.splitlines())
    assert not marker.exists(), "code from the workspace ran"


def test_worker_commands_keep_the_cwd_off_sys_path(tmp_path: Path) -> None:
    from ftctl.launch import worker_command

    assert worker_command(tmp_path / "spec.json", 1)[:2] == [sys.executable, "-P"]
