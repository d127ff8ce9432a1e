"""FSDP as transformers 5 takes it: the recipe's ``fsdp`` list and ``fsdp_config`` as training arguments.

The key tables and the refusals live in :mod:`ftctl.recipe.fsdp`, shared with validate, which
reports the same refusals with their location; the worker checks again before it trains.
"""

from __future__ import annotations

from typing import Any

from ftctl.errors import FtctlError
from ftctl.recipe.fsdp import FSDP1_ONLY, FSDP2_SHARDING, SHARED, fsdp_refusals
from ftctl.recipe.model import Recipe


def uses_fsdp(recipe: Recipe) -> bool:
    """An ``fsdp:`` list or an ``fsdp_config:`` block alone turns FSDP on (as Axolotl reads it)."""
    return bool(recipe.fsdp) or recipe.fsdp_config is not None


def fsdp_arguments(recipe: Recipe) -> dict[str, Any]:
    """``fsdp`` and ``fsdp_config`` training arguments (empty without FSDP).

    ``fsdp_version`` unset is FSDP1, as in Axolotl (transformers 5 would default to FSDP2).
    """
    if not uses_fsdp(recipe):
        return {}
    refused = fsdp_refusals(recipe.fsdp_config) if recipe.fsdp_config is not None else []
    if refused:
        first = refused[0]
        raise FtctlError(f"fsdp_config.{first.key}: {first.message}", hint=first.hint)
    given = recipe.fsdp_config.model_dump(exclude_none=True) if recipe.fsdp_config else {}
    version = int(given.pop("fsdp_version", 1))
    config: dict[str, Any] = {"version": version}
    for key, value in given.items():
        config.update(_fsdp_key(key, value, version))
    # The fsdp list (deprecated in transformers 5 but still read) adds the sharding and offload.
    return {"fsdp": " ".join(recipe.fsdp) if recipe.fsdp else True, "fsdp_config": config}


def _fsdp_key(key: str, value: Any, version: int) -> dict[str, Any]:
    """One accepted key as transformers names it (fsdp_refusals has turned away the rest)."""
    if key in SHARED:
        return {SHARED[key]: value}
    if key in FSDP1_ONLY:
        return {FSDP1_ONLY[key]: value}
    if key == "fsdp_sharding_strategy":
        if version == 1:
            return {"reshard_after_forward": str(value).lower()}
        return {"reshard_after_forward": FSDP2_SHARDING[value]}
    if key == "fsdp_reshard_after_forward":
        return {"reshard_after_forward": value}
    if key == "fsdp_final_state_dict_type":
        return {}  # FULL_STATE_DICT: what ftctl saves anyway
    raise FtctlError(f"fsdp_config.{key}: not mapped onto transformers' FSDP arguments")
