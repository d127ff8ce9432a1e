"""apply training the repository's tiny model on the CPU: progress, and kill -9 at any point.

A kill during training resumes from the newest complete checkpoint, and the
resumed adapter is bitwise identical to an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftctl.apply.rundirs import newest_checkpoint, runs_dir
from tests.conftest import REPO, git, write

pytest.importorskip("torch", reason="training needs the train extra")

RECIPE = (
    (REPO / "recipes" / "tiny-alpaca.yaml").read_text().replace("num_epochs: 2", "num_epochs: 1")
)


def make_workspace(root: Path, home: Path) -> dict[str, str]:
    shutil.copytree(REPO / "models" / "tiny-llama", root / "models" / "tiny-llama")
    subprocess.run([sys.executable, "-m", "dvc", "pull", "-q"], cwd=REPO, check=True, timeout=300)
    write(root / "data" / "alpaca-tiny.jsonl", (REPO / "data" / "alpaca-tiny.jsonl").read_text())
    write(root / "recipes" / "tiny-alpaca.yaml", RECIPE)
    write(root / ".gitignore", ".ftctl/\nregistry/\noutputs/\n")
    git(root, "init", "-q")
    env = {**os.environ, "XDG_CONFIG_HOME": str(home)}
    env.pop("FTCTL_SIGNING_KEY", None)
    ftctl(root, env, "keygen", "ci")
    env["FTCTL_SIGNING_KEY"] = str(home / "ftctl" / "keys" / "ci.key")
    ftctl(root, env, "lock")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "recipes")
    return env


def ftctl(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "ftctl", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def registry_digests(root: Path) -> dict[str, str]:
    [artifact] = (root / "registry" / "tiny-alpaca").iterdir()
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in artifact.iterdir()
        if p.is_file() and p.name != "README.md"
    }


@pytest.mark.slow
def test_killed_during_training_resumes_bitwise(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    env = make_workspace(plain, tmp_path / "home")
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
    env2 = make_workspace(killed, tmp_path / "home2")
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
