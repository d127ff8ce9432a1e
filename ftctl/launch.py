"""Start the training worker in its own process, with the determinism environment set first.

PYTHONHASHSEED and CUBLAS_WORKSPACE_CONFIG only work if they are set before
the interpreter and torch start, hence a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ftctl.errors import FtctlError
from ftctl.files import write_atomic
from ftctl.recipe.load import LoadedRecipe

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


class Worker:
    """A worker started before the recipe is read: it imports the training stack (seconds) while ftctl
    validates, then reads its spec on stdin. Closed without a spec, it exits; on an error it is killed."""

    def __init__(self, proc: subprocess.Popen[bytes] | None) -> None:
        self.proc = proc

    @classmethod
    def start(cls) -> Worker:
        env = {**os.environ, **DETERMINISM_ENV}
        if gpu_count(env) > 1:
            return cls(None)  # accelerate launch starts its processes itself, from a spec file
        proc = subprocess.Popen(
            [sys.executable, "-m", "ftctl.worker", "-"], stdin=subprocess.PIPE, env=env
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
            self.proc.stdin.close()
        self.proc.wait()


def run_worker(
    root: Path,
    loaded: LoadedRecipe,
    output: Path,
    fingerprint: str | None = None,
    *,
    lock: Path | None = None,
    base_model_dir: Path | None = None,
    worker: Worker | None = None,
) -> int:
    """Train ``loaded`` into ``output`` (a new or empty directory); returns the worker's exit code."""
    from ftctl.runspec import RunSpec

    output = output.resolve()
    if output.exists() and any(output.iterdir()):
        raise FtctlError(
            f"{output} is not empty",
            hint="choose another --output, or remove it: a run directory holds one run",
        )
    output.mkdir(parents=True, exist_ok=True)
    spec = RunSpec(
        recipe_path=str(loaded.path.resolve()),
        name=loaded.name,
        workspace=str(root.resolve()),
        output_dir=str(output),
        fingerprint=fingerprint,
        lock=str(lock.resolve()) if lock is not None else None,
        base_model_dir=str(base_model_dir.resolve()) if base_model_dir is not None else None,
    )
    if worker is not None and worker.proc is not None:
        worker.proc.communicate(spec.model_dump_json().encode())
        return worker.proc.returncode
    spec_path = output / "spec.json"
    write_atomic(spec_path, spec.model_dump_json(indent=2) + "\n")
    env = {**os.environ, **DETERMINISM_ENV}
    proc = subprocess.run(worker_command(spec_path, gpu_count(env)), env=env, check=False)
    spec_path.unlink(missing_ok=True)  # not part of the run directory's contract
    return proc.returncode


def worker_command(spec_path: Path, gpus: int) -> list[str]:
    """One worker process, or one per GPU through `accelerate launch` (DeepSpeed/FSDP come from the recipe)."""
    worker = ["-m", "ftctl.worker", str(spec_path)]
    if gpus <= 1:
        return [sys.executable, *worker]
    return [
        sys.executable,
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
