"""The ftctl command line: parse, call the core, render, exit.

Exit codes: 0 ok, 1 any error (usage errors too), 2 changes present (only
with --detailed-exitcode). A user's mistake prints one ``ftctl: error:`` line,
never a traceback. Each command group lives in its own module; commands only
parse their arguments, call the core and render what it returns.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ftctl import __version__
from ftctl.cli import lock, manifests, plan, recipes, train
from ftctl.errors import FtctlError, UsageError
from ftctl.render.terminal import echo


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="ftctl", message="%(prog)s %(version)s")
@click.option(
    "-C",
    "directory",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run as if ftctl was started in DIR.",
)
def cli(directory: Path | None) -> None:
    """Terraform for fine-tuning: lock, plan, apply and verify LLM fine-tunes."""
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
    """Console-script entry point."""
    try:
        cli.main(prog_name="ftctl", standalone_mode=False)
    except FtctlError as exc:
        for problem in exc.problems:
            echo(f"ftctl: error: {problem.render()}", stderr=True)
        sys.exit(1)
    except click.exceptions.Abort:
        echo("ftctl: aborted", stderr=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1)
    except KeyboardInterrupt:
        echo("ftctl: interrupted", stderr=True)
        sys.exit(130)
    except BrokenPipeError:
        # Output piped into `head`: stop quietly.
        sys.stderr.close()
        sys.exit(0)
    except OSError as exc:
        # The environment, not ftctl: permission denied, disk full, a vanished file.
        where = f"{exc.filename}: " if exc.filename else ""
        echo(f"ftctl: error: {where}{exc.strerror or exc}", stderr=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
