"""``ftctl plan``: which trainings must run, and why."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ftctl.cli.options import importing, json_option, trust_ref_option
from ftctl.errors import UsageError
from ftctl.render.terminal import echo, info, use_styles, warn

if TYPE_CHECKING:
    from ftctl.plan.planner import Plan


@click.command()
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="NAME",
    help="Plan only NAME and the recipes built on it.",
)
@click.option(
    "--replace",
    "replace",
    multiple=True,
    metavar="NAME",
    help="Retrain NAME even if nothing changed.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan with the digests of what it was made from (docs/plan.md).",
)
@json_option("Print the plan as JSON (docs/plan-json.md).")
@click.option(
    "--markdown", "as_markdown", is_flag=True, help="Print the plan as one pull-request comment."
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 2 with changes, 1 on error."
)
@trust_ref_option()
def plan(
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    out: Path | None,
    as_json: bool,
    as_markdown: bool,
    detailed_exitcode: bool,
    trust_ref: str | None,
) -> None:
    """Show which trainings must run, and why (offline, nothing is written but --out)."""
    with importing():
        from ftctl.plan.inputs import plan_workspace
        from ftctl.plan.saved import save_plan
        from ftctl.provenance.trust import trust_of
        from ftctl.render.plan import to_json
        from ftctl.workspace import discover_existing

    if as_json and as_markdown:
        raise UsageError("choose one of --json and --markdown")
    workspace = discover_existing(Path.cwd())
    result = plan_workspace(
        workspace, trust_of(workspace, trust_ref), targets=targets, replace=replace
    )
    if out is not None:
        from ftctl.cache.stat import StatCache
        from ftctl.plan.inputs import input_digests

        stat = StatCache.of(workspace.root)
        save_plan(
            out,
            workspace,
            to_json(result),
            input_digests(workspace, stat),
            targets=targets,
            replace=replace,
        )
        stat.save()
    _show(result, as_json=as_json, as_markdown=as_markdown)
    if out is not None:
        info(f"saved the plan to {out}, with the digests of everything it was made from")
    if detailed_exitcode and result.has_changes:
        raise SystemExit(2)


def _show(result: Plan, *, as_json: bool, as_markdown: bool) -> None:
    """The plan on stdout; on a terminal its warnings go to stderr, in JSON and Markdown they are part of it."""
    from ftctl.render.plan import json_text, markdown, terminal_lines

    if as_json:
        echo(json_text(result))
    elif as_markdown:
        echo(markdown(result), nl=False)
    else:
        for warning in result.warnings:
            warn(warning)
        for text, markup in terminal_lines(result, styled=use_styles()):
            echo(text, markup=markup)
