"""Run directories as the worker leaves them, for tests that attest without training a model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ftctl.lock.lockfile import load_lock
from ftctl.lock.paths import lock_path
from ftctl.recipe.load import load_recipe
from ftctl.runspec import TrainedRecord


def trained_record(root: Path, recipe: str) -> dict[str, Any]:
    """``trained`` as the worker records it for a run of ``recipe`` from its current lock."""
    lock = load_lock(lock_path(root, recipe), f"{recipe}.lock")
    record = TrainedRecord(
        fingerprint=lock.fingerprint,
        config_digest=lock.recipe.digest,
        inputs=lock.input_identities(),
    )
    return record.model_dump(mode="json")


def adapter_config(root: Path, recipe: str) -> dict[str, Any]:
    """adapter_config.json as PEFT writes it and the worker names its base."""
    path = next(p for p in (root / "recipes").glob(f"{recipe}.y*ml"))
    loaded = load_recipe(path).recipe
    config: dict[str, Any] = {"r": loaded.lora_r, "lora_alpha": loaded.lora_alpha,
                              "base_model_name_or_path": loaded.base_model}  # fmt: skip
    if isinstance(loaded.lora_target_modules, list):
        config["target_modules"] = list(loaded.lora_target_modules)
    return config


def finished_run(
    root: Path,
    run: Path,
    recipe: str,
    *,
    weights: str = "weights",
    minute: int = 1,
    external: bool = False,
    result: dict[str, Any] | None = None,
) -> Path:
    """Write a finished run of ``recipe`` into ``run``: trained from the lock, unless ``external``."""
    (run / "adapter").mkdir(parents=True, exist_ok=True)
    (run / "adapter" / "adapter_model.safetensors").write_text(weights)
    (run / "adapter" / "adapter_config.json").write_text(
        json.dumps(adapter_config(root, recipe)) + "\n"
    )
    (run / "train-log.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    (run / "environment.json").write_text('{"python": "3.11.7", "torch": "2.13.0"}\n')
    body: dict[str, Any] = {
        "started_at": f"2026-11-24T10:{minute:02d}:00Z",
        "finished_at": f"2026-11-24T11:{minute:02d}:00Z",
        "metrics": {"train_loss": 1.0},
        "host": "ci",
        "run_id": hashlib.sha256(f"{run.name}:{recipe}:{minute}:{weights}".encode()).hexdigest()[
            :16
        ],
        **(result or {}),
    }
    if not external:
        body["trained"] = trained_record(root, recipe)
    (run / "result.json").write_text(json.dumps(body) + "\n")
    return run
