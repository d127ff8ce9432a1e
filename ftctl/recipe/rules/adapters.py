"""Rules on quantization and adapters: QLoRA, LoRA options, target modules, unfrozen parameters."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ftctl.recipe.model import Recipe
from ftctl.recipe.rules.engine import Violation, given, rule


@rule
def quantized_needs_adapter(r: Recipe) -> Iterator[Violation]:
    for key in ("load_in_4bit", "load_in_8bit"):
        if getattr(r, key) and r.adapter is None:
            yield Violation(
                (key,),
                "quantized loading needs an adapter",
                "set adapter: qlora (4-bit) or lora (8-bit); a full fine-tune cannot train "
                "quantized weights",
            )


@rule
def qlora_needs_4bit(r: Recipe) -> Iterator[Violation]:
    if r.adapter == "qlora" and not r.load_in_4bit and not r.load_in_8bit:
        yield Violation(("adapter",), "qlora needs load_in_4bit: true", "add load_in_4bit: true")


@rule
def qlora_not_8bit(r: Recipe) -> Iterator[Violation]:
    if r.adapter == "qlora" and r.load_in_8bit:
        yield Violation(
            ("load_in_8bit",),
            "adapter: qlora loads the model in 4-bit, not 8-bit",
            "use load_in_4bit: true, or adapter: lora with load_in_8bit",
        )


@rule
def one_quantization(r: Recipe) -> Iterator[Violation]:
    if r.load_in_4bit and r.load_in_8bit:
        yield Violation(
            ("load_in_8bit",), "load_in_4bit and load_in_8bit exclude each other", "keep one"
        )


@rule
def bnb_options_need_4bit(r: Recipe) -> Iterator[Violation]:
    if r.load_in_4bit:
        return
    for key in ("bnb_4bit_quant_type", "bnb_4bit_use_double_quant", "bnb_4bit_compute_dtype"):
        if given(r, key):
            yield Violation(
                (key,), "has no effect without load_in_4bit: true", "remove it or set load_in_4bit"
            )


_LORA_KEYS = (
    "lora_model_dir",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "lora_target_linear",
    "lora_modules_to_save",
    "lora_fan_in_fan_out",
    "use_rslora",
    "use_dora",
)


@rule
def lora_options_need_adapter(r: Recipe) -> Iterator[Violation]:
    if r.adapter is not None:
        return
    for key in _LORA_KEYS:
        if given(r, key):
            yield Violation(
                (key,),
                "has no effect without an adapter",
                "set adapter: lora (or qlora), or remove it for a full fine-tune",
            )


@rule
def target_modules_are_regexes(r: Recipe) -> Iterator[Violation]:
    modules = r.lora_target_modules
    # One string is a regex matched against each full module name (PEFT's reading of it).
    patterns = [((), modules)] if isinstance(modules, str) else list(enumerate(modules or ()))
    for i, pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            yield Violation(
                ("lora_target_modules", *((i,) if isinstance(i, int) else ())),
                f"'{pattern}' is not a valid regular expression ({exc.msg})",
                "write a module name such as q_proj or a valid regex",
            )


@rule
def unfrozen_parameters_are_regexes(r: Recipe) -> Iterator[Violation]:
    for i, pattern in enumerate(r.unfrozen_parameters or ()):
        try:
            re.compile(pattern)
        except re.error as exc:
            yield Violation(
                ("unfrozen_parameters", i),
                f"'{pattern}' is not a valid regular expression ({exc.msg})",
                "fix the pattern",
            )


@rule
def unfrozen_parameters_need_full_finetune(r: Recipe) -> Iterator[Violation]:
    if r.unfrozen_parameters and r.adapter is not None:
        yield Violation(
            ("unfrozen_parameters",),
            f"selects weights for a full fine-tune; adapter: {r.adapter} trains only its own",
            "remove unfrozen_parameters, or remove adapter for a full fine-tune",
        )


@rule
def model_configs_are_the_base(r: Recipe) -> Iterator[Violation]:
    for key in ("base_model_config", "tokenizer_config"):
        value = getattr(r, key)
        if value is not None and value != r.base_model:
            yield Violation(
                (key,),
                "ftctl loads the model and tokenizer from base_model, the input the lock pins",
                "remove it; a different config or tokenizer would not be locked or hashed",
            )


@rule
def unfrozen_not_reentrant(r: Recipe) -> Iterator[Violation]:
    kwargs = r.gradient_checkpointing_kwargs
    if r.unfrozen_parameters and kwargs is not None and kwargs.use_reentrant is True:
        yield Violation(
            ("gradient_checkpointing_kwargs", "use_reentrant"),
            "unfrozen_parameters does not work with reentrant gradient checkpointing",
            "set use_reentrant: false",
        )
