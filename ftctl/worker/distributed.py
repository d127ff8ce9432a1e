"""FSDP as transformers 5 takes it: the recipe's ``fsdp`` list and ``fsdp_config`` as training arguments.

transformers strips the ``fsdp_`` prefix and reads a fixed set of keys (``_process_fsdp_args``);
anything else it would ignore silently, so it is mapped here or refused.
"""

from __future__ import annotations

from typing import Any

from ftctl.errors import FtctlError
from ftctl.recipe.model import Recipe

# Keys transformers reads for both FSDP versions, by the recipe's name.
_SHARED = {
    "fsdp_offload_params": "cpu_offload",
    "fsdp_cpu_ram_efficient_loading": "cpu_ram_efficient_loading",
    "fsdp_state_dict_type": "state_dict_type",
    "fsdp_auto_wrap_policy": "auto_wrap_policy",
    "fsdp_transformer_layer_cls_to_wrap": "transformer_layer_cls_to_wrap",
    "fsdp_min_num_params": "min_num_params",
    "fsdp_activation_checkpointing": "activation_checkpointing",
}
# Keys transformers reads only for FSDP1.
_FSDP1_ONLY = {
    "fsdp_sync_module_states": "sync_module_states",
    "fsdp_use_orig_params": "use_orig_params",
    "fsdp_forward_prefetch": "forward_prefetch",
    "fsdp_backward_prefetch": "backward_prefetch",
    "fsdp_limit_all_gathers": "limit_all_gathers",
}
# Keys with no place in transformers 5 / accelerate 1.15's FSDP arguments.
_NOT_PASSED = ("fsdp_cpu_offload_pin_memory", "fsdp_mixed_precision_policy")
# FSDP2 shards with reshard_after_forward: full_shard reshards, shard_grad_op keeps the parameters.
_FSDP2_SHARDING = {"FULL_SHARD": True, "SHARD_GRAD_OP": False}


def uses_fsdp(recipe: Recipe) -> bool:
    """An ``fsdp:`` list or an ``fsdp_config:`` block alone turns FSDP on (as Axolotl reads it)."""
    return bool(recipe.fsdp) or recipe.fsdp_config is not None


def fsdp_arguments(recipe: Recipe) -> dict[str, Any]:
    """``fsdp`` and ``fsdp_config`` training arguments (empty without FSDP).

    ``fsdp_version`` unset is FSDP1, as in Axolotl (transformers 5 would default to FSDP2).
    """
    if not uses_fsdp(recipe):
        return {}
    given = recipe.fsdp_config.model_dump(exclude_none=True) if recipe.fsdp_config else {}
    version = int(given.pop("fsdp_version", 1))
    config: dict[str, Any] = {"version": version}
    for key, value in given.items():
        config.update(_fsdp_key(key, value, version))
    if "fsdp_sharding_strategy" in given and "fsdp_reshard_after_forward" in given:
        raise FtctlError(
            "fsdp_config: fsdp_sharding_strategy and fsdp_reshard_after_forward set the same thing",
            hint="keep one",
        )
    # The fsdp list (deprecated in transformers 5 but still read) adds the sharding and offload.
    return {"fsdp": " ".join(recipe.fsdp) if recipe.fsdp else True, "fsdp_config": config}


def _fsdp_key(key: str, value: Any, version: int) -> dict[str, Any]:
    if key in _SHARED:
        return {_SHARED[key]: value}
    if key in _FSDP1_ONLY:
        if version != 1:
            raise FtctlError(
                f"fsdp_config.{key}: FSDP1 only, and fsdp_version is {version}",
                hint="remove it, or set fsdp_version: 1",
            )
        return {_FSDP1_ONLY[key]: value}
    if key == "fsdp_sharding_strategy":
        if version == 1:
            return {"reshard_after_forward": str(value).lower()}
        if value not in _FSDP2_SHARDING:
            raise FtctlError(
                f"fsdp_config.fsdp_sharding_strategy: {value} is FSDP1 only",
                hint="use FULL_SHARD or SHARD_GRAD_OP with fsdp_version 2",
            )
        return {"reshard_after_forward": _FSDP2_SHARDING[value]}
    if key == "fsdp_reshard_after_forward":
        if version == 1:
            raise FtctlError(
                "fsdp_config.fsdp_reshard_after_forward: FSDP2 only (FSDP1 reads fsdp_sharding_strategy)",
                hint="set fsdp_version: 2, or use fsdp_sharding_strategy",
            )
        return {"reshard_after_forward": value}
    if key == "fsdp_final_state_dict_type":
        if value != "FULL_STATE_DICT":
            raise FtctlError(
                f"fsdp_config.fsdp_final_state_dict_type: {value}: ftctl writes the final adapter whole",
                hint="remove it (FULL_STATE_DICT is what ftctl saves)",
            )
        return {}
    if key in _NOT_PASSED:
        raise FtctlError(
            f"fsdp_config.{key}: transformers' FSDP arguments have no such setting",
            hint="remove it",
        )
    raise FtctlError(f"fsdp_config.{key}: not mapped onto transformers' FSDP arguments")
