"""A dataset path that names nothing: "file not found" with the nearby name, no Hub guess."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftctl.recipe.paths import looks_local, missing_dataset, nearby_name
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


@pytest.fixture
def ws(workspace: Path) -> Path:
    write(workspace / "data" / "train.jsonl", "{}\n")
    write(workspace / "data" / "chats" / "support.jsonl", "{}\n")
    return workspace


@pytest.mark.parametrize(
    ("text", "local"),
    [
        ("./anything", True),
        ("../x", True),
        ("/abs/x", True),
        ("train.jsonl", True),  # a data file's extension
        ("data/new-set", True),  # the workspace has a data/ folder
        ("a/b/c", True),  # a Hub id has one slash at most
        ("tatsu-lab/alpaca", False),
        ("tatsu-lab/alpaca@main", False),
        ("squad", False),  # a canonical Hub dataset
    ],
)
def test_what_can_only_be_a_path(ws: Path, text: str, local: bool) -> None:
    assert looks_local(ws, text) is local


def test_nearby_names(ws: Path) -> None:
    assert nearby_name(ws, "data/trian.jsonl") == "data/train.jsonl"
    assert nearby_name(ws, "./data/train.json") == "./data/train.jsonl"
    assert nearby_name(ws, "support.jsonl") == "data/chats/support.jsonl"  # another folder
    assert nearby_name(ws, "data/zzzzzzz.csv") is None


def test_missing_dataset(ws: Path) -> None:
    assert missing_dataset(ws, "data/train.jsonl") is None  # there
    assert missing_dataset(ws, "tatsu-lab/alpaca") is None  # may be on the Hub: lock asks it
    found = missing_dataset(ws, "data/trian.jsonl")
    assert found is not None and found.suggestion == "data/train.jsonl"
    assert (found.message, found.hint) == (
        "file not found (and it cannot be a Hub dataset id)",
        "did you mean 'data/train.jsonl'?",
    )
    nothing_near = missing_dataset(ws, "data/zzzzzzz.csv")
    assert nothing_near is not None and nothing_near.suggestion is None
    assert nothing_near.hint == "the path is relative to the workspace root"


def test_a_dvc_record_without_the_file_is_not_missing(ws: Path) -> None:
    # Recorded by DVC (a .dvc file, or a stage output in dvc.lock) but not pulled yet.
    (ws / ".dvc").mkdir()
    write(
        ws / "data" / "big.jsonl.dvc",
        "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  path: big.jsonl\n",
    )
    write(
        ws / "dvc.lock",
        "schema: '2.0'\nstages:\n  make:\n    cmd: make\n    outs:\n"
        "    - path: data/made.jsonl\n      md5: 0123456789abcdef0123456789abcdef\n      size: 3\n",
    )
    assert missing_dataset(ws, "data/big.jsonl") is None
    assert missing_dataset(ws, "data/made.jsonl") is None
    assert missing_dataset(ws, "data/other.jsonl") is not None


def test_validate_warns_at_the_path(ws: Path, run_cli: RunCLI) -> None:
    write(ws / "recipes" / "a.yaml", RECIPE.format(path="data/trian.jsonl"))
    result = run_cli("validate", cwd=ws)
    assert result.code == 0  # the recipe itself is valid; lock needs the file
    assert result.err.splitlines() == [
        "ftctl: warning: recipes/a.yaml:4:11: datasets[0].path: file not found "
        "(and it cannot be a Hub dataset id); did you mean 'data/train.jsonl'?"
    ]


def test_validate_says_nothing_of_a_hub_id_or_a_present_file(ws: Path, run_cli: RunCLI) -> None:
    # nor of a missing file without a namesake: lock reports that one (file not found)
    write(ws / "recipes" / "a.yaml", RECIPE.format(path="tatsu-lab/alpaca"))
    write(ws / "recipes" / "b.yaml", RECIPE.format(path="data/train.jsonl"))
    write(ws / "recipes" / "c.yaml", RECIPE.format(path="data/zzzzzzz.csv"))
    result = run_cli("validate", cwd=ws)
    assert result.code == 0 and "warning" not in result.err
