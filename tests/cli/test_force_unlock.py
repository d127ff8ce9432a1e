"""``ftctl force-unlock LOCK_ID [--force]`` against a lock a real second process holds."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftctl.apply.statelock import LockInfo, read_lock
from ftctl.cli.state import force_unlock
from ftctl.errors import FtctlError, UsageError
from tests.apply.test_statelock import Holder
from tests.conftest import REPO


@pytest.fixture
def held(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LockInfo]:
    """The state lock of ``workspace``, held by another live process."""
    monkeypatch.chdir(workspace)
    holder = Holder(workspace)
    info = read_lock(workspace)
    assert info is not None
    yield info
    holder.release()


def test_without_a_terminal_it_asks_for_force(workspace: Path, held: LockInfo) -> None:
    result = CliRunner().invoke(force_unlock, [held.id])
    assert isinstance(result.exception, UsageError)
    assert str(result.exception) == (
        "force-unlock asks for confirmation, and stdin is not a terminal; "
        "pass --force to remove the lock without asking"
    )
    assert read_lock(workspace) == held


def test_force_removes_the_lock_with_the_right_id(workspace: Path, held: LockInfo) -> None:
    result = CliRunner().invoke(force_unlock, [held.id, "--force"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"removed the state lock {held.id}, held by {held.describe()}\n"
    assert read_lock(workspace) is None


def test_a_wrong_id_names_the_holder(workspace: Path, held: LockInfo) -> None:
    result = CliRunner().invoke(force_unlock, ["12345678", "--force"])
    assert isinstance(result.exception, FtctlError)
    assert str(result.exception) == (
        f".ftctl/state.lock: the lock id is not '12345678'; it is held by {held.describe()}; "
        f"if that process is dead: ftctl force-unlock {held.id}"
    )
    assert read_lock(workspace) == held


def test_no_lock_is_one_line(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workspace)
    result = CliRunner().invoke(force_unlock, ["x", "--force"])
    assert (
        str(result.exception)
        == ".ftctl/state.lock: no state lock is held; there is nothing to unlock"
    )


HARNESS = """
    import sys
    from ftctl.cli import report
    from ftctl.cli.state import force_unlock
    try:
        force_unlock.main(sys.argv[1:], prog_name="ftctl force-unlock", standalone_mode=False)
    except Exception as exc:
        sys.exit(report(exc))
"""


def on_a_terminal(workspace: Path, lock_id: str, answer: str) -> tuple[int, str]:
    """Run the command with a pseudo-terminal as stdin, answer its question; (exit, stderr)."""
    master, slave = pty.openpty()
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(HARNESS), lock_id],
            cwd=workspace,
            env={**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"},
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(master, answer.encode() + b"\n")
        _, err = child.communicate(timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    return child.returncode, err


def test_on_a_terminal_it_asks_first(workspace: Path, held: LockInfo) -> None:
    code, err = on_a_terminal(workspace, held.id, "n")
    assert code == 1
    assert f"the state lock is held by {held.describe()}" in err
    assert f"process {held.pid} is still running on this host" in err
    assert "Remove it? [y/N]" in err
    assert "ftctl: error: force-unlock cancelled; the state lock stays" in err
    assert read_lock(workspace) == held
    code, err = on_a_terminal(workspace, held.id, "y")
    assert code == 0, err
    assert read_lock(workspace) is None
