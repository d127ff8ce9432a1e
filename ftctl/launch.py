"""Start the training worker in its own process, with the determinism environment set first.

PYTHONHASHSEED and CUBLAS_WORKSPACE_CONFIG only work if they are set before
the interpreter and torch start (REFERENCE section 5), hence a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ftctl.atomic import write_atomic
from ftctl.errors import FtctlError
from ftctl.recipe import LoadedRecipe

DETERMINISM_ENV = {
    "PYTHONHASHSEED": "0",
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def default_output(root: Path, loaded: LoadedRecipe) -> Path:
    recipe = loaded.recipe
    if "output_dir" in recipe.model_fields_set:
        path = Path(recipe.output_dir).expanduser()
        return path if path.is_absolute() else root / path
    return root / "outputs" / loaded.name


def run_worker(root: Path, loaded: LoadedRecipe, output: Path, fingerprint: str | None = None) -> int:
    """Train ``loaded`` into ``output`` (a new or empty directory); returns the worker's exit code."""
    from ftctl.worker.spec import RunSpec

    output = output.resolve()
    if output.exists() and any(output.iterdir()):
        raise FtctlError(f"{output} is not empty", hint="choose another --output, or remove it: a run directory holds one run")
    output.mkdir(parents=True, exist_ok=True)
    spec = RunSpec(recipe_path=str(loaded.path.resolve()), name=loaded.name, workspace=str(root.resolve()),
                   output_dir=str(output), fingerprint=fingerprint)
    spec_path = output / "spec.json"
    write_atomic(spec_path, spec.model_dump_json(indent=2) + "\n")
    env = {**os.environ, **DETERMINISM_ENV}
    proc = subprocess.run([sys.executable, "-m", "ftctl.worker", str(spec_path)], env=env, check=False)
    spec_path.unlink(missing_ok=True)  # not part of the run directory's contract
    return proc.returncode
