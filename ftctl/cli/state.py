"""``ftctl force-unlock LOCK_ID``: remove the state lock an apply that died left behind."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ftctl.cli.options import importing
from ftctl.errors import FtctlError, UsageError
from ftctl.render.terminal import echo, info


@click.command("force-unlock")
@click.argument("lock_id", metavar="LOCK_ID")
@click.option("--force", is_flag=True, help="Remove it without asking for confirmation.")
def force_unlock(lock_id: str, force: bool) -> None:
    """Remove the state lock LOCK_ID (the id its "state is locked" error names).

    Only for a lock whose apply is dead: ftctl takes over a dead holder's lock on the same
    host by itself, never one from another host. Asks first, unless --force.
    """
    with importing():
        from ftctl.apply import statelock
        from ftctl.workspace import discover

    root = discover(Path.cwd()).root
    held = statelock.lock_to_unlock(root, lock_id)
    if not force:
        if not sys.stdin.isatty():
            raise UsageError(
                "force-unlock asks for confirmation, and stdin is not a terminal",
                hint="pass --force to remove the lock without asking",
            )
        alive = statelock.holder_alive(held)
        info(f"the state lock is held by {held.describe()}")
        if alive:
            info(f"process {held.pid} is still running on this host")
        elif alive is None:
            info(f"ftctl cannot tell whether it still runs on {held.host}: check there first")
        if not click.confirm("Remove it?", default=False, err=True):
            raise FtctlError("force-unlock cancelled; the state lock stays")
    removed = statelock.force_unlock(root, lock_id)
    echo(f"removed the state lock {removed.id}, held by {removed.describe()}")
