"""The workspace: what counts as one, where a recipe publishes, how its paths resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftctl.errors import UsageError
from ftctl.workspace import discover, discover_existing, resolve_path
from tests.conftest import RunCLI, write


def test_a_directory_without_ftctl_yaml_or_recipes_is_no_workspace(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    with pytest.raises(UsageError, match="is not an ftctl workspace"):
        discover_existing(tmp_path)
    (tmp_path / "recipes").mkdir()
    assert discover_existing(tmp_path).root == tmp_path.resolve()


@pytest.mark.parametrize("args", [["plan"], ["plan", "--json"], ["lock"], ["lock", "--check"]])
def test_plan_and_lock_outside_a_workspace_fail(
    tmp_path: Path, run_cli: RunCLI, args: list[str]
) -> None:
    (tmp_path / ".git").mkdir()
    result = run_cli(*args, cwd=tmp_path)
    assert result.code == 1 and result.out == ""
    assert result.err.splitlines() == [
        f"ftctl: error: {tmp_path.resolve()} is not an ftctl workspace (no ftctl.yaml, no recipes/); "
        "run ftctl in a workspace (or -C DIR), or create one with `ftctl init`"
    ]


def test_ftctl_yaml_alone_makes_a_workspace(tmp_path: Path, run_cli: RunCLI) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path / "ftctl.yaml", "recipes: teams/*/recipes\n")
    assert discover_existing(tmp_path).exists


def test_publish_target_defaults_to_the_registry(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path / "ftctl.yaml", "registry: hf://acme\n")
    workspace = discover(tmp_path)
    assert workspace.publish_target("bot", None) == "hf://acme/bot"
    assert workspace.publish_target("bot", "file://elsewhere") == "file://elsewhere"


def test_paths_resolve_against_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_path(tmp_path, "data/x.jsonl") == tmp_path / "data" / "x.jsonl"
    assert resolve_path(tmp_path, "/abs/x") == Path("/abs/x")
    assert resolve_path(tmp_path, "~/x") == tmp_path / "home" / "x"
