"""What lock reads is confined to the workspace (and ftctl.yaml's allow_paths); what it prints is escaped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ftctl.lock.resolve import compute_locks, load_workspace_recipes
from ftctl.workspace import discover
from tests.conftest import LOCAL_RECIPE, RunCLI, write


@pytest.fixture
def ws(workspace: Path) -> Path:
    write(workspace / "models" / "tiny" / "config.json", "{}\n")
    write(workspace / "data" / "train.jsonl", '{"instruction": "a", "output": "b"}\n')
    write(workspace / "recipes" / "tiny.yaml", LOCAL_RECIPE)
    return workspace


@pytest.fixture
def outside(ws: Path) -> Path:
    """A model directory beside the workspace, holding what no lock may read unasked."""
    model = ws.parent / "outside" / "model"
    write(model / "config.json", "{}\n")
    write(model / "secret.txt", "hf_SECRETMARKER\n")
    return model


@pytest.mark.parametrize("args", [["lock"], ["lock", "--check"], ["plan"]])
def test_a_model_outside_the_workspace_is_refused_before_it_is_read(
    ws: Path, outside: Path, run_cli: RunCLI, args: list[str]
) -> None:
    for written in (str(outside), "../outside/model", "./models/../../outside/model"):
        write(ws / "recipes" / "tiny.yaml", LOCAL_RECIPE.replace("./models/tiny", written))
        result = run_cli(*args, cwd=ws)
        assert result.code == 1 and "hf_SECRETMARKER" not in result.out + result.err
        assert len(result.err.splitlines()) == 1
        assert result.err.startswith("ftctl: error: recipes/tiny.yaml:1:13: base_model: '")
        assert (
            f"lies outside the workspace; move it into the repository, or allow it in "
            f"ftctl.yaml: allow_paths: ['{written}']" in result.err
        )
    assert not (ws / "lockfiles" / "tiny.lock").exists()


def test_allow_paths_lets_lock_pin_an_outside_model(
    ws: Path, outside: Path, run_cli: RunCLI
) -> None:
    write(ws / "recipes" / "tiny.yaml", LOCAL_RECIPE.replace("./models/tiny", "../outside/model"))
    write(ws / "ftctl.yaml", "allow_paths: [../outside]\n")
    assert run_cli("lock", cwd=ws).code == 0
    text = (ws / "lockfiles" / "tiny.lock").read_text()
    assert 'base_model: {ref: "../outside/model", source: "local"' in text and "nfiles: 2" in text
    assert run_cli("lock", "--check", cwd=ws).code == 0
    write(ws / "ftctl.yaml", "allow_paths: []\n")  # narrowed again: refused again
    assert "lies outside the workspace" in run_cli("lock", "--check", cwd=ws).err


def test_a_fifo_as_dataset_is_refused_not_pinned_as_an_empty_tree(
    ws: Path, run_cli: RunCLI
) -> None:
    (ws / "data" / "train.jsonl").unlink()
    os.mkfifo(ws / "data" / "train.jsonl")
    result = run_cli("lock", cwd=ws)
    assert result.code == 1
    assert result.err.splitlines()[-1] == (
        "ftctl: error: data/train.jsonl is a FIFO, not a file or directory; "
        "models and datasets are regular files and directories"
    )


def test_a_dataset_symlink_loop_is_one_line(ws: Path, run_cli: RunCLI) -> None:
    (ws / "data" / "loop").symlink_to("loop")
    write(ws / "recipes" / "tiny.yaml", LOCAL_RECIPE.replace("data/train.jsonl", "data/loop"))
    result = run_cli("lock", "--check", cwd=ws)
    assert result.err.splitlines() == [
        "ftctl: error: recipe tiny: datasets[0].path: data/loop is a symlink loop; "
        "point the link at the dataset"
    ]


def test_a_lock_that_is_a_symlink_out_is_not_read_nor_written_through(
    ws: Path, run_cli: RunCLI
) -> None:
    secret = write(ws.parent / "outside" / "s.yaml", "hf_SECRETMARKER: [x\n  y: z\n")
    (ws / "lockfiles").mkdir()
    (ws / "lockfiles" / "tiny.lock").symlink_to(secret)
    check = run_cli("lock", "--check", cwd=ws)
    assert check.code == 1 and "hf_SECRETMARKER" not in check.out + check.err
    assert "  unreadable: is a symlink leaving the workspace" in check.out.splitlines()
    result = run_cli("lock", cwd=ws)
    assert result.code == 1 and "is a symlink; refusing to replace it" in result.err
    assert secret.read_text() == "hf_SECRETMARKER: [x\n  y: z\n"


def test_lockfiles_that_is_a_file_is_one_line(ws: Path, run_cli: RunCLI) -> None:
    write(ws / "lockfiles", "not a directory\n")
    result = run_cli("lock", cwd=ws)
    assert result.code == 1
    assert result.err.splitlines()[-1] == (
        "ftctl: error: lockfiles/tiny.lock: cannot write the lock (Not a directory); "
        "lockfiles/ must be a directory ftctl can write to"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "torch==2.0 --hash=sha256:zz;rm",
            "lockfiles/requirements.txt:1: not a hash: 'sha256:zz;rm'",
        ),
        ('torch==2.0; python_version == "\x1b[2J"', "holds a control character"),
    ],
)
def test_pins_refuse_what_is_no_requirement(
    ws: Path, run_cli: RunCLI, line: str, message: str
) -> None:
    write(ws / "lockfiles" / "requirements.txt", line + "\n")
    result = run_cli("lock", "--check", cwd=ws)
    assert result.code == 1 and message in result.err and "\x1b" not in result.err


def test_lock_check_prints_a_hostile_lock_escaped(ws: Path, run_cli: RunCLI) -> None:
    assert run_cli("lock", cwd=ws).code == 0
    path = ws / "lockfiles" / "tiny.lock"
    forged = 'trainer: {x: "\\e[2J\\nftctl: warning: forged [red]x[/red]", ftctl: "'
    path.write_text(path.read_text().replace('trainer: {ftctl: "', forged))
    result = run_cli("lock", "--check", cwd=ws)
    assert result.code == 1
    assert (
        "  - trainer.x: \\x1b[2J\\nftctl: warning: forged [red]x[/red]" in result.out.splitlines()
    )
    assert "\x1b" not in result.out and not any(
        line.startswith("ftctl: warning: forged") for line in result.out.splitlines()
    )


def test_a_symlinked_dataset_depends_on_its_link_too(ws: Path) -> None:
    # Repointing the link changes what is read, so the plan memo must see the link itself.
    (ws / "data" / "link.jsonl").symlink_to("train.jsonl")
    write(ws / "recipes" / "tiny.yaml", LOCAL_RECIPE.replace("data/train.jsonl", "data/link.jsonl"))
    workspace = discover(ws)
    outcome = compute_locks(workspace, load_workspace_recipes(workspace), network=False).outcomes[0]
    assert {ws / "data" / "link.jsonl", ws / "data" / "train.jsonl"} <= set(outcome.deps)
