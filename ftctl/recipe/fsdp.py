"""FSDP settings as transformers 5 reads them: which recipe keys map where, and which cannot.

transformers strips the ``fsdp_`` prefix and reads a fixed set of keys; anything else it would
ignore silently. The worker maps the recipe onto those keys (ftctl.worker.distributed) and
validate reports the same refusals with their location, both from :func:`fsdp_refusals`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ftctl.recipe.model import FSDPConfig

# Keys transformers reads for both FSDP versions, by the recipe's name.
SHARED = {
    "fsdp_offload_params": "cpu_offload",
    "fsdp_cpu_ram_efficient_loading": "cpu_ram_efficient_loading",
    "fsdp_state_dict_type": "state_dict_type",
    "fsdp_auto_wrap_policy": "auto_wrap_policy",
    "fsdp_transformer_layer_cls_to_wrap": "transformer_layer_cls_to_wrap",
    "fsdp_min_num_params": "min_num_params",
    "fsdp_activation_checkpointing": "activation_checkpointing",
}
# Keys transformers reads only for FSDP1.
FSDP1_ONLY = {
    "fsdp_sync_module_states": "sync_module_states",
    "fsdp_use_orig_params": "use_orig_params",
    "fsdp_forward_prefetch": "forward_prefetch",
    "fsdp_backward_prefetch": "backward_prefetch",
    "fsdp_limit_all_gathers": "limit_all_gathers",
}
# Keys with no place in transformers 5 / accelerate 1.15's FSDP arguments.
NOT_PASSED = ("fsdp_cpu_offload_pin_memory", "fsdp_mixed_precision_policy")
# FSDP2 shards with reshard_after_forward: full_shard reshards, shard_grad_op keeps the parameters.
FSDP2_SHARDING = {"FULL_SHARD": True, "SHARD_GRAD_OP": False}


@dataclass(frozen=True)
class FsdpRefusal:
    key: str  # the fsdp_config key to edit
    message: str
    hint: str


def fsdp_version(config: FSDPConfig | None) -> int:
    """1 unless set, as in Axolotl (transformers 5 alone would default to FSDP2)."""
    return config.fsdp_version if config is not None and config.fsdp_version else 1


def fsdp_refusals(config: FSDPConfig) -> list[FsdpRefusal]:
    """Every fsdp_config setting transformers cannot take as written, in key order."""
    given = config.model_dump(exclude_none=True)
    version = int(given.pop("fsdp_version", 1))
    found = []
    for key, value in given.items():
        refused = _refusal(key, value, version)
        if refused is not None:
            found.append(FsdpRefusal(key, *refused))
    strategy = given.get("fsdp_sharding_strategy")
    reshard = given.get("fsdp_reshard_after_forward")
    if (
        version == 2
        and strategy in FSDP2_SHARDING
        and reshard not in (None, FSDP2_SHARDING[strategy])
    ):
        found.append(
            FsdpRefusal(
                "fsdp_reshard_after_forward",
                f"{str(reshard).lower()} contradicts fsdp_sharding_strategy {strategy}",
                "keep one (FULL_SHARD reshards after forward, SHARD_GRAD_OP does not)",
            )
        )
    return found


def _refusal(key: str, value: object, version: int) -> tuple[str, str] | None:
    if key in FSDP1_ONLY and version != 1:
        return f"FSDP1 only, and fsdp_version is {version}", "remove it, or set fsdp_version: 1"
    if key == "fsdp_sharding_strategy" and version == 2 and value not in FSDP2_SHARDING:
        return f"{value} is FSDP1 only", "use FULL_SHARD or SHARD_GRAD_OP with fsdp_version 2"
    if key == "fsdp_reshard_after_forward" and version == 1:
        return (
            "FSDP2 only (FSDP1 reads fsdp_sharding_strategy)",
            "set fsdp_version: 2, or use fsdp_sharding_strategy",
        )
    if key == "fsdp_final_state_dict_type" and value != "FULL_STATE_DICT":
        return (
            f"{value}: ftctl writes the final weights whole",
            "remove it (FULL_STATE_DICT is what ftctl saves)",
        )
    if key in NOT_PASSED:
        return "transformers' FSDP arguments have no such setting", "remove it"
    return None
