"""`ftctl apply` training the tiny model through the ssh executor, against a local apply.

The host is this machine behind a real sshd. Mid-run the apply's ssh connections are killed
(it reconnects to the same worker), and then the worker itself is killed on the host as a
reboot would (it is started again from the newest checkpoint there). The adapter published
is bitwise identical to a local apply's of the same recipe: the executor is not part of the
fingerprint, and nothing it does changes what is trained.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ftctl.lock.lockfile import load_lock
from tests.executors.sshd import Sshd
from tests.executors.test_ssh import cut_connections
from tests.trainws import TINY_RECIPE, ftctl, make_workspace, registry_digests

pytest.importorskip("torch", reason="training needs the train extra")

RECIPE = TINY_RECIPE  # 24 steps, a checkpoint every 2-3


def workspace(
    root: Path, home: Path, executors: dict[str, object], executor: str
) -> dict[str, str]:
    recipe = RECIPE + f"  executor: {executor}\n"
    env = {"FTCTL_CHECKPOINT_SECONDS": "0"}
    return make_workspace(root, home, recipe, executors=executors, env=env)


def fingerprint(root: Path) -> str:
    return load_lock(root / "lockfiles" / "tiny-alpaca.lock", "lock").fingerprint


def wait_until(check: object, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def complete_checkpoint(out: Path) -> bool:
    for state in out.glob("checkpoints/checkpoint-*/trainer_state.json"):
        try:
            if isinstance(json.loads(state.read_text()).get("global_step"), int):
                return True
        except (OSError, ValueError):
            continue
    return False


@pytest.mark.slow
def test_apply_over_ssh_survives_a_cut_link_and_a_dead_worker_bitwise(
    sshd: Sshd, tmp_path: Path, pulled_data: Path
) -> None:
    plain = tmp_path / "plain"
    env = workspace(plain, tmp_path / "home", {}, "local")
    started = time.monotonic()
    ftctl(plain, env, "apply", "--auto-approve")
    local_s = time.monotonic() - started

    host = tmp_path / "host"
    remote = tmp_path / "remote"
    env2 = workspace(remote, tmp_path / "home2", {"box": sshd.executor(host)}, "box")
    assert fingerprint(remote) == fingerprint(plain)  # the executor is not part of it
    short = Path(tempfile.mkdtemp(prefix="ftx-", dir="/tmp"))
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ftctl", "apply", "--auto-approve"],
            cwd=remote,
            env={**env2, "TMPDIR": str(short)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        run = host / "runs" / fingerprint(remote).removeprefix("sha256:")
        progress = run / "progress.jsonl"
        wait_until(lambda: progress.is_file() and progress.stat().st_size > 0, "training")
        assert cut_connections(short) >= 1  # the link dies mid-run
        wait_until(lambda: complete_checkpoint(run / "out"), "a checkpoint")
        assert not (run / "out" / "result.json").exists(), "the training ended before the kill"
        pids = json.loads((run / "worker.pid").read_text())
        os.kill(pids["supervisor"], signal.SIGKILL)  # the host loses the worker: no exit code
        os.killpg(pids["pid"], signal.SIGKILL)
        out, err = proc.communicate(timeout=900)
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "tiny-alpaca: step 24/24  loss" in err
    assert out.strip().startswith("manifests/tiny-alpaca/")
    assert registry_digests(remote) == registry_digests(plain)  # bitwise the same adapter
    [runs] = list((remote / ".ftctl" / "runs").iterdir())
    assert "resuming from checkpoint-" in (runs / "worker.log").read_text()
    assert not run.exists()  # cleared on the host once copied back and checked
    assert len(list((host / "inputs").iterdir())) > 1  # the inputs stay for the next run
    again = ftctl(remote, env2, "apply", "--auto-approve")
    assert "No changes" in again.stderr
    sys.stderr.write(f"local apply {local_s:.1f}s\n")
