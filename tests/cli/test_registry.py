"""The command table: `ftctl --help` lists every command without importing it, a command imports its own module only, and a missing module breaks no other command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from ftctl.cli import COMMANDS, _Listed, cli, load_command
from tests.conftest import REPO, RunCLI

PROBE = """
import json, sys
from ftctl.cli import main
sys.argv = ["ftctl", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
sys.stderr.write("CLI=" + json.dumps(sorted(m for m in sys.modules if m.startswith("ftctl.cli."))) + "\\n")
"""


def cli_modules(args: list[str]) -> list[str]:
    """The ftctl.cli.* modules a run of ``ftctl ARGS`` imported (in a fresh process)."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    marker = [line for line in proc.stderr.splitlines() if line.startswith("CLI=")]
    assert marker, proc.stderr
    return list(json.loads(marker[0][len("CLI=") :]))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_table_says_what_the_command_says(name: str) -> None:
    command = load_command(name)
    assert command is not None, f"{COMMANDS[name][0]} does not exist"
    assert command.name == name
    listed = _Listed(name, help=COMMANDS[name][2])
    # click shortens the help to fit the terminal: at every width, the table's sentence
    # must shorten to what the command's own help does.
    for limit in range(1, 160):
        assert listed.get_short_help_str(limit) == command.get_short_help_str(limit), limit


def test_help_lists_what_the_commands_would(run_cli: RunCLI) -> None:
    listed = run_cli("--help")
    commands: dict[str, click.Command] = {}
    for name in COMMANDS:
        command = load_command(name)
        assert command is not None
        commands[name] = command
    real = click.Group(name="ftctl", commands=commands, help=cli.help, params=cli.params)
    with click.Context(real, info_name="ftctl", **cli.context_settings) as ctx:
        expected = real.get_help(ctx)
    assert listed.code == 0
    assert listed.out == expected + "\n"


def test_listing_the_commands_imports_none() -> None:
    assert cli_modules(["--help"]) == []
    assert cli_modules(["--version"]) == []


def test_a_command_imports_its_own_module_only() -> None:
    assert cli_modules(["plan", "--help"]) == ["ftctl.cli.options", "ftctl.cli.plan"]
    assert cli_modules(["schema"]) == ["ftctl.cli.options", "ftctl.cli.recipes"]


def test_a_missing_module_breaks_no_other_command(
    run_cli: RunCLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(COMMANDS, "ghost", ("ftctl.cli.ghost", "ghost", "Not written yet."))
    monkeypatch.setitem(cli.commands, "ghost", _Listed("ghost", help="Not written yet."))
    listed = [line.split() for line in run_cli("--help").out.splitlines()]
    assert ["ghost", "Not", "written", "yet."] in listed
    assert run_cli("schema").code == 0
    result = run_cli("ghost")
    assert result.code == 1
    assert result.err.startswith("ftctl: error: No such command 'ghost'")


def test_only_a_missing_module_is_a_missing_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "ftctl_test_broken.py").write_text("import ftctl_test_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(COMMANDS, "absent", ("ftctl_test_absent", "absent", "Absent."))
    assert load_command("absent") is None
    # A module that exists but cannot import is a bug to report, not a command to hide.
    monkeypatch.setitem(COMMANDS, "broken", ("ftctl_test_broken", "broken", "Broken."))
    with pytest.raises(ModuleNotFoundError, match="ftctl_test_no_such_dependency"):
        load_command("broken")
    monkeypatch.setitem(COMMANDS, "wrong", ("ftctl.cli.recipes", "click", "Wrong."))
    with pytest.raises(TypeError, match="not a click command"):
        load_command("wrong")
