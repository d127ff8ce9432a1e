"""The package's import rules, checked on every import statement (lazy ones inside functions too).

- Only the worker imports the training stack, and nothing outside the worker imports the worker.
- Only the wrapper modules import the libraries whose API moves: ``_hf`` (huggingface_hub),
  ``_dvc`` (dvc and dvc-data), ``_git`` (runs git).
- The core never imports the CLI or the renderers; only the CLI, the renderers and the worker
  (a process entry point of its own) print.
- No module of the package is over 500 lines, and the top level stays small.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "ftctl"
TRAINING_STACK = {
    "torch", "transformers", "trl", "peft", "datasets", "accelerate", "bitsandbytes", "deepspeed", "flash_attn",
    "safetensors", "tokenizers",
}  # fmt: skip
WRAPPED = {
    "huggingface_hub": "ftctl._hf",
    "dvc": "ftctl._dvc",
    "dvc_data": "ftctl._dvc",
    "dvc_objects": "ftctl._dvc",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` in the file names (absolute)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def offenders(allowed: set[str] | None, forbidden: str, *, inside: str | None = None) -> list[str]:
    out = []
    for name, path in MODULES.items():
        if inside is not None and within(name, inside):
            continue
        if allowed is not None and any(within(name, a) for a in allowed):
            continue
        if any(within(i, forbidden) for i in imports(path)):
            out.append(name)
    return out


@pytest.mark.parametrize("library", sorted(TRAINING_STACK))
def test_only_the_worker_imports_the_training_stack(library: str) -> None:
    assert offenders(None, library, inside="ftctl.worker") == []


def test_nothing_outside_the_worker_imports_it() -> None:
    assert offenders(None, "ftctl.worker", inside="ftctl.worker") == []


@pytest.mark.parametrize("library", sorted(WRAPPED))
def test_only_the_wrappers_import_moving_libraries(library: str) -> None:
    assert offenders({WRAPPED[library]}, library) == []


def test_only_git_wrapper_runs_git() -> None:
    running = [
        name for name, path in MODULES.items()
        if name != "ftctl._git" and any(s in path.read_text(encoding="utf-8") for s in ('["git"', "['git'"))
    ]  # fmt: skip
    assert running == []


def test_the_core_never_imports_the_cli() -> None:
    assert offenders({"ftctl.__main__"}, "ftctl.cli", inside="ftctl.cli") == []


def test_the_core_never_imports_the_renderers() -> None:
    assert offenders({"ftctl.cli", "ftctl.worker"}, "ftctl.render", inside="ftctl.render") == []


def test_the_core_does_not_print() -> None:
    printing = []
    for name, path in MODULES.items():
        if any(within(name, p) for p in ("ftctl.cli", "ftctl.render", "ftctl.worker")):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [
            n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        ]
        if any(c.func.id == "print" for c in calls if isinstance(c.func, ast.Name)):
            printing.append(name)
    assert printing == []


def test_modules_stay_small() -> None:
    sizes = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()
    }
    assert {name: n for name, n in sizes.items() if n > 500} == {}


def test_the_top_level_stays_small() -> None:
    top = [p for p in PACKAGE.glob("*.py")]
    assert len(top) <= 16, sorted(p.name for p in top)
