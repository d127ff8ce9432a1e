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


# Fields added after scheme 1 (docs/fingerprint.md): left out while at their default, so
# a recipe that does not use them keeps the fingerprint it had. Set, they count as usual.
ADDED_FIELDS = frozenset(
    {
        "attn_implementation",
        "eot_tokens",
        "chat_template_kwargs",
        "plugins",
        "liger_rope",
        "liger_rms_norm",
        "liger_layer_norm",
        "liger_swiglu",
        "liger_glu_activation",
        "liger_cross_entropy",
        "liger_fused_linear_cross_entropy",
        "cut_cross_entropy",
    }
)
ADDED_FSDP_FIELDS = frozenset(
    {
        "fsdp_limit_all_gathers",
        "fsdp_cpu_offload_pin_memory",
        "fsdp_final_state_dict_type",
        "fsdp_min_num_params",
        "fsdp_mixed_precision_policy",
        "fsdp_forward_prefetch",
        "fsdp_backward_prefetch",
    }
)


def _without_unset_additions(config: dict[str, Any]) -> dict[str, Any]:
    defaults = {name: Recipe.model_fields[name].default for name in ADDED_FIELDS}
    out = {k: v for k, v in config.items() if not (k in ADDED_FIELDS and v == defaults[k])}
    fsdp = out.get("fsdp_config")
    if isinstance(fsdp, dict):
        out["fsdp_config"] = {
            k: v for k, v in fsdp.items() if not (k in ADDED_FSDP_FIELDS and v is None)
        }
    return out


def training_config(recipe: Recipe) -> dict[str, Any]:
    """The recipe as it trains: defaults and derived values filled in, non-semantic fields removed."""
    config = _without_unset_additions(derive(recipe).model_dump(mode="json"))
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
