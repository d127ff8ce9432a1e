"""The worker's inputs: the locked Hub revision (offline, from the HF cache), DVC fetch, digest checks, recipe: bases.

Also: a Hub base that is neither cached nor reachable fails in seconds, in one line.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftctl.errors import FtctlError
from ftctl.lock.lockfile import HfPin, Lockfile, load_lock
from ftctl.worker.inputs import (
    BaseSource,
    check_local_model,
    fetch_if_tracked,
    hub_model,
    load_base,
    locked_revision,
    verify_inputs,
)
from tests.conftest import REPO, RunCLI, ScenarioWorkspace, git, write
from tests.hubserver import HubServer, Repo

pytest.importorskip("torch", reason="the worker tests need the train extra")

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TINY = REPO / "models" / "tiny-llama"
# A workspace in a temp dir reads the repository's tiny model and data through absolute paths.
ALLOW_REPO = f"allow_paths: ['{REPO / 'models'}', '{REPO / 'data'}']\n"
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
    assert load_base("acme/tiny", None, tmp_path, lock) == BaseSource(
        "acme/tiny", COMMIT, None, hub=True
    )
    assert load_base("acme/tiny@v1", None, tmp_path, None) == BaseSource(
        "acme/tiny", "v1", None, hub=True
    )  # ftctl train: as written
    assert load_base("./models/x", None, tmp_path, lock) == BaseSource(
        str(tmp_path / "models/x"), None, None, hub=False
    )
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


@pytest.mark.slow
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
    write(ws / "ftctl.yaml", ALLOW_REPO)
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


def closed_endpoint() -> str:
    """An address nothing listens on: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """hf_cache's cache as the Hugging Face cache of this process, online."""
    import huggingface_hub.constants as constants

    cache = hf_cache(tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # read once at import
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return cache


def test_an_unreachable_hub_decides_at_once(
    hub_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import huggingface_hub.constants as constants

    endpoint = closed_endpoint()
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    clock = time.perf_counter()
    assert hub_model("acme/tiny", COMMIT, "base_model acme/tiny") is True  # a cached commit
    assert capsys.readouterr().err == ""  # ... is loaded without asking the Hub
    assert hub_model("acme/tiny", None, "base_model acme/tiny") is True  # main, cached
    assert capsys.readouterr().err.startswith(
        "ftctl: warning: base_model acme/tiny: the Hub is not reachable (no answer from the Hub"
    )
    with pytest.raises(FtctlError) as missing:
        hub_model("acme/other", "v1", "base_model acme/other@v1")
    assert str(missing.value).startswith(
        f"base_model acme/other@v1: acme/other@v1 is not in the Hugging Face cache, and the Hub at "
        f"{endpoint} is not reachable (no answer from the Hub (ConnectError))"
    )
    assert "hf download acme/other --revision v1" in str(missing.value)
    assert "HF_ENDPOINT" in str(missing.value) and "local model directory" in str(missing.value)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(
        FtctlError,
        match=r"acme/other@main is not in the Hugging Face cache, and HF_HUB_OFFLINE is set",
    ):
        hub_model("acme/other", None, "base_model acme/other")
    assert time.perf_counter() - clock < 5  # no retries


def test_the_hub_says_what_is_wrong_with_a_base(hub_cache: Path, hub: HubServer) -> None:
    hub.state.models["acme/new"] = Repo(refs={"main": COMMIT})
    assert hub_model("acme/new", None, "base_model acme/new") is False  # transformers downloads it
    with pytest.raises(
        FtctlError, match=r"^base_model acme/new@v9: acme/new@v9: revision 'v9' does not"
    ):
        hub_model("acme/new", "v9", "base_model acme/new@v9")
    with pytest.raises(FtctlError, match=r"acme/gone@main: repository not found \(404\)"):
        hub_model("acme/gone", None, "base_model acme/gone")
    hub.state.models["acme/forbidden"] = Repo(refs={"main": COMMIT}, status=403)
    with pytest.raises(
        FtctlError, match=r"acme/forbidden@main: not authorized \(403\); set HF_TOKEN"
    ):
        hub_model("acme/forbidden", None, "base_model acme/forbidden")
    hub.state.models["acme/tiny"] = Repo(refs={"main": COMMIT}, status=503)
    assert hub_model("acme/tiny", None, "base_model acme/tiny") is True  # down: the cached main


def test_a_local_base_is_a_model_directory(tmp_path: Path) -> None:
    with pytest.raises(FtctlError, match=r"base_model m: .*/nothing is not a directory"):
        check_local_model(tmp_path / "nothing", "base_model m")
    (tmp_path / "weights").mkdir()
    with pytest.raises(
        FtctlError, match=r"weights has no config.json, so it is not a transformers model"
    ):
        check_local_model(tmp_path / "weights", "base_model m")
    check_local_model(TINY, "base_model m")


@pytest.mark.slow
def test_train_on_an_unreachable_hub_base_fails_in_seconds(tmp_path: Path) -> None:
    """Without the cache or the Hub, `ftctl train` says so in one line, not after a minute of retries."""
    ws = tmp_path / "ws"
    (ws / ".git").mkdir(parents=True)
    write(ws / "ftctl.yaml", ALLOW_REPO)
    data = f"datasets:\n  - path: {REPO / 'data' / 'alpaca-tiny.jsonl'}\n    type: alpaca\n"
    write(ws / "recipes" / "hub.yaml", "base_model: acme/tiny\n" + data + QUICK)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
    env.update(HF_ENDPOINT=closed_endpoint(), HF_HUB_CACHE=str(tmp_path / "empty-cache"))
    clock = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "ftctl", "train", "hub", "--output", str(tmp_path / "run")],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    wall = time.perf_counter() - clock
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ftctl: error:")]
    assert len(errors) == 1 and errors[0].startswith(
        "ftctl: error: base_model acme/tiny: acme/tiny@main is not in the Hugging Face cache"
    ), proc.stderr
    # Start-up and imports take most of it; transformers' own retries took about a minute.
    assert wall < 20, wall
    assert not (tmp_path / "run").exists()  # a failed run leaves no run directory
