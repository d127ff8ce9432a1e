"""The run directory of docs/run-dir.md: adapter/, train-log.jsonl, environment.json, result.json.

result.json is written last: a run directory holding it is a finished run
(``ftctl train`` removes one left without it).
"""

from __future__ import annotations

import json
import platform
import resource
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from ftctl.lock.pins import TRAINING_PACKAGES
from ftctl.recipe.model import Recipe
from ftctl.runspec import RunSpec, TrainedRecord
from ftctl.worker.model import Base
from ftctl.worker.trainer import Trained

PACKAGES = TRAINING_PACKAGES  # environment.json records what --pins-from-env would pin


def write_run_dir(
    spec: RunSpec,
    recipe: Recipe,
    base: Base,
    trained: Trained,
    started: datetime,
    cuda: bool,
    record: TrainedRecord,
) -> Path:
    """Write the run directory ``spec.output_dir``; returns it."""
    out = Path(spec.output_dir)
    save_adapter(out, recipe, base, trained)
    log = write_train_log(out, trained)
    environment = write_environment(out, cuda)
    write_result(out, spec, recipe, trained, log, environment, started, record)
    return out


def save_adapter(out: Path, recipe: Recipe, base: Base, trained: Trained) -> None:
    adapter = out / "adapter"
    trained.model.save_pretrained(str(adapter))
    if base.tokenizer_changed or recipe.adapter is None:
        # The adapter (or model) needs the tokenizer it was trained with.
        base.tokenizer.save_pretrained(str(adapter))
    checkpoints = out / "checkpoints"
    if checkpoints.is_dir() and not any(checkpoints.iterdir()):
        checkpoints.rmdir()  # save_strategy "no": the trainer's output folder stays empty
    name_the_base(adapter, recipe.base_model)


def name_the_base(adapter: Path, base_model: str) -> None:
    """PEFT writes the load path of the base; record the recipe's reference instead."""
    config_path = adapter / "adapter_config.json"
    if config_path.exists():
        config = json.loads(config_path.read_text())
        config["base_model_name_or_path"] = base_model
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    readme = adapter / "README.md"
    if readme.exists():
        readme.unlink()  # PEFT's generated card names the temporary path; the registry writes the card


def write_train_log(out: Path, trained: Trained) -> list[dict[str, Any]]:
    """train-log.jsonl, one line per logged training step; returns those steps."""
    log = [h for h in trained.log_history if "loss" in h]
    (out / "train-log.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "step": h.get("step"),
                    "loss": h.get("loss"),
                    "learning_rate": h.get("learning_rate"),
                    "grad_norm": h.get("grad_norm"),
                    "tokens": h.get("num_tokens"),
                }
            )
            + "\n"
            for h in log
        )
    )
    return log


def write_environment(out: Path, cuda: bool) -> dict[str, Any]:
    """environment.json: Python, platform, package versions, device; returns it."""
    import torch

    environment = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in PACKAGES},
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
    }
    (out / "environment.json").write_text(json.dumps(environment, indent=2, sort_keys=True) + "\n")
    return environment


def write_result(
    out: Path,
    spec: RunSpec,
    recipe: Recipe,
    trained: Trained,
    log: list[dict[str, Any]],
    environment: dict[str, Any],
    started: datetime,
    record: TrainedRecord,
) -> None:
    """result.json: times, metrics, throughput and the determinism settings."""
    metrics = {"train_loss": trained.training_loss}
    if log:
        metrics["final_loss"] = log[-1]["loss"]
    evals = [h for h in trained.log_history if "eval_loss" in h]
    if evals:
        metrics["eval_loss"] = evals[-1]["eval_loss"]
    wall = trained.wall_time_s
    summary = {
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "metrics": metrics,
        "steps": trained.steps,
        "tokens_seen": trained.tokens_seen,
        "packed": recipe.sample_packing,
        "tokens_per_second": round(trained.trained_tokens / wall, 1)
        if trained.trained_tokens and wall > 0
        else None,
        "wall_time_s": round(wall, 3),
        "peak_memory_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "host": platform.node(),
        "determinism": {
            "seed": recipe.seed,
            "deterministic_algorithms": True,
            "tf32": recipe.tf32,
            "device": environment["device"],
        },
    }
    summary["run_id"] = uuid.uuid4().hex  # one per run: manifests of one run are one manifest
    summary["trained"] = record.model_dump(mode="json")
    # Renamed into place: a result.json that exists is whole, so the run it closes is finished.
    partial = out / ".result.json.partial"
    partial.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    partial.replace(out / "result.json")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
