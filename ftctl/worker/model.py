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
    torch.backends.cuda.matmul.allow_tf32 = tf32_enabled(recipe, tf32_supported())
    set_seed(recipe.seed)


def tf32_supported() -> bool:
    """Whether this machine's GPU has TF32 (Ampere or newer); False without CUDA."""
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8)


def tf32_enabled(recipe: Recipe, supported: bool) -> bool:
    """``tf32: true``, or ``auto`` where the GPU supports it (never on the CPU)."""
    return recipe.tf32 is True or (recipe.tf32 == "auto" and supported)


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
    if cuda:  # the kernels are CUDA-only; preflight refused them elsewhere
        from ftctl.worker.kernels import apply_cut_cross_entropy, check_liger

        check_liger(recipe, model)
        model = apply_cut_cross_entropy(recipe, model)
    if base.merge is not None:
        from peft import PeftModel

        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))  # the upstream added tokens
        model = PeftModel.from_pretrained(model, str(base.merge)).merge_and_unload()
    vocabulary = len(tokenizer)
    tokenizer_changed = add_tokens(recipe, tokenizer, model)
    check_new_tokens_train(recipe, len(tokenizer) > vocabulary)
    if recipe.unfrozen_parameters and recipe.adapter is None:
        freeze_all_but(model, recipe.unfrozen_parameters)
    if recipe.lora_model_dir is not None:
        model = load_adapter(recipe, root, lock, model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if recipe.sample_packing and not getattr(model, "_supports_attention_backend", False):
        raise FtctlError(
            f"sample_packing: {type(model).__name__} does not take packed sequences (position_ids "
            "through transformers' attention interface)",
            hint="set sample_packing: false for this model",
        )
    return Base(model, tokenizer, tokenizer_changed)


# The module and the pip package each flash-attention implementation needs.
ATTENTION_PACKAGES = {
    "flash_attention_2": ("flash_attn", "flash-attn"),
    "flash_attention_3": ("flash_attn_interface", "flash-attn-3"),
}


def attention_name(recipe: Recipe) -> str | None:
    """The attn_implementation a recipe means: its own, flash_attention, sdp_attention, or None (the model's)."""
    if recipe.attn_implementation is not None:
        return recipe.attn_implementation
    if recipe.flash_attention:
        return "flash_attention_2"
    if recipe.sdp_attention:
        return "sdpa"
    return None


def attention_implementation(recipe: Recipe, flash_installed: bool | None = None) -> str | None:
    """transformers' attn_implementation, with the package a flash kernel needs checked."""
    name = attention_name(recipe)
    if name in ATTENTION_PACKAGES:
        module, package = ATTENTION_PACKAGES[name]
        installed = (
            importlib.util.find_spec(module) is not None
            if flash_installed is None
            else flash_installed
        )
        if not installed:
            key = "attn_implementation" if recipe.attn_implementation else "flash_attention"
            raise FtctlError(
                f"{key}: the {package} package is not installed",
                hint=f"pip install {package} ('ftctl[gpu]') on the GPU host, or remove {key}",
            )
    return name


def uses_flash(recipe: Recipe) -> bool:
    """Whether attention runs flash kernels, which train packed rows padding-free."""
    return attention_name(recipe) in ATTENTION_PACKAGES


def memory_limits(recipe: Recipe, gpus: int) -> dict[Any, str] | None:
    """``max_memory`` for from_pretrained: the recipe's, or gpu_memory_limit (GiB when a number) per GPU."""
    if recipe.max_memory is not None:
        return {int(k) if k.isdigit() else k: v for k, v in recipe.max_memory.items()}
    limit = recipe.gpu_memory_limit
    if limit is None:
        return None
    text = f"{limit}GiB" if isinstance(limit, int) else limit.replace(" ", "")
    return dict.fromkeys(range(gpus), text)


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
    if cuda:
        import torch

        limits = memory_limits(recipe, torch.cuda.device_count())
        if limits is not None:  # a memory limit only applies with accelerate's device map
            kwargs.update(device_map="auto", max_memory=limits)
    return kwargs


def load_tokenizer(
    source: str, revision: str | None, recipe: Recipe, where: str, *, local_only: bool = False
) -> Any:
    tokenizer_class = _transformers_class(
        recipe.tokenizer_type or "AutoTokenizer", "tokenizer_type"
    )
    return _loading(
        "tokenizer",
        source,
        where,
        lambda: tokenizer_class.from_pretrained(
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

    model_class = _transformers_class(recipe.model_type or "AutoModelForCausalLM", "model_type")
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
        lambda: model_class.from_pretrained(source, revision=revision, **kwargs),
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


def _transformers_class(name: str, key: str) -> Any:
    """A transformers class by the name model_type/tokenizer_type gives (a closed namespace, never a path)."""
    import transformers

    found = getattr(transformers, name, None)
    if found is None or not hasattr(found, "from_pretrained"):
        raise FtctlError(
            f"{key}: transformers has no class {name}",
            hint="use a class transformers exports, or remove it (the Auto class reads the config)",
        )
    return found


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
    missing = [t for t in recipe.eot_tokens or () if t not in tokenizer.get_vocab()]
    if missing:  # an end-of-turn marker must be one token, never split into pieces
        changed = bool(tokenizer.add_tokens(missing, special_tokens=True)) or changed
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


def freeze_all_but(model: Any, patterns: list[str]) -> None:
    """unfrozen_parameters: a full fine-tune trains only the parameters whose names match (re.match)."""
    import re

    compiled = [re.compile(p) for p in patterns]
    trained = 0
    for name, parameter in model.named_parameters():
        parameter.requires_grad = any(c.match(name) for c in compiled)
        trained += parameter.requires_grad
    if not trained:
        raise FtctlError(
            "unfrozen_parameters: no parameter of the model matches",
            hint="match names such as model.layers.0.mlp.down_proj.weight",
        )


def load_adapter(recipe: Recipe, root: Path, lock: Lockfile | None, model: Any) -> Any:
    """lora_model_dir: training continues from that adapter (local, or a Hub id at the locked revision)."""
    from peft import PeftModel

    from ftctl.recipe.refs import split_revision
    from ftctl.worker.inputs import locked_revision, resolve_path

    ref = str(recipe.lora_model_dir)
    local = resolve_path(root, ref)
    if local.exists():
        source, revision = str(local), None
    else:
        source, revision = split_revision(ref)
        revision = locked_revision(lock, ref, "model") or revision
    return _loading(
        "adapter",
        source,
        f"lora_model_dir {ref}",
        lambda: PeftModel.from_pretrained(model, source, revision=revision, is_trainable=True),
    )
