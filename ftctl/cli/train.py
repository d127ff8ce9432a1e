"""``ftctl train`` and ``ftctl preprocess``: the worker, run directly like ``axolotl train``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ftctl.errors import INTERRUPTED, UsageError
from ftctl.render.terminal import echo

if TYPE_CHECKING:
    from ftctl.workspace import Workspace


@click.command()
@click.argument("recipe")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory to write (default: outputs/NAME).",
)
def train(recipe: str, output: Path | None) -> None:
    """Train a recipe directly, like `axolotl train` (no lock, no manifest; see `ftctl attest`).

    Exit codes: 0 trained, 1 an error, 130 interrupted (Ctrl-C); an unfinished run leaves no run directory.
    """
    from ftctl.launch import Worker, train_directly
    from ftctl.workspace import discover

    with Worker.start() as worker:  # the training stack imports while the recipe is checked
        workspace = discover(Path.cwd())
        path = _recipe_path(workspace, recipe)
        target, code = train_directly(workspace, path, output, worker)
    if code == INTERRUPTED:
        raise KeyboardInterrupt  # the worker stopped on Ctrl-C: reported as any command's is
    if code != 0:
        raise SystemExit(code)  # the worker has said why
    echo(str(target))


@click.command()
@click.argument("recipe")
@click.option(
    "--debug",
    is_flag=True,
    help="Print every token of the first rows with its label (-100 = not trained).",
)
@click.option("--rows", default=3, show_default=True, help="How many rows to print.")
def preprocess(recipe: str, debug: bool, rows: int) -> None:
    """Show how a recipe's datasets are tokenized and masked, as the worker will train them."""
    from ftctl.launch import preprocess as run_preprocess
    from ftctl.workspace import discover

    if not debug:
        raise UsageError("preprocess only prints for now", hint="add --debug")
    workspace = discover(Path.cwd())
    lines, code = run_preprocess(_recipe_path(workspace, recipe), workspace.root, rows)
    if code == INTERRUPTED:
        raise KeyboardInterrupt  # reported as any command's Ctrl-C
    if code != 0:
        raise SystemExit(code)  # the worker has said why
    for line in lines:
        echo(line)


def _recipe_path(workspace: Workspace, recipe: str) -> Path:
    """A recipe file given as a path, or found by name in the workspace."""
    path = Path(recipe)
    if path.is_file():
        return path
    candidates = [p for p in workspace.recipe_paths() if p.stem == recipe]
    if not candidates:
        raise UsageError(
            f"no recipe file or recipe named '{recipe}'",
            hint="give recipes/NAME.yaml or a recipe name",
        )
    return candidates[0]
