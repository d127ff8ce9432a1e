"""Datasets tracked by real DVC in temporary git repositories.

ftctl reads DVC's records without importing dvc (lock --check must start
fast); these tests hold those records against DVC's own API.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ftctl._dvc import find_record, workspace_md5
from ftctl.cache.stat import StatCache
from ftctl.lock.lockfile import load_lock
from tests.conftest import RunCLI, write

RECIPE = """\
base_model: ./models/tiny
adapter: lora
datasets:
  - path: {path}
    type: alpaca
micro_batch_size: 2
gradient_accumulation_steps: 2
learning_rate: 0.001
"""
ENV = {
    **os.environ,
    "DVC_NO_ANALYTICS": "1",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@e",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@e",
}


def dvc(root: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        check=True,
        env=ENV,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git and DVC repository, initialised once per module (each dvc command takes ~0.5 s)."""
    root = tmp_path_factory.mktemp("dvc") / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    dvc(root, "init", "-q")
    dvc(root, "config", "core.analytics", "false")
    write(root / "models" / "tiny" / "config.json", "{}\n")
    (root / "recipes").mkdir()
    return root


@pytest.fixture
def repo(initialised: Path, tmp_path: Path) -> Path:
    """A fresh copy of the initialised repository for one test."""
    return Path(shutil.copytree(initialised, tmp_path / "repo", symlinks=True))


def dvc_outs(root: Path) -> dict[str, tuple[str, int | None, int | None]]:
    """What DVC's own API says each output is: path -> (md5, size, nfiles)."""
    code = (
        "import json, sys\n"
        "from dvc.repo import Repo\n"
        "repo = Repo(sys.argv[1])\n"
        "out = {}\n"
        "for o in repo.index.outs:\n"
        "    out[o.fs_path] = [o.hash_info.value, o.meta.size, o.meta.nfiles]\n"
        "print(json.dumps(out))\n"
    )
    import json

    proc = subprocess.run(
        [sys.executable, "-c", code, str(root)],
        capture_output=True,
        text=True,
        check=True,
        env=ENV,
        timeout=300,
    )
    return {k: tuple(v) for k, v in json.loads(proc.stdout).items()}


def test_tracked_file(repo: Path, run_cli: RunCLI) -> None:
    write(repo / "data" / "train.jsonl", '{"instruction": "a", "output": "b"}\n')
    dvc(repo, "add", "-q", "data/train.jsonl")
    record = find_record(repo, repo / "data" / "train.jsonl")
    assert record is not None and not record.md5.endswith(".dir")
    truth = dvc_outs(repo)[str(repo / "data" / "train.jsonl")]
    assert (record.md5, record.size) == truth[:2]
    write(repo / "recipes" / "r.yaml", RECIPE.format(path="data/train.jsonl"))
    result = run_cli("lock", cwd=repo)
    assert result.code == 0, result.err
    assert "not versioned" not in result.err
    pin = load_lock(repo / "lockfiles" / "r.lock", "r.lock").datasets[0]
    assert pin.model_dump() == {
        "ref": "data/train.jsonl",
        "source": "dvc",
        "md5": truth[0],
        "size": truth[1],
        "nfiles": 1,
    }


def test_tracked_directory(repo: Path, run_cli: RunCLI) -> None:
    write(repo / "data" / "corpus" / "a.jsonl", '{"text": "one"}\n')
    write(repo / "data" / "corpus" / "sub" / "b.jsonl", '{"text": "two"}\n')
    dvc(repo, "add", "-q", "data/corpus")
    record = find_record(repo, repo / "data" / "corpus")
    truth = dvc_outs(repo)[str(repo / "data" / "corpus")]
    assert record is not None and record.md5.endswith(".dir")
    assert (record.md5, record.size, record.nfiles) == truth
    assert workspace_md5(repo / "data" / "corpus", record.legacy, StatCache.disabled()) == truth[0]
    write(repo / "recipes" / "r.yaml", RECIPE.format(path="data/corpus"))
    assert run_cli("lock", cwd=repo).code == 0
    pin = load_lock(repo / "lockfiles" / "r.lock", "r.lock").datasets[0]
    assert pin.model_dump()["md5"] == truth[0] and pin.model_dump()["nfiles"] == 2


def test_stage_output_in_dvc_lock(repo: Path, run_cli: RunCLI) -> None:
    write(
        repo / "prepare.py",
        "from pathlib import Path\nPath('data').mkdir(exist_ok=True)\n"
        "Path('data/prepared.jsonl').write_text('{\"text\": \"prepared\"}\\n')\n",
    )
    dvc(
        repo,
        "stage",
        "add",
        "-q",
        "-n",
        "prepare",
        "-d",
        "prepare.py",
        "-o",
        "data/prepared.jsonl",
        f"{sys.executable} prepare.py",
    )
    dvc(repo, "repro", "-q")
    record = find_record(repo, repo / "data" / "prepared.jsonl")
    truth = dvc_outs(repo)[str(repo / "data" / "prepared.jsonl")]
    assert record is not None and record.source == "dvc.lock"
    assert (record.md5, record.size) == truth[:2]
    write(repo / "recipes" / "r.yaml", RECIPE.format(path="data/prepared.jsonl"))
    assert run_cli("lock", cwd=repo).code == 0


def test_workspace_copy_differs(repo: Path, run_cli: RunCLI) -> None:
    write(repo / "data" / "train.jsonl", '{"instruction": "a", "output": "b"}\n')
    dvc(repo, "add", "-q", "data/train.jsonl")
    write(repo / "data" / "train.jsonl", '{"instruction": "edited", "output": "b"}\n')
    write(repo / "recipes" / "r.yaml", RECIPE.format(path="data/train.jsonl"))
    result = run_cli("lock", cwd=repo)
    assert result.code == 1
    assert result.err.strip() == (
        "ftctl: error: recipe r: datasets[0].path: data/train.jsonl differs from what DVC recorded in "
        "data/train.jsonl.dvc; run `dvc add` (or `dvc repro`) to record the change, or `dvc checkout` "
        "to restore the recorded version"
    )
    assert not (repo / "lockfiles").exists()


def test_not_pulled_is_locked_from_the_record(repo: Path, run_cli: RunCLI) -> None:
    write(repo / "data" / "train.jsonl", '{"instruction": "a", "output": "b"}\n')
    dvc(repo, "add", "-q", "data/train.jsonl")
    (repo / "data" / "train.jsonl").unlink()  # as on a CI runner that never pulled
    write(repo / "recipes" / "r.yaml", RECIPE.format(path="data/train.jsonl"))
    assert run_cli("lock", cwd=repo).code == 0
    assert load_lock(repo / "lockfiles" / "r.lock", "r.lock").datasets[0].source == "dvc"


def test_this_repository_locks_are_fresh(run_cli: RunCLI) -> None:
    from tests.conftest import REPO

    result = run_cli("lock", "--check", cwd=REPO)
    assert result.code == 0, result.out
