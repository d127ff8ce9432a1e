"""``ftctl plan``: which trainings must run, and why."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ftctl.cli.options import importing, json_option
from ftctl.errors import UsageError
from ftctl.render.terminal import echo


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
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Save the plan for `apply FILE`."
)
@json_option("Print the plan as JSON (docs/plan-json.md).")
@click.option(
    "--markdown", "as_markdown", is_flag=True, help="Print the plan as one pull-request comment."
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 2 with changes, 1 on error."
)
def plan(
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    out: Path | None,
    as_json: bool,
    as_markdown: bool,
    detailed_exitcode: bool,
) -> None:
    """Show which trainings must run, and why (offline, nothing is written but --out)."""
    import json

    with importing():
        from ftctl.plan.inputs import gather
        from ftctl.plan.planner import make_plan
        from ftctl.plan.saved import save_plan
        from ftctl.render.plan import markdown, terminal_lines, to_json
        from ftctl.workspace import discover_existing

    if as_json and as_markdown:
        raise UsageError("choose one of --json and --markdown")
    workspace = discover_existing(Path.cwd())
    inputs = gather(workspace)
    known = set(inputs.desired) | set(inputs.recorded)
    for name in (*targets, *replace):
        if name not in known:
            from ftctl.recipe.messages import did_you_mean

            raise UsageError(f"no recipe named '{name}'", hint=did_you_mean(name, sorted(known)))
    result = make_plan(
        inputs.desired,
        inputs.recorded,
        details=inputs.details,
        in_registry=inputs.in_registry,
        replace=replace,
        targets=targets,
    )
    inputs.save_memo()
    if out is not None:
        from ftctl.cache.stat import StatCache
        from ftctl.plan.inputs import input_digests

        stat = StatCache.of(workspace.root)
        save_plan(out, workspace, to_json(result), input_digests(workspace, stat))
        stat.save()
    if as_json:
        click.echo(json.dumps(to_json(result), indent=2, sort_keys=True))
    elif as_markdown:
        click.echo(markdown(result), nl=False)
    else:
        for text, markup in terminal_lines(result, styled=sys.stdout.isatty()):
            echo(text, markup=markup)
    if out is not None:
        echo(f"saved the plan to {out}; `ftctl apply {out}` applies exactly this plan", stderr=True)
    if detailed_exitcode and result.has_changes:
        raise SystemExit(2)
