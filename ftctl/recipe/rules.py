"""Cross-field rules: combinations of recipe fields that cannot train as written.

Each rule is a plain function from a valid-per-field :class:`Recipe` to the
violations it finds; rules only look, they never change the recipe. Where
Axolotl silently auto-fixes a combination, ftctl reports it instead (see
REFERENCE section 1). Every violation points at the key the user should edit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, cast

from ftctl.recipe.datasets import KTO_TYPES, PAIRED_TYPES, SFT_TYPES
from ftctl.recipe.model import Recipe
from ftctl.recipe.names import BNB_8BIT_OPTIMIZERS

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Violation:
    path: KeyPath
    message: str
    hint: str | None = None
    rule: str = ""  # the name of the rule that found it, filled in by check_rules


Rule = Callable[[Recipe], Iterator[Violation]]
RULES: list[Rule] = []


def rule(func: Rule) -> Rule:
    RULES.append(func)
    return func


def check_rules(recipe: Recipe, unknown: frozenset[str] = frozenset()) -> list[Violation]:
    """Every violation of every rule, in rule order.

    ``unknown`` names fields whose written value was invalid (and left out of
    ``recipe``): a rule that reads any of them cannot be trusted, so its
    violations are dropped. This lets one run report rule violations next to
    value errors without inventing problems from the stand-in values.
    """
    if not unknown:
        return [replace(v, rule=check.__name__) for check in RULES for v in check(recipe)]
    found: list[Violation] = []
    for check in RULES:
        reads = _RecordingRecipe(recipe)
        violations = list(check(cast(Recipe, reads)))
        if reads.fields & unknown:
            continue
        found.extend(replace(v, rule=check.__name__) for v in violations)
    return found


class _RecordingRecipe:
    """A read-only view of a recipe that records which fields a rule reads."""

    def __init__(self, recipe: Recipe) -> None:
        self._recipe = recipe
        self.fields: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        self.fields.add(name)
        return getattr(self._recipe, name)


def _given(recipe: Recipe, name: str) -> bool:
    getattr(recipe, name)  # counts as reading the field (see check_rules)
    return name in recipe.model_fields_set


def _has_eval_set(recipe: Recipe) -> bool:
    return recipe.val_set_size > 0 or recipe.test_datasets is not None


# --- quantization and adapters -------------------------------------------------


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
        if _given(r, key):
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
        if _given(r, key):
            yield Violation(
                (key,),
                "has no effect without an adapter",
                "set adapter: lora (or qlora), or remove it for a full fine-tune",
            )


@rule
def target_modules_are_regexes(r: Recipe) -> Iterator[Violation]:
    for i, pattern in enumerate(r.lora_target_modules or ()):
        try:
            re.compile(pattern)
        except re.error as exc:
            yield Violation(
                ("lora_target_modules", i),
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
def unfrozen_not_reentrant(r: Recipe) -> Iterator[Violation]:
    kwargs = r.gradient_checkpointing_kwargs
    if r.unfrozen_parameters and kwargs is not None and kwargs.use_reentrant is True:
        yield Violation(
            ("gradient_checkpointing_kwargs", "use_reentrant"),
            "unfrozen_parameters does not work with reentrant gradient checkpointing",
            "set use_reentrant: false",
        )


# --- data ----------------------------------------------------------------------


@rule
def needs_data(r: Recipe) -> Iterator[Violation]:
    if r.datasets is None and r.pretraining_dataset is None:
        yield Violation(
            ("datasets",), "required: the recipe trains on nothing", "add a datasets: list"
        )


@rule
def one_kind_of_data(r: Recipe) -> Iterator[Violation]:
    if r.datasets is not None and r.pretraining_dataset is not None:
        yield Violation(
            ("pretraining_dataset",),
            "datasets and pretraining_dataset exclude each other",
            "keep one; use type: completion in datasets for a finite text corpus",
        )


@rule
def stream_needs_max_steps(r: Recipe) -> Iterator[Violation]:
    for key in ("pretraining_dataset", "streaming"):
        if getattr(r, key) and r.max_steps is None:
            yield Violation(
                (key,),
                "a streamed dataset has no length, so training needs max_steps",
                "set max_steps",
            )


@rule
def no_val_split_when_streaming(r: Recipe) -> Iterator[Violation]:
    if (r.streaming or r.pretraining_dataset) and r.val_set_size > 0:
        yield Violation(
            ("val_set_size",),
            "cannot split a validation set off a streamed dataset",
            "set val_set_size: 0 and use test_datasets",
        )


@rule
def val_set_size_shape(r: Recipe) -> Iterator[Violation]:
    if r.val_set_size >= 1 and r.val_set_size != int(r.val_set_size):
        yield Violation(
            ("val_set_size",),
            f"{r.val_set_size} is neither a fraction below 1 nor a whole number of rows",
            "write e.g. 0.05 or 500",
        )


@rule
def test_datasets_or_split(r: Recipe) -> Iterator[Violation]:
    if r.test_datasets is not None and r.val_set_size > 0:
        yield Violation(
            ("val_set_size",),
            "test_datasets and a non-zero val_set_size exclude each other",
            "set val_set_size: 0 or remove test_datasets",
        )


@rule
def jinja_needs_template(r: Recipe) -> Iterator[Violation]:
    if r.chat_template == "jinja" and r.chat_template_jinja is None:
        yield Violation(
            ("chat_template",), "jinja needs chat_template_jinja", "add the template text"
        )
    for i, entry in enumerate(r.datasets or ()):
        if getattr(entry, "chat_template", None) == "jinja" and r.chat_template_jinja is None:
            yield Violation(
                ("datasets", i, "chat_template"),
                "jinja needs chat_template_jinja at the top level",
                "add the template text",
            )


@rule
def jinja_text_needs_jinja(r: Recipe) -> Iterator[Violation]:
    uses_jinja = r.chat_template == "jinja" or any(
        getattr(entry, "chat_template", None) == "jinja" for entry in r.datasets or ()
    )
    if r.chat_template_jinja is not None and not uses_jinja:
        yield Violation(
            ("chat_template_jinja",),
            f"is ignored while chat_template is {r.chat_template}",
            "set chat_template: jinja",
        )


@rule
def roles_to_train_not_empty(r: Recipe) -> Iterator[Violation]:
    for i, entry in enumerate(r.datasets or ()):
        if (
            getattr(entry, "roles_to_train", None) == []
            and getattr(entry, "train_on_eos", "") == "none"
        ):
            yield Violation(
                ("datasets", i, "roles_to_train"),
                "nothing in this dataset would be trained",
                "list the roles to train, e.g. [assistant]",
            )


# --- preference training -------------------------------------------------------


def _dataset_lists(r: Recipe) -> Iterator[tuple[str, int, str]]:
    for key in ("datasets", "test_datasets"):
        for i, entry in enumerate(getattr(r, key) or ()):
            yield key, i, entry.type


@rule
def dataset_types_match_trainer(r: Recipe) -> Iterator[Violation]:
    for key, i, kind in _dataset_lists(r):
        path = (key, i, "type")
        if r.rl is None and kind not in SFT_TYPES:
            yield Violation(
                path,
                f"{kind} holds preference rows, but the recipe has no rl trainer",
                "set rl: kto" if kind in KTO_TYPES else "set rl: dpo (or ipo, orpo)",
            )
        elif r.rl == "kto" and kind not in KTO_TYPES:
            yield Violation(path, f"rl: kto needs kto rows, not {kind}", "use type: kto")
        elif r.rl in ("dpo", "ipo", "orpo") and kind not in PAIRED_TYPES:
            yield Violation(
                path,
                f"rl: {r.rl} needs paired preference rows, not {kind}",
                "use type: dpo ({prompt, chosen, rejected}) or chatml.intel",
            )


@rule
def rl_options_need_rl(r: Recipe) -> Iterator[Violation]:
    if r.rl is not None:
        return
    for key in (
        "rl_beta",
        "dpo_loss_type",
        "dpo_loss_weights",
        "dpo_label_smoothing",
        "max_prompt_len",
    ):
        if _given(r, key):
            yield Violation(
                (key,), "has no effect without an rl trainer", "set rl: dpo, ipo, orpo or kto"
            )


@rule
def trainer_specific_options(r: Recipe) -> Iterator[Violation]:
    if r.orpo_alpha is not None and r.rl != "orpo":
        yield Violation(("orpo_alpha",), "only applies to rl: orpo", "remove it or set rl: orpo")
    for key in ("kto_desirable_weight", "kto_undesirable_weight"):
        if getattr(r, key) is not None and r.rl != "kto":
            yield Violation((key,), "only applies to rl: kto", "remove it or set rl: kto")


@rule
def dpo_weights_need_types(r: Recipe) -> Iterator[Violation]:
    if r.dpo_loss_weights is None:
        return
    if r.dpo_loss_type is None:
        yield Violation(
            ("dpo_loss_weights",), "needs dpo_loss_type", "list the loss types the weights apply to"
        )
    elif len(r.dpo_loss_weights) != len(r.dpo_loss_type):
        yield Violation(
            ("dpo_loss_weights",),
            f"has {len(r.dpo_loss_weights)} weights for {len(r.dpo_loss_type)} loss types",
            "give one weight per dpo_loss_type entry",
        )


@rule
def prompt_fits_sequence(r: Recipe) -> Iterator[Violation]:
    if r.max_prompt_len is not None and r.max_prompt_len >= r.sequence_len:
        yield Violation(
            ("max_prompt_len",),
            f"{r.max_prompt_len} leaves no room for the completion in sequence_len {r.sequence_len}",
            "make it smaller than sequence_len",
        )


# --- packing -------------------------------------------------------------------


@rule
def no_packing_with_rl(r: Recipe) -> Iterator[Violation]:
    if r.sample_packing and r.rl is not None:
        yield Violation(
            ("sample_packing",),
            f"sample packing does not work with rl: {r.rl}",
            "set sample_packing: false",
        )


@rule
def no_eval_packing_with_kto(r: Recipe) -> Iterator[Violation]:
    if r.rl == "kto" and r.eval_sample_packing:
        yield Violation(("eval_sample_packing",), "does not work with rl: kto", "set it to false")


@rule
def eval_packing_needs_packing(r: Recipe) -> Iterator[Violation]:
    if r.eval_sample_packing and not r.sample_packing and r.rl is None:
        yield Violation(
            ("eval_sample_packing",),
            "needs sample_packing: true",
            "enable sample_packing or remove it",
        )


@rule
def packing_pads(r: Recipe) -> Iterator[Violation]:
    if r.sample_packing and r.pad_to_sequence_len is False:
        yield Violation(
            ("pad_to_sequence_len",),
            "packed batches are always padded to sequence_len",
            "remove pad_to_sequence_len or set it to true",
        )


@rule
def eval_table_without_eval_packing(r: Recipe) -> Iterator[Violation]:
    if r.sample_packing and r.eval_table_size and r.eval_sample_packing is not False:
        yield Violation(
            ("eval_table_size",),
            "the eval table cannot decode packed evaluation batches",
            "set eval_sample_packing: false",
        )


# --- batch, schedule, precision --------------------------------------------------


@rule
def two_of_three_batch_sizes(r: Recipe) -> Iterator[Violation]:
    given = [
        k
        for k in ("micro_batch_size", "gradient_accumulation_steps", "batch_size")
        if getattr(r, k)
    ]
    if len(given) < 2:
        yield Violation(
            (given[0],) if given else (),
            "the batch is underdetermined",
            "set two of micro_batch_size, gradient_accumulation_steps, batch_size",
        )


@rule
def accumulation_or_batch_size(r: Recipe) -> Iterator[Violation]:
    if r.gradient_accumulation_steps is not None and r.batch_size is not None:
        yield Violation(
            ("batch_size",),
            "gradient_accumulation_steps and batch_size exclude each other",
            "keep micro_batch_size with one of them",
        )


@rule
def one_warmup(r: Recipe) -> Iterator[Violation]:
    if r.warmup_steps is not None and r.warmup_ratio is not None:
        yield Violation(
            ("warmup_ratio",), "warmup_steps and warmup_ratio exclude each other", "keep one"
        )


@rule
def warmup_ends(r: Recipe) -> Iterator[Violation]:
    if r.warmup_steps is not None and r.max_steps is not None and r.warmup_steps >= r.max_steps:
        yield Violation(
            ("warmup_steps",),
            f"{r.warmup_steps} >= max_steps {r.max_steps}: the learning rate never leaves warmup",
            "lower warmup_steps",
        )


@rule
def one_half_precision(r: Recipe) -> Iterator[Violation]:
    if r.bf16 is True and r.fp16:
        yield Violation(
            ("fp16",), "bf16 and fp16 exclude each other", "keep one (bf16 on Ampere or newer)"
        )


@rule
def one_attention(r: Recipe) -> Iterator[Violation]:
    if r.flash_attention and r.sdp_attention:
        yield Violation(
            ("sdp_attention",), "flash_attention and sdp_attention exclude each other", "keep one"
        )


@rule
def checkpointing_kwargs_need_checkpointing(r: Recipe) -> Iterator[Violation]:
    if r.gradient_checkpointing_kwargs is not None and not r.gradient_checkpointing:
        yield Violation(
            ("gradient_checkpointing_kwargs",),
            "has no effect without gradient_checkpointing: true",
            "enable gradient_checkpointing or remove it",
        )


@rule
def one_memory_limit(r: Recipe) -> Iterator[Violation]:
    if r.max_memory is not None and r.gpu_memory_limit is not None:
        yield Violation(
            ("gpu_memory_limit",), "max_memory and gpu_memory_limit exclude each other", "keep one"
        )


# --- distributed ---------------------------------------------------------------


@rule
def deepspeed_or_fsdp(r: Recipe) -> Iterator[Violation]:
    if r.deepspeed is not None and r.fsdp:
        yield Violation(("fsdp",), "deepspeed and fsdp exclude each other", "keep one")


@rule
def fsdp_config_needs_fsdp(r: Recipe) -> Iterator[Violation]:
    if r.fsdp_config is not None and not r.fsdp:
        yield Violation(
            ("fsdp_config",), "has no effect without fsdp", "add fsdp: [full_shard, auto_wrap]"
        )


@rule
def fsdp_no_8bit_optimizer(r: Recipe) -> Iterator[Violation]:
    if r.fsdp and r.optimizer in BNB_8BIT_OPTIMIZERS:
        yield Violation(
            ("optimizer",),
            f"{r.optimizer} keeps 8-bit state that FSDP cannot shard",
            "use adamw_torch_fused (or adamw_torch) with fsdp",
        )


# --- evaluation and checkpoints --------------------------------------------------


@rule
def save_steps_need_step_strategy(r: Recipe) -> Iterator[Violation]:
    if r.save_steps is not None and r.save_strategy not in (None, "steps"):
        yield Violation(
            ("save_strategy",),
            f"{r.save_strategy} conflicts with save_steps",
            "remove save_steps or set save_strategy: steps",
        )
    if r.save_steps is not None and r.saves_per_epoch is not None:
        yield Violation(
            ("saves_per_epoch",), "saves_per_epoch and save_steps exclude each other", "keep one"
        )


@rule
def best_checkpoint_needs_metric(r: Recipe) -> Iterator[Violation]:
    if r.save_strategy == "best" and r.metric_for_best_model is None:
        yield Violation(
            ("save_strategy",), "best needs metric_for_best_model", "add it, e.g. eval_loss"
        )


@rule
def eval_steps_need_step_strategy(r: Recipe) -> Iterator[Violation]:
    if r.eval_steps is None:
        return
    if r.eval_strategy not in (None, "steps"):
        yield Violation(
            ("eval_strategy",),
            f"{r.eval_strategy} conflicts with eval_steps",
            "remove eval_steps or set eval_strategy: steps",
        )
    if r.evals_per_epoch is not None:
        yield Violation(
            ("evals_per_epoch",), "evals_per_epoch and eval_steps exclude each other", "keep one"
        )
    if not _has_eval_set(r):
        yield Violation(
            ("eval_steps",),
            "there is nothing to evaluate: val_set_size is 0 and there are no test_datasets",
            "set val_set_size (e.g. 0.05) or remove eval_steps",
        )


@rule
def early_stopping_needs_steps(r: Recipe) -> Iterator[Violation]:
    if r.early_stopping_patience is None:
        return
    if r.save_steps is None or r.eval_steps is None:
        yield Violation(
            ("early_stopping_patience",),
            "needs save_steps and eval_steps",
            "set both, with save_steps a multiple of eval_steps",
        )
    elif r.save_steps % r.eval_steps != 0:
        yield Violation(
            ("save_steps",),
            f"{r.save_steps} is not a multiple of eval_steps {r.eval_steps}, which early stopping needs",
            "make save_steps a multiple of eval_steps",
        )


@rule
def best_model_needs_eval_set(r: Recipe) -> Iterator[Violation]:
    for key in ("load_best_model_at_end", "early_stopping_patience"):
        if getattr(r, key) and not _has_eval_set(r):
            yield Violation(
                (key,),
                "needs an evaluation set",
                "set val_set_size (e.g. 0.05) or add test_datasets",
            )
