"""What this machine cannot train, refused before anything loads."""

from __future__ import annotations

from ftctl.errors import FtctlError
from ftctl.recipe.model import Recipe
from ftctl.recipe.names import BNB_OPTIMIZERS, RESERVED_TEMPLATE_KWARGS, TORCHAO_OPTIMIZERS
from ftctl.worker import distributed, kernels
from ftctl.worker.model import attention_name

# attn_implementation values whose kernels need CUDA (torch has no FlexAttention backward on the CPU).
GPU_ATTENTION = frozenset({"flash_attention_2", "flash_attention_3", "flex_attention"})
_HINT_GPU = "run it on a GPU executor (ftctl.executor), or remove it to train on the CPU"


def check_hardware(recipe: Recipe, cuda: bool) -> None:
    """Refuse, before anything is loaded, what this machine cannot train."""
    check_recipe(recipe)
    if not cuda:
        check_cpu(recipe)


def check_recipe(recipe: Recipe) -> None:
    """What no machine trains: settings the worker has no way to honour."""
    if recipe.max_prompt_len is not None:
        raise FtctlError(
            "max_prompt_len is not supported by trl 1.16's preference trainers",
            hint="remove it; sequence_len bounds prompt and answer together",
        )
    reserved = sorted(set(recipe.chat_template_kwargs or {}) & RESERVED_TEMPLATE_KWARGS)
    if reserved:
        raise FtctlError(
            f"chat_template_kwargs: {', '.join(reserved)} is how ftctl renders, not a template variable",
            hint="remove it from chat_template_kwargs",
        )
    for key in ("base_model_config", "tokenizer_config"):
        value = getattr(recipe, key)
        if value is not None and value != recipe.base_model:
            raise FtctlError(
                f"{key}: ftctl loads the config and tokenizer of base_model only ({value} is "
                "neither locked nor hashed)",
                hint="remove it, or make base_model a directory holding that config and tokenizer",
            )
    for key, what in (
        ("pretraining_dataset", "streamed pretraining datasets"),
        ("streaming", "streamed datasets"),
    ):
        if getattr(recipe, key):
            raise FtctlError(
                f"{key}: the worker does not train {what} yet",
                hint="use datasets with type: completion for a finite text corpus",
            )
    if not recipe.save_safetensors:
        raise FtctlError(
            "save_safetensors: false: ftctl's run directory holds safetensors weights only",
            hint="remove it",
        )
    if recipe.unfrozen_parameters and recipe.adapter is not None:
        raise FtctlError(
            "unfrozen_parameters: with an adapter only the adapter trains",
            hint="remove it, or train without adapter (a full fine-tune of those parameters)",
        )
    distributed.fsdp_arguments(recipe)  # refuses fsdp_config keys transformers would ignore
    conflict = kernels.kernel_conflicts(recipe)
    if conflict is not None:
        raise FtctlError(conflict, hint="remove the others")
    implied = (
        "flash_attention_2" if recipe.flash_attention else "sdpa" if recipe.sdp_attention else None
    )
    if recipe.attn_implementation and implied and implied != recipe.attn_implementation:
        raise FtctlError(
            f"attn_implementation: {recipe.attn_implementation} conflicts with "
            f"{'flash_attention' if recipe.flash_attention else 'sdp_attention'}: true",
            hint="keep attn_implementation only",
        )


def check_cpu(recipe: Recipe) -> None:
    """What needs CUDA, on a machine without it."""
    for key, what in (
        ("load_in_4bit", "QLoRA (bitsandbytes 4-bit)"),
        ("load_in_8bit", "8-bit loading (bitsandbytes)"),
        ("flash_attention", "flash attention"),
        ("deepspeed", "DeepSpeed"),
        ("fsdp", "FSDP"),
        ("fsdp_config", "FSDP"),
        ("cut_cross_entropy", "cut cross-entropy (Triton kernels)"),
    ):
        if getattr(recipe, key):
            raise FtctlError(
                f"{key}: {what} needs a CUDA GPU, and this machine has none", hint=_HINT_GPU
            )
    attention = attention_name(recipe)
    if attention in GPU_ATTENTION:
        raise FtctlError(
            f"attn_implementation: {attention} needs a CUDA GPU, and this machine has none",
            hint="use sdpa or eager on the CPU",
        )
    if kernels.liger_kernel_config(recipe) is not None:
        raise FtctlError(
            "liger_*: Liger kernels (Triton) need a CUDA GPU, and this machine has none",
            hint=_HINT_GPU,
        )
    if recipe.bf16 is True or recipe.fp16:
        raise FtctlError(
            "bf16/fp16 training needs a GPU here",
            hint="use bf16: auto, which trains in fp32 on a CPU",
        )
    if recipe.optimizer in TORCHAO_OPTIMIZERS:
        raise FtctlError(
            f"optimizer {recipe.optimizer} is a torchao low-bit optimizer and needs a CUDA GPU",
            hint="use adamw_torch on the CPU",
        )
    if recipe.optimizer in BNB_OPTIMIZERS:
        raise FtctlError(
            f"optimizer {recipe.optimizer} is a bitsandbytes optimizer and needs a CUDA GPU",
            hint="use adamw_torch on the CPU",
        )
    for key in ("max_memory", "gpu_memory_limit"):
        if getattr(recipe, key) is not None:
            raise FtctlError(
                f"{key}: a GPU memory limit needs a CUDA GPU, and this machine has none",
                hint=_HINT_GPU,
            )
