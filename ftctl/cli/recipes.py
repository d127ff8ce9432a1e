"""Commands on recipes: validate, schema, init."""

from __future__ import annotations

from pathlib import Path

import click

from ftctl.cli.options import importing, render_problem
from ftctl.errors import UsageError
from ftctl.render.terminal import echo, info, warn


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check recipes (default: every recipe of the workspace) and report every problem."""
    with importing():
        from ftctl.recipe.check import check_paths

    report = check_paths(list(paths), Path.cwd())
    for problem in report.problems:
        render_problem(problem)
    for warning in report.warnings:
        warn(warning.render())
    if report.problems:
        count = len(report.problems)
        info(
            f"{count} problem{'s' if count != 1 else ''} in {report.failed_files} of "
            f"{len(report.checked)} file{'s' if len(report.checked) != 1 else ''}"
        )
        raise SystemExit(1)
    if not report.checked:
        raise UsageError("no recipes found", hint="add recipes/<name>.yaml or pass paths")
    n = len(report.recipes)
    echo(
        f"{n} recipe{'s' if n != 1 else ''} valid",
        markup=f"[green]{n} recipe{'s' if n != 1 else ''} valid[/green]",
    )


@click.command()
@click.argument("kind", type=click.Choice(["recipe", "workspace"]), default="recipe")
def schema(kind: str) -> None:
    """Print the JSON Schema of a recipe (or of ftctl.yaml), for editors."""
    with importing():
        from ftctl.recipe.schema import json_schema

    echo(json_schema(kind))


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--ci",
    type=click.Choice(["github", "gitlab"]),
    help="Also write the CI pipeline: plan in pull requests, apply on main (.github/workflows/ftctl.yml or .gitlab-ci.yml).",
)
def init(directory: Path | None, ci: str | None) -> None:
    """Scaffold a workspace in DIRECTORY (default: here), in a git repository; existing files are kept."""
    from ftctl.scaffold import CI_FILES, scaffold

    target = directory if directory is not None else Path.cwd()
    ci_file = target / CI_FILES[ci][0] if ci is not None else None
    ci_created = False
    for step in scaffold(target, ci=ci):
        reason = f": {step.reason}" if step.reason else ""
        info(f"{step.action:<7} {step.path}{reason}")
        ci_created = ci_created or (step.path == ci_file and step.action == "created")
    info(f"Initialized ftctl workspace in {target}. Next: ftctl validate")
    if ci_created:
        info(
            f"{ci_file} needs secrets and a GPU runner before its first run; its opening comment lists them"
        )
