"""What this machine cannot train, refused before anything loads."""

from __future__ import annotations

from ftctl.errors import FtctlError
from ftctl.recipe.model import Recipe
from ftctl.worker import formats


def check_hardware(recipe: Recipe, cuda: bool) -> None:
    """Refuse, before anything is loaded, what this machine cannot train."""
    if recipe.max_prompt_len is not None:
        raise FtctlError(
            "max_prompt_len is not supported by trl 1.16's preference trainers",
            hint="remove it; sequence_len bounds prompt and answer together",
        )
    for entry in [*(recipe.datasets or []), *(recipe.test_datasets or [])]:
        if entry.type == "chat_template":
            formats.chat_template_for(
                entry.chat_template or recipe.chat_template, recipe.chat_template_jinja
            )
    if not cuda:
        for key, what in (
            ("load_in_4bit", "QLoRA (bitsandbytes 4-bit)"),
            ("load_in_8bit", "8-bit loading (bitsandbytes)"),
            ("flash_attention", "flash attention"),
            ("deepspeed", "DeepSpeed"),
            ("fsdp", "FSDP"),
        ):
            if getattr(recipe, key):
                raise FtctlError(
                    f"{key}: {what} needs a CUDA GPU, and this machine has none",
                    hint="run it on a GPU executor (ftctl.executor), or remove it to train on the CPU",
                )
        if recipe.bf16 is True or recipe.fp16:
            raise FtctlError(
                "bf16/fp16 training needs a GPU here",
                hint="use bf16: auto, which trains in fp32 on a CPU",
            )
        if recipe.optimizer.endswith("8bit") or recipe.optimizer.startswith(("paged_", "lion")):
            raise FtctlError(
                f"optimizer {recipe.optimizer} is a bitsandbytes optimizer and needs a CUDA GPU",
                hint="use adamw_torch on the CPU",
            )
