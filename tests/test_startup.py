"""The light commands never import the training stack (DEVELOPERS: startup)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import ftctl
from tests.conftest import REPO

HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "dvc", "accelerate")

PROBE = """
import json, sys
args, watched = json.loads(sys.argv[1]), json.loads(sys.argv[2])
from ftctl.cli import main
sys.argv = ["ftctl", *args]
try:
    main()
except SystemExit:
    pass
heavy = [m for m in watched if m in sys.modules]
sys.stderr.write("HEAVY=" + json.dumps(heavy) + "\\n")
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["validate"],
        ["validate", "examples"],
        ["validate", "tests/bad_recipes"],
        ["schema"],
        ["lock", "--check"],
        ["verify", "missing.intoto.json"],
        ["audit"],
        ["plan"],
    ],
    ids=lambda a: " ".join(a),
)
def test_light_commands_import_no_training_stack(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    marker = [line for line in proc.stderr.splitlines() if line.startswith("HEAVY=")]
    assert marker, proc.stderr
    assert json.loads(marker[0][len("HEAVY=") :]) == []


MODULES = sorted(
    m.name for m in pkgutil.walk_packages(ftctl.__path__, "ftctl.") if m.name != "ftctl.__main__"
)


@pytest.mark.slow
def test_every_module_imports_alone() -> None:
    for name in MODULES:
        proc = subprocess.run(
            [sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, (name, proc.stderr[-2000:])


def test_package_is_typed() -> None:
    assert (Path(ftctl.__file__).parent / "py.typed").is_file()
