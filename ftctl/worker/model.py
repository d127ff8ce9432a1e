"""The base model and tokenizer as the recipe asks: determinism, attention, quantization, added tokens.

The choices are pure functions of the recipe and the machine (tested on the
CPU); the loading itself is transformers, bitsandbytes and peft. A base that
cannot load (a Hub model neither cached nor reachable, a directory that is not
a model) is one line naming it, not a traceback.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftctl.errors import FtctlError
from ftctl.lock.lockfile import Lockfile
from ftctl.recipe.model import Recipe


@dataclass(frozen=True)
class Base:
    """The loaded base, ready for an adapter or a full fine-tune."""

    model: Any
    tokenizer: Any
    tokenizer_changed: bool  # tokens were added: the run directory ships the tokenizer


def make_deterministic(recipe: Recipe) -> None:
    """Deterministic algorithms, TF32 off unless asked, the seed set before anything random happens.

    The parent sets PYTHONHASHSEED and CUBLAS_WORKSPACE_CONFIG (they must precede the interpreter).
    """
    import torch
    from transformers import set_seed

    torch.use_deterministic_algorithms(True)
    # Deterministic mode also fills every torch.empty with NaN, a debugging aid that made trl's chunked
    # log-prob buffer (tokens x vocab chunk, refilled each step) a third of CPU training time. Kernels
    # write those buffers before reading them, so results stay bitwise identical (tested).
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = recipe.tf32
    set_seed(recipe.seed)


def load(
    recipe: Recipe, root: Path, lock: Lockfile | None, base_dir: Path | None, cuda: bool
) -> Base:
    """The recipe's base model and tokenizer: an upstream adapter merged in, tokens added, a pad token set."""
    from ftctl.worker.inputs import checked_base

    where = f"base_model {recipe.base_model}"
    base = checked_base(recipe.base_model, base_dir, root, lock)
    own_tokenizer = base.merge is not None and (base.merge / "tokenizer_config.json").is_file()
    tokenizer = load_tokenizer(
        str(base.merge) if own_tokenizer else base.source,
        None if own_tokenizer else base.revision,
        recipe,
        where,
        local_only=base.local_only,
    )
    model = load_model(base.source, base.revision, recipe, cuda, where, local_only=base.local_only)
    if base.merge is not None:
        from peft import PeftModel

        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))  # the upstream added tokens
        model = PeftModel.from_pretrained(model, str(base.merge)).merge_and_unload()
    vocabulary = len(tokenizer)
    tokenizer_changed = add_tokens(recipe, tokenizer, model)
    check_new_tokens_train(recipe, len(tokenizer) > vocabulary)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if recipe.sample_packing and not getattr(model, "_supports_attention_backend", False):
        raise FtctlError(
            f"sample_packing: {type(model).__name__} does not take packed sequences (position_ids "
            "through transformers' attention interface)",
            hint="set sample_packing: false for this model",
        )
    return Base(model, tokenizer, tokenizer_changed)


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


def load_tokenizer(
    source: str, revision: str | None, recipe: Recipe, where: str, *, local_only: bool = False
) -> Any:
    from transformers import AutoTokenizer

    return _loading(
        "tokenizer",
        source,
        where,
        lambda: AutoTokenizer.from_pretrained(
            source,
            revision=revision,
            trust_remote_code=recipe.trust_remote_code,
            local_files_only=local_only,
        ),
    )


def load_model(
    source: str,
    revision: str | None,
    recipe: Recipe,
    cuda: bool,
    where: str = "base_model",
    *,
    local_only: bool = False,
) -> Any:
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
    if local_only:
        # transformers 5 does not pass local_files_only on to its adapter_config.json lookup,
        # which would ask the Hub (with retries) for a file no cache holds.
        kwargs.update(local_files_only=True, adapter_kwargs={"local_files_only": True})
    model = _loading(
        "model",
        source,
        where,
        lambda: AutoModelForCausalLM.from_pretrained(source, revision=revision, **kwargs),
    )
    # Training never reuses a KV cache; with one, transformers skips the block-diagonal mask of packed rows
    # and their samples would attend to each other (tests/worker/test_loading.py shows it).
    model.config.use_cache = False
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=recipe.gradient_checkpointing
        )  # type: ignore[no-untyped-call]
    return model


def _loading(what: str, source: str, where: str, load_it: Callable[[], Any]) -> Any:
    """``load_it()``, its failures (a missing or corrupt file, a download cut off) as one line."""
    from safetensors import SafetensorError

    try:
        return load_it()
    except (OSError, ValueError, SafetensorError) as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise FtctlError(
            f"{where}: the {what} does not load from {source} ({first})",
            hint="check that it is a complete transformers model (config.json, weights, tokenizer files)",
        ) from None


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
