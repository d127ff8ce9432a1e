"""`ftctl init`: a git repository where there is none, and no example that clashes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import RunCLI, git, write


def is_repository(path: Path) -> bool:
    proc = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--show-toplevel"], capture_output=True, text=True
    )
    return proc.returncode == 0 and Path(proc.stdout.strip()) == path.resolve()


def test_init_makes_a_git_repository(tmp_path: Path, run_cli: RunCLI) -> None:
    result = run_cli("init", "new", cwd=tmp_path)
    assert result.code == 0
    assert is_repository(tmp_path / "new")
    assert "created new/.git: a new git repository" in result.err.splitlines()
    # the new workspace validates as it is, the example included
    assert run_cli("validate", cwd=tmp_path / "new").out.strip() == "1 recipe valid"


def test_init_inside_a_repository_makes_none(tmp_path: Path, run_cli: RunCLI) -> None:
    git(tmp_path, "init", "-q")
    result = run_cli("init", "sub", cwd=tmp_path)
    assert result.code == 0
    assert not (tmp_path / "sub" / ".git").exists()
    assert "git repository" not in result.err


def test_init_again_keeps_everything(tmp_path: Path, run_cli: RunCLI) -> None:
    run_cli("init", "w", cwd=tmp_path)
    (tmp_path / "w" / "recipes" / "example.yaml").write_text("# mine now\n")
    result = run_cli("init", "w", cwd=tmp_path)
    assert result.code == 0
    assert (tmp_path / "w" / "recipes" / "example.yaml").read_text() == "# mine now\n"
    assert all(line.startswith(("kept    ", "Initialized")) for line in result.err.splitlines())


def test_no_example_next_to_existing_recipes(tmp_path: Path, run_cli: RunCLI) -> None:
    write(tmp_path / "recipes" / "support.yaml", "base_model: ./m\n")
    result = run_cli("init", cwd=tmp_path)
    assert result.code == 0
    assert not (tmp_path / "recipes" / "example.yaml").exists()
    assert (
        f"skipped {tmp_path}/recipes/example.yaml: the workspace has 1 recipe; "
        "an example would be planned and trained with them"
    ) in result.err.splitlines()
    assert (tmp_path / "ftctl.yaml").is_file()  # the rest is still completed


def test_no_example_when_a_recipe_has_its_name(tmp_path: Path, run_cli: RunCLI) -> None:
    write(tmp_path / "recipes" / "example.yml", "base_model: ./m\n")
    result = run_cli("init", cwd=tmp_path)
    assert not (tmp_path / "recipes" / "example.yaml").exists()
    assert "a recipe named example exists (recipes/example.yml)" in result.err


def test_the_example_goes_to_the_configured_folder(tmp_path: Path, run_cli: RunCLI) -> None:
    write(tmp_path / "ftctl.yaml", "recipes: mine\n")
    result = run_cli("init", cwd=tmp_path)
    assert result.code == 0
    assert (tmp_path / "mine" / "example.yaml").is_file()
    assert not (tmp_path / "recipes").exists()
    assert run_cli("validate", cwd=tmp_path).out.strip() == "1 recipe valid"


def test_no_example_for_a_glob_or_a_broken_config(tmp_path: Path, run_cli: RunCLI) -> None:
    write(tmp_path / "a" / "ftctl.yaml", "recipes: 'teams/*/recipes/*.yaml'\n")
    assert "is a glob" in run_cli("init", "a", cwd=tmp_path).err
    write(tmp_path / "b" / "ftctl.yaml", "recipes: [1]\n")
    result = run_cli("init", "b", cwd=tmp_path)
    assert result.code == 0
    assert "skipped b/recipes/example.yaml: ftctl.yaml does not load" in result.err
    assert not (tmp_path / "a" / "recipes").exists() and not (tmp_path / "b" / "recipes").exists()
