"""`ftctl init --ci github|gitlab`: the CI file, pinned to this version, never over one of yours."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftctl import __version__
from ftctl.scaffold import ci_template
from tests.conftest import RunCLI, git, write

WRITTEN = {"github": ".github/workflows/ftctl.yml", "gitlab": ".gitlab-ci.yml"}


@pytest.mark.parametrize("system", ["github", "gitlab"])
def test_init_writes_the_ci_file(tmp_path: Path, run_cli: RunCLI, system: str) -> None:
    result = run_cli("init", "w", "--ci", system, cwd=tmp_path)
    assert result.code == 0, result.err
    written = tmp_path / "w" / WRITTEN[system]
    assert written.read_text() == ci_template(system)
    assert f'FTCTL_VERSION: "{__version__}"' in written.read_text()
    lines = result.err.splitlines()
    assert f"created w/{WRITTEN[system]}" in lines
    assert lines[-1] == (
        f"w/{WRITTEN[system]} needs secrets and a GPU runner before its first run; "
        "its opening comment lists them"
    )
    assert (tmp_path / "w" / ".git").is_dir()  # the workspace is the repository's top
    other = ".gitlab-ci.yml" if system == "github" else ".github"
    assert not (tmp_path / "w" / other).exists()


def test_init_without_ci_writes_none(tmp_path: Path, run_cli: RunCLI) -> None:
    assert run_cli("init", cwd=tmp_path).code == 0
    assert not (tmp_path / ".github").exists() and not (tmp_path / ".gitlab-ci.yml").exists()


def test_an_existing_pipeline_is_kept(tmp_path: Path, run_cli: RunCLI) -> None:
    write(tmp_path / ".gitlab-ci.yml", "test:\n  script: [make test]\n")
    write(tmp_path / ".github" / "workflows" / "ftctl.yml", "name: ours\n")
    for system in ("gitlab", "github"):
        result = run_cli("init", "--ci", system, cwd=tmp_path)
        assert result.code == 0
        assert (
            f"skipped {tmp_path}/{WRITTEN[system]}: it exists and is kept; "
            "move it aside for ftctl's, then merge the two"
        ) in result.err.splitlines()
        assert "needs secrets" not in result.err
    assert (tmp_path / ".gitlab-ci.yml").read_text() == "test:\n  script: [make test]\n"
    assert (tmp_path / ".github" / "workflows" / "ftctl.yml").read_text() == "name: ours\n"


def test_a_symlink_in_its_place_is_not_followed(tmp_path: Path, run_cli: RunCLI) -> None:
    target = tmp_path / "elsewhere.yml"
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / ".gitlab-ci.yml").symlink_to(target)
    result = run_cli("init", "w", "--ci", "gitlab", cwd=tmp_path)
    assert result.code == 0
    assert "skipped w/.gitlab-ci.yml: it exists and is kept" in result.err
    assert not target.exists()


def test_a_workspace_below_the_repository_top_gets_none(tmp_path: Path, run_cli: RunCLI) -> None:
    git(tmp_path, "init", "-q")
    result = run_cli("init", "team/finetunes", "--ci", "github", cwd=tmp_path)
    assert result.code == 0
    assert (
        "skipped team/finetunes/.github/workflows/ftctl.yml: the workspace is not the top of its "
        f"git repository ({tmp_path.resolve()}); copy the template there and run its steps in "
        "this directory"
    ) in result.err.splitlines()
    assert not (tmp_path / "team" / "finetunes" / ".github").exists()
    assert not (tmp_path / ".github").exists()


def test_a_path_that_cannot_be_written_is_one_line(tmp_path: Path, run_cli: RunCLI) -> None:
    write(tmp_path / ".github", "a file where the folder goes\n")
    result = run_cli("init", "--ci", "github", cwd=tmp_path)
    assert result.code == 1
    [line] = result.err.splitlines()[-1:]
    assert line.startswith(f"ftctl: error: cannot create {tmp_path}/.github/workflows/ftctl.yml: ")


def test_an_unknown_ci_system_is_a_usage_error(tmp_path: Path, run_cli: RunCLI) -> None:
    result = run_cli("init", "--ci", "jenkins", cwd=tmp_path)
    assert result.code == 1
    assert "'jenkins' is not one of 'github', 'gitlab'" in result.err
    assert not (tmp_path / "ftctl.yaml").exists()
