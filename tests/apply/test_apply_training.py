"""apply training the repository's tiny model on the CPU: progress, and kill -9 at any point.

A kill during training resumes from the newest complete checkpoint, and the
resumed adapter is bitwise identical to an uninterrupted run's.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftctl.apply.rundirs import newest_checkpoint, runs_dir
from tests.trainws import ONE_EPOCH, ftctl, make_workspace, registry_digests

pytest.importorskip("torch", reason="training needs the train extra")

RECIPE = ONE_EPOCH


@pytest.mark.slow
def test_killed_during_training_resumes_bitwise(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    env = make_workspace(plain, tmp_path / "home", RECIPE)
    first = ftctl(plain, env, "apply", "--auto-approve")
    assert "tiny-alpaca: step 1/12  loss" in first.stderr  # one line per logged step
    assert "ETA" in first.stderr and "tok/s" in first.stderr
    assert (
        "Warning" not in first.stderr and "it/s]" not in first.stderr
    )  # third-party output is in the log
    [log] = runs_dir(plain).glob("*/worker.log")
    again = ftctl(plain, env, "apply", "--auto-approve")
    assert "No changes" in again.stderr and again.stdout == ""

    killed = tmp_path / "killed"
    env2 = make_workspace(killed, tmp_path / "home2", RECIPE)
    # A checkpoint at every step here (none in the plain run, which is short): checkpoints
    # change nothing that is trained, so the two adapters must still be the same bytes.
    env2["FTCTL_CHECKPOINT_SECONDS"] = "0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ftctl", "apply", "--auto-approve"],
        cwd=killed,
        env=env2,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = [d for d in runs_dir(killed).glob("*") if newest_checkpoint(d) is not None]
        if found:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("no checkpoint was written")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # the worker dies with it
    assert not (killed / "manifests").exists()
    resumed = ftctl(killed, env2, "apply", "--auto-approve")
    assert "resumed from step" in resumed.stderr
    assert registry_digests(killed) == registry_digests(plain)
    assert len(list((killed / "manifests" / "tiny-alpaca").glob("*.intoto.json"))) == 1
    assert not list(runs_dir(killed).glob("*/checkpoints"))
    assert log.read_text()  # the worker's own output went to its log
