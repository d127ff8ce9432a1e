"""The ftctl command line: parse, call the core, render, exit.

Exit codes: 0 ok, 1 any error (usage errors too), 2 changes present (only
with --detailed-exitcode), 130 interrupted (Ctrl-C). A user's mistake prints
one ``ftctl: error:`` line, never a traceback; so does a bug, naming itself
an internal error. ``--verbose`` or ``FTCTL_DEBUG=1`` adds the traceback, for
bug reports. Each command group lives in its own module, imported only when
one of its commands runs (:data:`COMMANDS`); commands only parse their
arguments, call the core and render what it returns.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from ftctl import __version__
from ftctl.errors import INTERRUPTED, FtctlError, UsageError, one_line
from ftctl.render.terminal import error, info

# Every command: name -> (module, attribute, the first sentence of its help, which `ftctl --help`
# lists). A command's module is imported only when the command runs or prints its own help, so
# `ftctl plan` imports ftctl.cli.plan and no other command (tests/cli/test_registry.py keeps the
# sentences equal to the commands' own).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": (
        "ftctl.cli.recipes",
        "validate",
        "Check recipes (default: every recipe of the workspace) and report every problem.",
    ),
    "lock": (
        "ftctl.cli.lock",
        "lock",
        "Pin every moving input of each recipe in lockfiles/<name>.lock.",
    ),
    "plan": (
        "ftctl.cli.plan",
        "plan",
        "Show which trainings must run, and why (offline, nothing is written but --out).",
    ),
    "apply": (
        "ftctl.cli.apply",
        "apply",
        "Train, restore, publish and record what the plan says (docs/apply.md).",
    ),
    "train": (
        "ftctl.cli.train",
        "train",
        "Train a recipe directly, like `axolotl train` (no lock, no manifest; see `ftctl attest`).",
    ),
    "preprocess": (
        "ftctl.cli.train",
        "preprocess",
        "Show how a recipe's datasets are tokenized and masked, as the worker will train them.",
    ),
    "keygen": (
        "ftctl.cli.manifests",
        "keygen",
        "Make an Ed25519 signing key: private key outside the repo, public key in keys/.",
    ),
    "attest": (
        "ftctl.cli.manifests",
        "attest",
        "Sign the manifest of a finished run directory and write it under manifests/.",
    ),
    "verify": (
        "ftctl.cli.manifests",
        "verify",
        "Verify a manifest's signature, trust and shape (and with --artifacts, the files).",
    ),
    "show": (
        "ftctl.cli.manifests",
        "show",
        "Show what a (verified) manifest records, or a plan saved by `ftctl plan --out`.",
    ),
    "log": (
        "ftctl.cli.manifests",
        "log_command",
        "A recipe's run history: when, fingerprint, why it was retrained, metrics.",
    ),
    "audit": (
        "ftctl.cli.manifests",
        "audit_command",
        "Check every manifest: signature, trust, and the recipe and lock at the recorded commit.",
    ),
    "force-unlock": (
        "ftctl.cli.state",
        "force_unlock",
        'Remove the state lock LOCK_ID (the id its "state is locked" error names).',
    ),
    "bundle": (
        "ftctl.cli.replay",
        "bundle",
        "Bundle a recorded run with every input it trained on, to replay it with no network.",
    ),
    "replay": (
        "ftctl.cli.replay",
        "replay",
        "Train a recorded run again from its bundle, offline, and say whether it reproduced.",
    ),
    "schema": (
        "ftctl.cli.recipes",
        "schema",
        "Print the JSON Schema of a recipe (or of ftctl.yaml), for editors.",
    ),
    "init": (
        "ftctl.cli.recipes",
        "init",
        "Scaffold a workspace in DIRECTORY (default: here), in a git repository; "
        "existing files are kept.",
    ),
}


class _Interrupted(BaseException):
    """Ctrl-C inside a command, carried past click (which would make it an "Abort")."""


class _Debug:
    """Whether errors print their traceback: --verbose or FTCTL_DEBUG, set per run."""

    on = False


def _debug_from_env() -> bool:
    return os.environ.get("FTCTL_DEBUG", "") not in ("", "0")


def _set_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        _Debug.on = True


class _Listed(click.Command):
    """A command not imported yet: its name and help sentence, all `ftctl --help` shows of it."""


def load_command(name: str) -> click.Command | None:
    """The command ``name`` of :data:`COMMANDS`, imported; None while its module does not exist."""
    module_name, attribute, _ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the module exists and imports something missing: a bug to report
        return None
    command = getattr(module, attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{module_name}.{attribute} is not a click command")
    return command


class _Group(click.Group):
    _listing = False  # while `--help` lists the commands: from COMMANDS, importing none

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if isinstance(command, _Listed) and not self._listing:
            command = load_command(cmd_name)
            if command is None:
                del self.commands[cmd_name]
            else:
                self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise _Interrupted() from exc


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="ftctl", message="%(prog)s %(version)s")
@click.option(
    "--verbose",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_set_verbose,
    help="On an error, also print its traceback (for bug reports; or set FTCTL_DEBUG=1).",
)
@click.option(
    "-C",
    "directory",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run as if ftctl was started in DIR.",
)
def cli(directory: Path | None) -> None:
    """Terraform for fine-tuning: lock, plan, train and verify LLM fine-tunes."""
    if directory is not None:
        try:
            os.chdir(directory)
        except OSError as exc:
            raise UsageError(f"-C {directory}: {exc.strerror or exc}") from None


for name, (_, _, sentence) in COMMANDS.items():
    cli.add_command(_Listed(name, help=sentence))


def main() -> None:
    """Console-script entry point: run, and turn whatever stopped the run into an exit code."""
    _Debug.on = _debug_from_env()
    try:
        cli.main(prog_name="ftctl", standalone_mode=False)
    except SystemExit:
        raise
    except BrokenPipeError:
        # Output piped into `head`: stop quietly.
        sys.stderr.close()
        sys.exit(0)
    except (Exception, KeyboardInterrupt, _Interrupted) as exc:
        code = report(exc)
        if _Debug.on and not isinstance(exc, click.ClickException):
            import traceback  # only for a bug report: not worth its import at every start

            traceback.print_exception(exc, file=sys.stderr)
        sys.exit(code)


def report(exc: BaseException) -> int:
    """Print what stopped the run as one line per problem on stderr; the exit code."""
    if _is_interrupt(exc):
        if sys.stderr.isatty():
            info("")  # the terminal's ^C echo ends the current line
        info("ftctl: interrupted")
        return INTERRUPTED
    if isinstance(exc, FtctlError):
        for problem in exc.problems:
            error(problem.render())
    elif isinstance(exc, (click.ClickException, click.exceptions.Abort)):
        _report_click(exc)
    elif isinstance(exc, OSError):
        # The environment, not ftctl: permission denied, disk full, a vanished file.
        where = f"{exc.filename}: " if exc.filename else ""
        error(f"{where}{exc.strerror or exc}")
    else:
        text = one_line(str(exc))
        what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        error(f"internal error: {what}; rerun with --verbose and report it")
    return 1


def _report_click(exc: click.ClickException | click.exceptions.Abort) -> None:
    if isinstance(exc, click.exceptions.Abort):
        info("ftctl: aborted")
    elif isinstance(exc, click.exceptions.NoArgsIsHelpError):  # plain `ftctl`: the help
        exc.show()
    elif isinstance(exc, click.UsageError):  # unknown command or option, missing or bad value
        where = exc.ctx.command_path if exc.ctx is not None else "ftctl"
        error(f"{exc.format_message().rstrip('.')}; see `{where} --help`")
    else:
        error(exc.format_message())


def _is_interrupt(exc: BaseException) -> bool:
    if isinstance(exc, (KeyboardInterrupt, _Interrupted)):
        return True
    # Ctrl-C while click parses the command line reaches us as an Abort.
    return isinstance(exc, click.exceptions.Abort) and isinstance(exc.__cause__, KeyboardInterrupt)


if __name__ == "__main__":
    main()
