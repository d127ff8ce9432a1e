"""``ftctl lock``: pin every moving input of each recipe."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ftctl.cli.options import importing
from ftctl.errors import UsageError
from ftctl.render.terminal import echo, info, warn

if TYPE_CHECKING:
    from ftctl.lock.resolve import LockReport
    from ftctl.workspace import Workspace


@click.command()
@click.argument("names", nargs=-1)
@click.option(
    "--update",
    is_flag=True,
    help="Re-resolve moving references (branches, tags) of NAMES, or of all.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 with a diff if any lock is stale or missing.",
)
@click.option(
    "--pins-from-env",
    is_flag=True,
    help="First write the pins file from the installed training packages.",
)
def lock(names: tuple[str, ...], update: bool, check: bool, pins_from_env: bool) -> None:
    """Pin every moving input of each recipe in lockfiles/<name>.lock."""
    if check and (update or pins_from_env):
        raise UsageError(
            "--check writes nothing; it cannot be combined with --update or --pins-from-env"
        )
    with importing():
        from ftctl.cache.parse import ParseCache
        from ftctl.cache.stat import StatCache
        from ftctl.lock.resolve import compute_locks, load_workspace_recipes
        from ftctl.workspace import discover_existing

    workspace = discover_existing(Path.cwd())
    if pins_from_env:
        _write_pins(workspace)
    parsed = ParseCache.of(workspace.root)
    recipes = load_workspace_recipes(workspace, parsed)
    cache = StatCache.of(workspace.root)
    report = compute_locks(
        workspace,
        recipes,
        names,
        update=(list(names) or True) if update else False,
        network=not check,
        cache=cache,
        parse_cache=parsed,
    )
    cache.save()
    parsed.save()
    for warning in report.warnings:
        warn(warning)
    if check:
        _check(report)
    else:
        _write(report)


def _write_pins(workspace: Workspace) -> None:
    from ftctl.files import write_atomic
    from ftctl.lock.pins import pins_from_environment

    write_atomic(workspace.root / workspace.config.pins, pins_from_environment())
    info(f"wrote {workspace.config.pins}")


def _check(report: LockReport) -> None:
    """``--check``: what is stale on stdout, exit 1 if anything is."""
    from ftctl.render.lock import render_check

    lines, stale = render_check(report)
    for line in lines:
        echo(line)
    if stale:
        raise SystemExit(1)


def _write(report: LockReport) -> None:
    """Write the locks that changed; what was written on stderr."""
    from ftctl.lock.resolve import write_locks
    from ftctl.render.lock import render_written

    written, removed = write_locks(report)
    for line in render_written(report, written, removed):
        info(line)
