"""Shared fixtures: run the CLI in-process, build small workspaces."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ftctl.cli import main
from tests.hubserver import HubServer, serve
from tests.rundirs import finished_run

REPO = Path(__file__).resolve().parent.parent

# A recipe on a local model directory and a local dataset (tests create both).
LOCAL_RECIPE = """\
base_model: ./models/tiny
adapter: lora
datasets:
  - path: data/train.jsonl
    type: alpaca
micro_batch_size: 2
gradient_accumulation_steps: 2
learning_rate: 0.001
"""
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@e",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@e",
    "GIT_AUTHOR_DATE": "2026-11-24T12:00:00Z",
    "GIT_COMMITTER_DATE": "2026-11-24T12:00:00Z",
}


def git(root: Path, *args: str) -> None:
    """Run git in ``root`` with a fixed identity and dates (reproducible commits)."""
    import os
    import subprocess

    subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, env={**os.environ, **GIT_ENV}
    )


VALID_RECIPE = """\
base_model: ./models/tiny
adapter: lora
lora_r: 8
lora_alpha: 16
datasets:
  - path: data/train.jsonl
    type: alpaca
micro_batch_size: 2
gradient_accumulation_steps: 2
learning_rate: 0.001
"""


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.out.splitlines() if line]


RunCLI = Callable[..., Result]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> RunCLI:
    """Run ``ftctl ARGS`` in this process the way the console script does."""

    def run(*args: str, cwd: Path | None = None) -> Result:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["ftctl", *args])
        capsys.readouterr()
        code = _main()
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err + captured.out
        return Result(code, captured.out, captured.err)

    return run


def invoke_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Result:
    """``run_cli`` for fixtures wider than one test, which cannot use capsys or monkeypatch."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        patch.setattr(sys, "argv", ["ftctl", *args])
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = _main()
    assert "Traceback" not in err.getvalue() + out.getvalue()
    return Result(code, out.getvalue(), err.getvalue())


def _main() -> int:
    """Run the console script's entry point; its exit status."""
    try:
        main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty workspace directory inside its own git repository."""
    root = tmp_path / "ws"
    (root / "recipes").mkdir(parents=True)
    (root / ".git").mkdir()  # discovery stops at a repository boundary
    return root


def json_object(data: str | bytes) -> dict[str, Any]:
    """Parse JSON that must be an object (a plan, lock, envelope or statement)."""
    value = json.loads(data)
    assert isinstance(value, dict), f"not a JSON object: {value!r:.80}"
    return value


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """A Hub-API server on 127.0.0.1, with HF_ENDPOINT pointing at it and fast retries."""
    for server in serve():
        import huggingface_hub.constants as constants

        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setattr(constants, "ENDPOINT", server.url)  # read once at import
        monkeypatch.setenv("FTCTL_HF_BACKOFF", "0.01")
        monkeypatch.setenv("FTCTL_HF_TIMEOUT", "5")  # generous: a loaded 2-core CI machine is slow
        monkeypatch.setenv("FTCTL_HF_ATTEMPTS", "3")
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield server


@pytest.fixture(scope="session")
def pulled_data() -> Path:
    """This repository's DVC-tracked datasets, pulled from the in-repository remote (offline)."""
    import subprocess

    subprocess.run([sys.executable, "-m", "dvc", "pull", "-q"], cwd=REPO, check=True, timeout=300)
    return REPO / "data"


PLAN_RECIPE = """\
base_model: ./models/tiny
adapter: lora
lora_r: 8
datasets:
  - path: data/train.jsonl
    type: alpaca
micro_batch_size: 2
gradient_accumulation_steps: 2
learning_rate: 0.001
"""


class ScenarioWorkspace:
    """A git workspace with one recipe, a signing key and the steps apply will take."""

    def __init__(self, root: Path, run_cli: RunCLI) -> None:
        self.root = root
        self.cli = run_cli
        self.runs = 0

    def ftctl(self, *args: str) -> Result:
        return self.cli(*args, cwd=self.root)

    def commit(self) -> None:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-qm", "change", "--allow-empty")

    def lock(self) -> None:
        result = self.cli("lock", cwd=self.root)
        assert result.code == 0, result.err
        self.commit()

    def record(self, name: str, minute: int | None = None) -> Path:
        """Assemble a finished run of NAME and attest it, as apply will."""
        self.runs += 1
        minute = self.runs if minute is None else minute
        run = self.root / ".runs" / f"{name}-{self.runs}"
        weights = f"weights of {name} run {self.runs}"
        finished_run(self.root, run, name, weights=weights, minute=minute)
        result = self.cli("attest", str(run), "--recipe", name, cwd=self.root)
        assert result.code == 0, result.err
        self.commit()
        return self.root / result.out.strip()

    def plan(self, *args: str) -> dict[str, Any]:
        result = self.cli("plan", "--json", *args, cwd=self.root)
        assert result.code == 0, result.err
        return json_object(result.out)


@pytest.fixture
def ws(tmp_path: Path, run_cli: RunCLI, monkeypatch: pytest.MonkeyPatch) -> ScenarioWorkspace:
    root = tmp_path / "ws"
    write(root / "models" / "tiny" / "config.json", "{}\n")
    write(root / "data" / "train.jsonl", '{"instruction": "a", "output": "b"}\n')
    write(root / "recipes" / "alpha.yaml", PLAN_RECIPE)
    write(root / ".gitignore", ".ftctl/\n.runs/\n")
    git(root, "init", "-q")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home"))
    assert run_cli("keygen", "ci", cwd=root).code == 0
    monkeypatch.setenv("FTCTL_SIGNING_KEY", str(tmp_path / "home" / "ftctl" / "keys" / "ci.key"))
    w = ScenarioWorkspace(root, run_cli)
    w.lock()
    return w
