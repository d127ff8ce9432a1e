"""This repository as a workspace: the tiny model, the DVC-tracked data, the recipes.

The model and data are committed build outputs; these tests rebuild them and
check the result is the same, and that a fresh clone gets the data with
`dvc pull` from the remote inside the repository, without network.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO

MODEL = REPO / "models" / "tiny-llama"


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def dvc_records() -> dict[str, dict[str, object]]:
    yaml = YAML(typ="safe")
    records = {}
    for dvc_file in sorted((REPO / "data").glob("*.dvc")):
        out = yaml.load(dvc_file.read_text())["outs"][0]
        records[out["path"]] = out
    return records


def test_data_rebuilds_to_the_dvc_recorded_digests(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_tiny_data.py"), str(tmp_path)], check=True
    )
    records = dvc_records()
    assert set(records) == {"alpaca-tiny.jsonl", "chat-tiny.jsonl"}
    for name, record in records.items():
        assert md5(tmp_path / name) == record["md5"]
        assert (tmp_path / name).stat().st_size == record["size"]


@pytest.mark.slow
def test_model_rebuilds_identically(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="rebuilding the tiny model needs the train extra")
    from safetensors.numpy import load_file

    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_tiny_model.py"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "generation_config.json",
    ):
        assert (tmp_path / name).read_bytes() == (MODEL / name).read_bytes(), name
    fresh, committed = (json.loads((d / "config.json").read_text()) for d in (tmp_path, MODEL))
    fresh.pop("transformers_version"), committed.pop("transformers_version")
    assert fresh == committed
    new, old = (
        load_file(str(tmp_path / "model.safetensors")),
        load_file(str(MODEL / "model.safetensors")),
    )
    assert new.keys() == old.keys()
    for key in old:
        assert (new[key] == old[key]).all(), key


def test_model_is_small() -> None:
    total = sum(p.stat().st_size for p in MODEL.iterdir())
    assert total < 3 * 1024 * 1024


def test_fresh_clone_pulls_data_offline(tmp_path: Path) -> None:
    if not (REPO / ".git").exists():
        pytest.fail("the repository tests run inside a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    # Bring the working tree's DVC files, in case they are not committed yet.
    for path in [*(REPO / "data").glob("*.dvc"), REPO / ".dvc" / "config"]:
        shutil.copy2(path, clone / path.relative_to(REPO))
    shutil.copytree(REPO / "dvc-store", clone / "dvc-store", dirs_exist_ok=True)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(
        [sys.executable, "-m", "dvc", "pull", "--quiet"],
        cwd=clone,
        check=True,
        env=env,
        timeout=300,
    )
    for name, record in dvc_records().items():
        assert md5(clone / "data" / name) == record["md5"]
