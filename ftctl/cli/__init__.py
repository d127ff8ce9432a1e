"""The ftctl command line: parse, call the core, render, exit.

Exit codes: 0 ok, 1 any error (usage errors too), 2 changes present (only
with --detailed-exitcode), 130 interrupted (Ctrl-C). A user's mistake prints
one ``ftctl: error:`` line, never a traceback; so does a bug, naming itself
an internal error. ``--verbose`` or ``FTCTL_DEBUG=1`` adds the traceback, for
bug reports. Each command group lives in its own module; commands only parse
their arguments, call the core and render what it returns.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from ftctl import __version__
from ftctl.cli import lock, manifests, plan, recipes, train
from ftctl.errors import INTERRUPTED, FtctlError, UsageError, one_line
from ftctl.render.terminal import error, info


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


class _Group(click.Group):
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


for command in (
    recipes.validate,
    lock.lock,
    plan.plan,
    train.train,
    train.preprocess,
    manifests.keygen,
    manifests.attest,
    manifests.verify,
    manifests.show,
    manifests.log_command,
    manifests.audit_command,
    recipes.schema,
    recipes.init,
):
    cli.add_command(command)


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
