"""Start the worker in its own process (training; preprocess's tokenizing), determinism environment first.

PYTHONHASHSEED and CUBLAS_WORKSPACE_CONFIG only work if they are set before
the interpreter and torch start, hence a subprocess. Ctrl-C stops the worker
(it gets the terminal's SIGINT too) and is waited for; a run directory left
without result.json, by an interruption or a failure, is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ftctl.errors import INTERRUPTED, FtctlError
from ftctl.files import write_atomic
from ftctl.recipe.load import LoadedRecipe

if TYPE_CHECKING:
    from ftctl.runspec import RunSpec
    from ftctl.workspace import Workspace


DETERMINISM_ENV = {
    "PYTHONHASHSEED": "0",
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


# The worker runs only installed code: -P keeps the working directory off sys.path (and a spec
# or run directory is its cwd), and no PYTHONPATH is passed on, so nothing in a workspace, a
# pull request's files included, can shadow ftctl or a dependency.
SAFE_PYTHON = (sys.executable, "-P")
_UNSAFE_ENV = ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONINSPECT")


def worker_env() -> dict[str, str]:
    """The worker's environment: ftctl's, less what could point the interpreter at other code."""
    env = {k: v for k, v in os.environ.items() if k not in _UNSAFE_ENV}
    return {**env, **DETERMINISM_ENV, "PYTHONSAFEPATH": "1"}  # children (accelerate) too


def default_output(root: Path, loaded: LoadedRecipe) -> Path:
    """The recipe's ``output_dir``, read as the confinement check reads it, else outputs/NAME."""
    from ftctl.errors import ConfigError
    from ftctl.workspace import resolve_path, text_refusal

    recipe = loaded.recipe
    if "output_dir" not in recipe.model_fields_set:
        return root / "outputs" / loaded.name
    refused = text_refusal(recipe.output_dir)  # NUL, control characters: located, as validate does
    if refused is not None:
        key = ("output_dir",)
        message, hint = refused
        raise ConfigError(message, location=loaded.document.location(key), key_path=key, hint=hint)
    # resolve_path, not Path.expanduser: that raises RuntimeError on an unknown ~user.
    return resolve_path(root, recipe.output_dir)


def train_directly(
    workspace: Workspace, recipe_path: Path, output: Path | None, worker: Worker | None = None
) -> tuple[Path, int]:
    """`ftctl train`: the recipe trained into ``output`` (default: its own); (run directory, exit code)."""
    from ftctl.recipe.load import load_recipe

    loaded = load_recipe(recipe_path)
    target = output if output is not None else default_output(workspace.root, loaded)
    base_dir = upstream_output(workspace, loaded)
    lock = fresh_lock(workspace, loaded)
    code = run_worker(
        workspace.root, loaded, target, lock=lock, base_model_dir=base_dir, worker=worker
    )
    return target, code


def fresh_lock(workspace: Workspace, loaded: LoadedRecipe) -> Path | None:
    """The recipe's lock when it is fresh (computed offline, as `lock --check` does), else None.

    With it the worker verifies every input against the lock and the run records the
    fingerprint it trained; without it the run is recorded as unlocked. A DVC-tracked
    dataset that differs from its record stops the training here, with lock's own message.
    """
    from ftctl.lock.resolve import compute_locks, load_workspace_recipes

    recipes = load_workspace_recipes(workspace)
    if loaded.name not in recipes or recipes[loaded.name].path.resolve() != loaded.path.resolve():
        return None  # a recipe file outside the workspace's recipes: nothing to lock it against
    outcome = compute_locks(workspace, recipes, [loaded.name], network=False).outcomes[-1]
    return outcome.path if outcome.status == "fresh" else None


def preprocess(recipe_path: Path, root: Path, rows: int) -> tuple[list[str], int]:
    """`ftctl preprocess`: the lines the worker printed (only it loads a tokenizer), its exit code."""
    command = [
        *(*SAFE_PYTHON, "-m", "ftctl.worker.preprocess"),
        *(str(recipe_path.resolve()), str(root.resolve()), str(rows)),
    ]
    with (
        tempfile.TemporaryFile() as out,  # a file, not a pipe: waiting can never deadlock
        tempfile.TemporaryDirectory() as cwd,
    ):
        code = wait(subprocess.Popen(command, stdout=out, env=worker_env(), cwd=cwd))
        out.seek(0)
        return out.read().decode("utf-8").splitlines(), code


def upstream_output(workspace: Workspace, loaded: LoadedRecipe) -> Path | None:
    """For ``base_model: recipe:<name>``, the upstream's default output, like a chain of `axolotl train` runs."""
    from ftctl.recipe.load import load_recipe
    from ftctl.recipe.refs import parse_model_ref
    from ftctl.yamlio import display_path

    ref = parse_model_ref(loaded.recipe.base_model)
    if ref.kind != "recipe":
        return None
    where = f"{loaded.shown}: base_model {loaded.recipe.base_model}"
    paths = [p for p in workspace.recipe_paths() if p.stem == ref.value]
    if not paths:
        raise FtctlError(
            f"{where}: the workspace has no recipe named '{ref.value}'",
            hint=f"add recipes/{ref.value}.yaml, or name an existing recipe",
        )
    base_dir = default_output(workspace.root, load_recipe(paths[0])) / "adapter"
    if not base_dir.is_dir():
        raise FtctlError(
            f"{where}: {display_path(base_dir)} does not exist",
            hint=f"train it first: ftctl train {ref.value}",
        )
    return base_dir


class Worker:
    """A worker started before the recipe is read: it imports the training stack (seconds) while ftctl
    validates, then reads its spec on stdin. Closed without a spec, it exits; on an error it is killed."""

    def __init__(self, proc: subprocess.Popen[bytes] | None) -> None:
        self.proc = proc

    @classmethod
    def start(cls) -> Worker:
        env = worker_env()
        if gpu_count(env) > 1:
            return cls(None)  # accelerate launch starts its processes itself, from a spec file
        proc = subprocess.Popen(
            [*SAFE_PYTHON, "-m", "ftctl.worker", "-"],
            stdin=subprocess.PIPE,
            env=env,
            cwd=tempfile.gettempdir(),  # not the workspace: nothing there is importable
        )
        return cls(proc)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if error is not None:
            self.proc.kill()
        elif self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        self.proc.wait()

    def hand(self, spec: RunSpec) -> int:
        """Give the started worker its spec; its exit code once it has finished."""
        if self.proc is None or self.proc.stdin is None:
            raise FtctlError(
                "the worker was not started with a pipe for its spec"
            )  # a bug, not input
        try:
            self.proc.stdin.write(spec.model_dump_json().encode())
            self.proc.stdin.close()
        except BrokenPipeError:
            pass  # it has stopped already (interrupted); its exit code says so
        return wait(self.proc)


def run_worker(
    root: Path,
    loaded: LoadedRecipe,
    output: Path,
    *,
    lock: Path | None = None,
    base_model_dir: Path | None = None,
    worker: Worker | None = None,
) -> int:
    """Train ``loaded`` into ``output`` (a new or empty directory); returns the worker's exit code.

    :data:`INTERRUPTED` when Ctrl-C stopped it. A run that did not finish (no result.json) leaves
    nothing: the directory made for it is removed, an empty one given is emptied.
    """
    from ftctl.runspec import RunSpec

    output = output.resolve()
    if output.exists() and any(output.iterdir()):
        raise FtctlError(
            f"{output} is not empty",
            hint="choose another --output, or remove it: a run directory holds one run",
        )
    created = not output.exists()
    code: int | None = None
    try:
        output.mkdir(parents=True, exist_ok=True)
        spec = RunSpec(
            recipe_path=str(loaded.path.resolve()),
            name=loaded.name,
            workspace=str(root.resolve()),
            output_dir=str(output),
            lock=str(lock.resolve()) if lock is not None else None,
            base_model_dir=str(base_model_dir.resolve()) if base_model_dir is not None else None,
        )
        if worker is not None and worker.proc is not None:
            code = worker.hand(spec)
        else:
            code = _run_spec_file(spec, output)
    finally:
        if code != 0 and not (output / "result.json").is_file():
            _discard(output, created)
    return code


def _run_spec_file(spec: RunSpec, output: Path) -> int:
    spec_path = output / "spec.json"
    write_atomic(spec_path, spec.model_dump_json(indent=2) + "\n")
    env = worker_env()
    try:
        command = worker_command(spec_path, gpu_count(env))
        return wait(subprocess.Popen(command, env=env, cwd=output))
    finally:
        spec_path.unlink(missing_ok=True)  # not part of the run directory's contract


def wait(proc: subprocess.Popen[bytes]) -> int:
    """The worker's exit code, :data:`INTERRUPTED` if Ctrl-C stopped it.

    The terminal sends SIGINT to the worker too; it stops and exits, and is waited for, so its run
    directory can be cleaned up after it. A second Ctrl-C kills it.
    """
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):
            proc.send_signal(signal.SIGINT)  # in case only ftctl got it (kill -INT); one is enough
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()
            return INTERRUPTED
        return 0 if code == 0 else INTERRUPTED  # it finished just before the interrupt
    return INTERRUPTED if code == -signal.SIGINT else code


def _discard(output: Path, created: bool) -> None:
    """Remove what an unfinished run wrote: the directory made for it, or the contents of the one given."""
    if created:
        shutil.rmtree(output, ignore_errors=True)
        return
    if not output.is_dir():
        return
    for child in output.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def worker_command(spec_path: Path, gpus: int) -> list[str]:
    """One worker process, or one per GPU through `accelerate launch` (DeepSpeed/FSDP come from the recipe)."""
    worker = ["-m", "ftctl.worker", str(spec_path)]
    if gpus <= 1:
        return [*SAFE_PYTHON, *worker]
    return [
        *SAFE_PYTHON,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        str(gpus),
        "--module",
        "ftctl.worker",
        str(spec_path),
    ]


def gpu_count(env: dict[str, str]) -> int:
    """The GPUs this run may use, without importing torch: CUDA_VISIBLE_DEVICES, else nvidia-smi."""
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    try:
        listed = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return (
        sum(line.startswith("GPU ") for line in listed.stdout.splitlines())
        if listed.returncode == 0
        else 0
    )
