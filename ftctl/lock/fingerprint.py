"""The fingerprint: the train key of a recipe. Defined in docs/fingerprint.md.

sha256 over canonical JSON (sorted keys, no whitespace, floats as Python's
repr) of: the validated recipe with defaults and derived values filled in,
minus the fields that cannot change the trained weights; the resolved base
model; the dataset digests; the pins digest; the trainer version. Comments,
key order, quoting, whitespace and writing a default explicitly never change
it. When in doubt a field is semantic.
"""

from __future__ import annotations

from typing import Any

from ftctl.canonical import sha256_of
from ftctl.recipe.derived import derive
from ftctl.recipe.model import Recipe

SCHEME = 1  # bump when the definition below changes: every fingerprint changes with it

# Fields that cannot change the trained weights (docs/fingerprint.md lists them).
NON_SEMANTIC = frozenset(
    {
        "ftctl",
        "output_dir",
        "dataset_prepared_path",
        "dataset_processes",
        "logging_steps",
        "save_strategy",
        "save_steps",
        "saves_per_epoch",
        "save_total_limit",
        "save_safetensors",
        "eval_steps",
        "use_tensorboard",
    }
)
NON_SEMANTIC_PREFIXES = ("wandb_", "mlflow_")
# Checkpoint and evaluation cadence picks the weights kept when these are set.
_SELECTS_CHECKPOINTS = ("load_best_model_at_end", "early_stopping_patience")


def training_config(recipe: Recipe) -> dict[str, Any]:
    """The recipe as it trains: defaults and derived values filled in, non-semantic fields removed."""
    config = derive(recipe).model_dump(mode="json")
    keep_cadence = any(config.get(key) for key in _SELECTS_CHECKPOINTS)
    return {
        key: value
        for key, value in config.items()
        if not (
            (
                key in NON_SEMANTIC
                and not (keep_cadence and key in ("save_steps", "eval_steps", "save_strategy"))
            )
            or key.startswith(NON_SEMANTIC_PREFIXES)
        )
    }


def fingerprint(
    config: dict[str, Any],
    base_model: dict[str, Any],
    datasets: list[dict[str, Any]],
    pins_digest: str,
    trainer: dict[str, str],
) -> str:
    """The train key. ``base_model``/``datasets`` are the lock's resolved identities."""
    return sha256_of(
        {
            "scheme": SCHEME,
            "config": config,
            "base_model": base_model,
            "datasets": datasets,
            "pins": pins_digest,
            "trainer": trainer,
        }
    )
