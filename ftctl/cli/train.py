"""``ftctl train`` and ``ftctl preprocess``: the worker, run directly like ``axolotl train``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ftctl.errors import FtctlError, UsageError
from ftctl.render.terminal import echo

if TYPE_CHECKING:
    from ftctl.launch import Worker
    from ftctl.workspace import Workspace


@click.command()
@click.argument("recipe")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory to write (default: outputs/NAME).",
)
def train(recipe: str, output: Path | None) -> None:
    """Train a recipe directly, like `axolotl train` (no lock, no manifest; see `ftctl attest`)."""
    from ftctl.launch import Worker

    with Worker.start() as worker:  # the training stack imports while the recipe is checked
        target = _train(recipe, output, worker)
    echo(str(target))


def _train(recipe: str, output: Path | None, worker: Worker) -> Path:
    from ftctl.launch import default_output, run_worker
    from ftctl.recipe.load import load_recipe
    from ftctl.recipe.refs import parse_model_ref
    from ftctl.workspace import discover
    from ftctl.yamlio import display_path

    workspace = discover(Path.cwd())
    loaded = load_recipe(_recipe_path(workspace, recipe))
    target = output if output is not None else default_output(workspace.root, loaded)
    base_dir = None
    ref = parse_model_ref(loaded.recipe.base_model)
    if ref.kind == "recipe":  # like a chain of `axolotl train` runs: the upstream's default output
        upstream = load_recipe(_recipe_path(workspace, ref.value))
        base_dir = default_output(workspace.root, upstream) / "adapter"
        if not base_dir.is_dir():
            raise FtctlError(
                f"{loaded.shown}: base_model {loaded.recipe.base_model}: {display_path(base_dir)} does not exist",
                hint=f"train it first: ftctl train {ref.value}",
            )
    code = run_worker(workspace.root, loaded, target, base_model_dir=base_dir, worker=worker)
    if code != 0:
        raise SystemExit(code)
    return target


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
    from ftctl.worker.preprocess import preprocess as run_preprocess
    from ftctl.workspace import discover

    if not debug:
        raise UsageError("preprocess only prints for now", hint="add --debug")
    workspace = discover(Path.cwd())
    path = _recipe_path(workspace, recipe)
    for line in run_preprocess(path, workspace.root, rows):
        click.echo(line)


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
