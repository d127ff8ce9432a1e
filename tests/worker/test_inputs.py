"""The worker's inputs: the locked Hub revision (offline, from the HF cache), DVC fetch, digest checks, recipe: bases."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ftctl.errors import FtctlError
from ftctl.lock.lockfile import HfPin, Lockfile, load_lock
from ftctl.worker.inputs import fetch_if_tracked, load_base, locked_revision, verify_inputs
from tests.conftest import REPO, RunCLI, ScenarioWorkspace, git, write

pytest.importorskip("torch", reason="the worker tests need the train extra")

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TINY = REPO / "models" / "tiny-llama"
QUICK = """\
adapter: lora
lora_target_modules: [q_proj, v_proj]
sequence_len: 256
micro_batch_size: 4
gradient_accumulation_steps: 1
max_steps: 2
optimizer: adamw_torch
learning_rate: 0.002
seed: 42
"""


def a_lock(base: str, datasets: list[str]) -> Lockfile:
    sha = "sha256:" + "0" * 64
    return Lockfile.model_validate(
        {
            "version": 1,
            "recipe": {"path": "recipes/r.yaml", "digest": sha},
            "base_model": {"ref": base, "source": "hf", "revision": COMMIT},
            "datasets": [{"ref": d, "source": "hf", "revision": COMMIT} for d in datasets],
            "pins": {"path": "lockfiles/requirements.txt", "digest": sha},
            "trainer": {"ftctl": "0.1.0"},
            "fingerprint": sha,
        }
    )


def test_the_locked_revision_is_what_loads(tmp_path: Path) -> None:
    lock = a_lock("acme/tiny", ["acme/rows"])
    assert locked_revision(lock, "acme/rows", "dataset") == COMMIT
    assert locked_revision(lock, "acme/other", "dataset") is None
    assert load_base("acme/tiny", None, tmp_path, lock) == ("acme/tiny", COMMIT, None)
    assert load_base("acme/tiny@v1", None, tmp_path, None) == (
        "acme/tiny",
        "v1",
        None,
    )  # ftctl train: as written
    assert load_base("./models/x", None, tmp_path, lock) == (str(tmp_path / "models/x"), None, None)
    assert isinstance(lock.base_model, HfPin)
    with pytest.raises(FtctlError, match="train up first"):
        load_base("recipe:up", None, tmp_path, lock)
    write(tmp_path / "up" / "adapter_config.json", "{not json")
    with pytest.raises(FtctlError, match=r"adapter_config\.json: unreadable"):
        load_base("recipe:up", tmp_path / "up", tmp_path, lock)


def hf_cache(root: Path) -> Path:
    """A Hugging Face cache holding acme/tiny (the tiny model) and the dataset acme/rows at COMMIT."""
    cache = root / "hf-cache"
    model = cache / "models--acme--tiny"
    shutil.copytree(TINY, model / "snapshots" / COMMIT)
    write(model / "refs" / "main", COMMIT)
    rows = cache / "datasets--acme--rows"
    write(
        rows / "snapshots" / COMMIT / "train.jsonl",
        (REPO / "data" / "alpaca-tiny.jsonl").read_text(),
    )
    write(rows / "refs" / "main", COMMIT)
    return cache


@pytest.mark.slow
def test_hub_model_and_dataset_from_the_cache_offline(tmp_path: Path, pulled_data: Path) -> None:
    cache = hf_cache(tmp_path)
    ws = tmp_path / "ws"
    (ws / ".git").mkdir(parents=True)
    write(
        ws / "recipes" / "hub.yaml",
        f"base_model: acme/tiny@{COMMIT}\ndatasets:\n"
        f"  - path: acme/rows@{COMMIT}\n    type: alpaca\n" + QUICK,
    )
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(tmp_path / "ds"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "ftctl", "train", "hub", "--output", str(tmp_path / "run")],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == f"acme/tiny@{COMMIT}"
    # A revision the cache does not hold fails in one line, offline.
    write(
        ws / "recipes" / "hub.yaml",
        f"base_model: acme/tiny@{COMMIT}\ndatasets:\n"
        f"  - path: acme/rows@{'f' * 40}\n    type: alpaca\n" + QUICK,
    )
    proc = subprocess.run(
        [sys.executable, "-m", "ftctl", "train", "hub", "--output", str(tmp_path / "run2")],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip().splitlines()[-1].startswith("ftctl: error: datasets[0] (acme/rows@ffff")
    ), proc.stderr[-1000:]
    assert "is not in the Hugging Face cache and the Hub is not reachable" in proc.stderr


def test_a_missing_dvc_tracked_path_is_fetched(tmp_path: Path, pulled_data: Path) -> None:
    root = tmp_path / "repo"
    write(root / "data" / "rows.jsonl", (pulled_data / "alpaca-tiny.jsonl").read_text())
    git(root, "init", "-q")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    for args in (
        ["init", "-q"],
        ["remote", "add", "-d", "store", str(tmp_path / "store")],
        ["add", "-q", "data/rows.jsonl"],
        ["push", "-q"],
    ):
        subprocess.run(
            [sys.executable, "-m", "dvc", *args], cwd=root, check=True, capture_output=True, env=env
        )
    target = root / "data" / "rows.jsonl"
    target.unlink()
    assert fetch_if_tracked(root, target, "datasets[0]") is True
    assert target.read_text() == (pulled_data / "alpaca-tiny.jsonl").read_text()
    assert fetch_if_tracked(root, root / "data" / "untracked.jsonl", "datasets[1]") is False


def test_inputs_are_verified_against_the_lock(ws: ScenarioWorkspace) -> None:
    path = ws.root / "lockfiles" / "alpha.lock"
    lock = load_lock(path, "lockfiles/alpha.lock")
    verify_inputs(lock, ws.root, "lockfiles/alpha.lock")
    write(ws.root / "data" / "train.jsonl", '{"instruction": "edited", "output": "b"}\n')
    with pytest.raises(
        FtctlError,
        match=r"datasets\[0\]: data/train.jsonl differs from what lockfiles/alpha.lock pinned",
    ):
        verify_inputs(lock, ws.root, "lockfiles/alpha.lock")
    (ws.root / "models" / "tiny" / "config.json").unlink()
    with pytest.raises(FtctlError, match=r"base_model: \./models/tiny differs"):
        verify_inputs(lock, ws.root, "lockfiles/alpha.lock")


@pytest.mark.slow
def test_a_recipe_trains_on_its_upstream(
    tmp_path: Path, run_cli: RunCLI, pulled_data: Path
) -> None:
    ws = tmp_path / "ws"
    (ws / ".git").mkdir(parents=True)
    data = f"datasets:\n  - path: {pulled_data / 'alpaca-tiny.jsonl'}\n    type: alpaca\n"
    write(ws / "recipes" / "up.yaml", f"base_model: {TINY}\n" + data + QUICK)
    write(
        ws / "recipes" / "down.yaml",
        "base_model: recipe:up\n" + data + QUICK.replace("seed: 42", "seed: 7"),
    )
    result = run_cli("train", "down", cwd=ws)
    assert result.code == 1 and "train it first: ftctl train up" in result.err
    assert run_cli("train", "up", cwd=ws).code == 0
    result = run_cli("train", "down", cwd=ws)
    assert result.code == 0, result.err
    config = json.loads((ws / "outputs" / "down" / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "recipe:up"
