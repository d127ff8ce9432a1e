"""The corpus of malformed recipes: one clear line per problem, exit 1, no traceback.

Each file in tests/bad_recipes/ ends with ``# expect: LINE:COL: message`` lines,
exactly the lines `ftctl validate` must print for it (after the file name);
``# validated-with: OTHER.yaml`` names files that must be checked alongside.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, RunCLI

CORPUS = REPO / "tests" / "bad_recipes"
FILES = sorted(CORPUS.glob("*.yaml"))


def tagged(path: Path, tag: str) -> list[str]:
    """The text after ``# TAG:`` on each such line of a corpus file."""
    text = path.read_bytes().decode("latin-1")  # one corpus file is deliberately not UTF-8
    prefix = f"# {tag}: "
    return [line[len(prefix) :] for line in text.splitlines() if line.startswith(prefix)]


def test_corpus_is_large_enough() -> None:
    with_problems = [f for f in FILES if tagged(f, "expect")]
    assert len(with_problems) >= 40


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_each_file_reports_exactly_its_problems(path: Path, run_cli: RunCLI) -> None:
    companions = [CORPUS / name for name in tagged(path, "validated-with")]
    shown = f"tests/bad_recipes/{path.name}"
    result = run_cli("validate", shown, *(str(c.relative_to(REPO)) for c in companions), cwd=REPO)
    expected = [f"{shown}:{line}" for line in tagged(path, "expect")]
    mine = [line for line in result.lines if line.startswith(f"{shown}:")]
    assert mine == expected
    if expected:
        assert result.code == 1
        assert "problem" in result.err  # the summary line
    for line in mine:
        assert line.count("\n") == 0 and len(line.split(":")) >= 4  # file:line:col: message


def test_whole_corpus_through_the_console_script() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ftctl", "validate", "tests/bad_recipes"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    expected = sorted(
        f"tests/bad_recipes/{f.name}:{line}" for f in FILES for line in tagged(f, "expect")
    )
    assert sorted(proc.stdout.splitlines()) == expected
    assert proc.stderr.strip().endswith(f"of {len(FILES)} files")


def test_oversized_recipe(tmp_path: Path, run_cli: RunCLI) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("base_model: org/m\n" + "# padding\n" * 120_000, encoding="utf-8")
    result = run_cli("validate", str(big), cwd=tmp_path)
    assert result.code == 1
    assert result.lines == [
        "big.yaml: file is larger than 1024 KiB; a recipe is a small config; keep data in datasets, not in YAML"
    ]


def test_nothing_modified(tmp_path: Path, run_cli: RunCLI) -> None:
    (tmp_path / ".git").mkdir()
    bad = tmp_path / "recipes" / "typo.yaml"
    bad.parent.mkdir()
    bad.write_bytes((CORPUS / "many-problems.yaml").read_bytes())
    before = sorted(p for p in tmp_path.rglob("*"))
    result = run_cli("validate", cwd=tmp_path)
    assert result.code == 1
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert bad.read_bytes() == (CORPUS / "many-problems.yaml").read_bytes()
