"""Load the base model and tokenizer as the recipe asks: attention, quantization, added tokens.

The choices are pure functions of the recipe and the machine (tested on the
CPU); the loading itself is transformers, bitsandbytes and peft.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from ftctl.errors import FtctlError
from ftctl.recipe.model import Recipe


def attention_implementation(recipe: Recipe, flash_installed: bool | None = None) -> str | None:
    """transformers' attn_implementation: flash attention 2, SDPA, or the model's default."""
    if recipe.flash_attention:
        installed = (
            importlib.util.find_spec("flash_attn") is not None
            if flash_installed is None
            else flash_installed
        )
        if not installed:
            raise FtctlError(
                "flash_attention: the flash-attn package is not installed",
                hint="pip install 'ftctl[gpu]' on the GPU host, or remove flash_attention",
            )
        return "flash_attention_2"
    if recipe.sdp_attention:
        return "sdpa"
    return None


def quantization(recipe: Recipe) -> dict[str, Any] | None:
    """bitsandbytes settings (BitsAndBytesConfig keyword arguments) for QLoRA or 8-bit loading."""
    if recipe.load_in_4bit:
        return {
            "load_in_4bit": True,
            "bnb_4bit_quant_type": recipe.bnb_4bit_quant_type,
            "bnb_4bit_use_double_quant": recipe.bnb_4bit_use_double_quant,
            "bnb_4bit_compute_dtype": recipe.bnb_4bit_compute_dtype,
        }
    if recipe.load_in_8bit:
        return {"load_in_8bit": True}
    return None


def model_kwargs(
    recipe: Recipe, cuda: bool, *, flash_installed: bool | None = None
) -> dict[str, Any]:
    """Keyword arguments of ``from_pretrained`` (with ``quantization`` as a plain dict)."""
    kwargs: dict[str, Any] = {
        "dtype": "auto" if cuda else "float32",
        "trust_remote_code": recipe.trust_remote_code,
    }
    attention = attention_implementation(recipe, flash_installed)
    if attention is not None:
        kwargs["attn_implementation"] = attention
    quant = quantization(recipe)
    if quant is not None:
        kwargs["quantization"] = quant
    return kwargs


def load_model(source: str, revision: str | None, recipe: Recipe, cuda: bool) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    kwargs = model_kwargs(recipe, cuda)
    quant = kwargs.pop("quantization", None)
    if kwargs["dtype"] == "float32":
        kwargs["dtype"] = torch.float32
    if quant is not None:
        if importlib.util.find_spec("bitsandbytes") is None:
            raise FtctlError(
                "load_in_4bit/load_in_8bit: the bitsandbytes package is not installed",
                hint="pip install 'ftctl[gpu]' on the GPU host",
            )
        from transformers import BitsAndBytesConfig

        compute = quant.get("bnb_4bit_compute_dtype")
        if compute is not None:
            quant["bnb_4bit_compute_dtype"] = getattr(torch, compute)
        kwargs["quantization_config"] = BitsAndBytesConfig(**quant)  # type: ignore[no-untyped-call]
    model = AutoModelForCausalLM.from_pretrained(source, revision=revision, **kwargs)
    # Training never reuses a KV cache; with one, transformers skips the block-diagonal mask of packed rows
    # and their samples would attend to each other (tests/test_worker_loading.py shows it).
    model.config.use_cache = False
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=recipe.gradient_checkpointing
        )  # type: ignore[no-untyped-call]
    return model


def add_tokens(recipe: Recipe, tokenizer: Any, model: Any) -> bool:
    """Add the recipe's special tokens and tokens; resize the embeddings. True if the tokenizer changed."""
    changed = False
    if recipe.special_tokens is not None:
        wanted = recipe.special_tokens.model_dump(exclude_none=True)
        differs = {k: v for k, v in wanted.items() if getattr(tokenizer, k, None) != v}
        if differs:
            tokenizer.add_special_tokens(differs)
            changed = True
    if recipe.tokens:
        changed = bool(tokenizer.add_tokens(list(recipe.tokens))) or changed
    embeddings = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > embeddings or recipe.resize_token_embeddings_to_32x:
        model.resize_token_embeddings(
            len(tokenizer), pad_to_multiple_of=32 if recipe.resize_token_embeddings_to_32x else None
        )
    return changed


def check_new_tokens_train(recipe: Recipe, tokens_added: bool) -> None:
    """A LoRA adapter cannot learn new tokens' embeddings unless those layers are trained too (as Axolotl says)."""
    if not tokens_added or recipe.adapter is None:
        return
    saved = set(recipe.lora_modules_to_save or ())
    if not {"embed_tokens", "lm_head"} <= saved:
        raise FtctlError(
            "the recipe adds tokens, but a LoRA adapter leaves their embeddings untrained",
            hint="set lora_modules_to_save: [embed_tokens, lm_head]",
        )
