"""GPU kernels a recipe asks for: Liger (through transformers' integration) and cut cross-entropy.

The mappings are pure functions of the recipe (tested on the CPU); the kernels themselves are
Triton code that runs on CUDA only, so preflight refuses them on a machine without it.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from ftctl.errors import FtctlError
from ftctl.recipe.keys import CCE_PLUGIN, LIGER_PLUGIN
from ftctl.recipe.model import Recipe


def liger_kernel_config(recipe: Recipe) -> dict[str, bool] | None:
    """transformers' ``liger_kernel_config`` (None: no Liger kernel asked for).

    Every kernel is named, off unless the recipe turns it on: Liger's own defaults turn several on.
    ``liger_glu_activation`` (and its older spelling ``liger_swiglu``) is the model's GLU: Liger
    calls it swiglu for Llama-like models and geglu for Gemma, and passes each model only its own.
    """
    glu = bool(recipe.liger_glu_activation or recipe.liger_swiglu)
    config = {
        "rope": bool(recipe.liger_rope),
        "rms_norm": bool(recipe.liger_rms_norm),
        "layer_norm": bool(recipe.liger_layer_norm),
        "swiglu": glu,
        "geglu": glu,
        "cross_entropy": bool(recipe.liger_cross_entropy),
        "fused_linear_cross_entropy": bool(recipe.liger_fused_linear_cross_entropy),
    }
    return config if any(config.values()) else None


def liger_arguments(recipe: Recipe) -> dict[str, Any]:
    """The training arguments that turn Liger on (none when it is off)."""
    config = liger_kernel_config(recipe)
    if config is None:
        return {}
    return {"use_liger_kernel": True, "liger_kernel_config": config}


def kernel_conflicts(recipe: Recipe) -> str | None:
    """Loss kernels that replace each other: at most one computes the loss."""
    losses = [
        key
        for key in ("liger_cross_entropy", "liger_fused_linear_cross_entropy", "cut_cross_entropy")
        if getattr(recipe, key)
    ]
    if len(losses) > 1:
        return f"{' and '.join(losses)} each compute the loss; keep one"
    return None


def idle_plugins(recipe: Recipe) -> list[str]:
    """Plugins listed without a key that turns their kernels on (they change nothing)."""
    idle = []
    if LIGER_PLUGIN in (recipe.plugins or ()) and liger_kernel_config(recipe) is None:
        idle.append(f"{LIGER_PLUGIN} turns nothing on without a liger_* key; it is ignored")
    if CCE_PLUGIN in (recipe.plugins or ()) and not recipe.cut_cross_entropy:
        idle.append(f"{CCE_PLUGIN} is off (cut_cross_entropy: false); it is ignored")
    return idle


def liger_problem(
    config: Mapping[str, bool], model_type: str, table: Mapping[str, Callable[..., Any]]
) -> str | None:
    """Why Liger cannot apply ``config`` to a model of ``model_type`` (Liger skips such kernels silently).

    ``table`` is Liger's MODEL_TYPE_TO_APPLY_LIGER_FN.
    """
    apply = table.get(model_type)
    if apply is None:
        return f"Liger has no kernels for model type {model_type}"
    takes = set(inspect.signature(apply).parameters)
    missing = [
        name
        for name, on in config.items()
        if on and name not in takes and name not in ("swiglu", "geglu")
    ]
    if (config.get("swiglu") or config.get("geglu")) and not {"swiglu", "geglu"} & takes:
        missing.append("glu_activation")
    if missing:
        return f"Liger has no {', '.join(missing)} kernel for model type {model_type}"
    return None


def check_liger(recipe: Recipe, model: Any) -> None:
    """On a GPU: Liger installed and able to apply every kernel the recipe names to this model."""
    config = liger_kernel_config(recipe)
    if config is None:
        return
    if importlib.util.find_spec("liger_kernel") is None:
        raise FtctlError(
            "liger_*: the liger-kernel package is not installed",
            hint="pip install liger-kernel on the GPU host, or remove the liger_* keys",
        )
    from liger_kernel.transformers.monkey_patch import (  # type: ignore[import-not-found,unused-ignore]
        MODEL_TYPE_TO_APPLY_LIGER_FN,
    )

    problem = liger_problem(config, str(model.config.model_type), MODEL_TYPE_TO_APPLY_LIGER_FN)
    if problem is not None:
        raise FtctlError(f"liger_*: {problem}", hint="remove those liger_* keys for this model")


def apply_cut_cross_entropy(recipe: Recipe, model: Any) -> Any:
    """The model with its loss computed by cut cross-entropy (the model unchanged when it is off)."""
    if not recipe.cut_cross_entropy:
        return model
    if importlib.util.find_spec("cut_cross_entropy") is None:
        raise FtctlError(
            "cut_cross_entropy: the cut-cross-entropy package is not installed",
            hint="pip install 'cut-cross-entropy[transformers]' on the GPU host, or remove it",
        )
    from cut_cross_entropy.transformers import (  # type: ignore[import-not-found,unused-ignore]
        cce_patch,
    )

    try:
        return cce_patch(model)
    except (RuntimeError, ValueError, KeyError, NotImplementedError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FtctlError(
            f"cut_cross_entropy: not available for model type {model.config.model_type} ({first})",
            hint="remove cut_cross_entropy for this model",
        ) from None
