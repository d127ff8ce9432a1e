"""Rules on how training runs: packing, batch and schedule, precision, distribution, evaluation, checkpoints."""

from __future__ import annotations

from collections.abc import Iterator

from ftctl.recipe.model import Recipe
from ftctl.recipe.names import BNB_8BIT_OPTIMIZERS
from ftctl.recipe.rules.engine import Violation, has_eval_set, rule, uses_fsdp


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
def attention_agrees(r: Recipe) -> Iterator[Violation]:
    implied = "flash_attention_2" if r.flash_attention else "sdpa" if r.sdp_attention else None
    if (
        r.attn_implementation is not None
        and implied is not None
        and r.attn_implementation != implied
    ):
        key = "flash_attention" if r.flash_attention else "sdp_attention"
        yield Violation(
            ("attn_implementation",),
            f"{r.attn_implementation} contradicts {key}: true ({implied})",
            "keep one of them",
        )


@rule
def one_cross_entropy_kernel(r: Recipe) -> Iterator[Violation]:
    kernels = [
        k for k in ("liger_cross_entropy", "liger_fused_linear_cross_entropy", "cut_cross_entropy")
        if getattr(r, k)
    ]  # fmt: skip
    if len(kernels) > 1:
        yield Violation(
            (kernels[-1],),
            f"{' and '.join(kernels)} each replace the loss; only one can",
            "keep one",
        )


@rule
def save_as_safetensors(r: Recipe) -> Iterator[Violation]:
    if not r.save_safetensors:
        yield Violation(
            ("save_safetensors",),
            "ftctl saves adapters and models as safetensors only",
            "remove it (pickled weights cannot be verified as data)",
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
    if r.deepspeed is not None and uses_fsdp(r):
        where = "fsdp" if r.fsdp else "fsdp_config"
        yield Violation((where,), "deepspeed and fsdp exclude each other", "keep one")


@rule
def fsdp_no_8bit_optimizer(r: Recipe) -> Iterator[Violation]:
    if uses_fsdp(r) and r.optimizer in BNB_8BIT_OPTIMIZERS:
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
    if not has_eval_set(r):
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
        if getattr(r, key) and not has_eval_set(r):
            yield Violation(
                (key,),
                "needs an evaluation set",
                "set val_set_size (e.g. 0.05) or add test_datasets",
            )
