"""The trl trainer a recipe means, and the training itself.

One set of transformers training arguments (batching, schedule, precision,
evaluation and checkpoint cadence, tracking) shared by trl's SFT, DPO/IPO,
KTO and ORPO trainers; LoRA through peft. Packed rows train padding-free with
flash attention, otherwise through a collator that keeps samples apart.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftctl.recipe.model import Recipe
from ftctl.render.terminal import info, warn
from ftctl.worker.data import Data
from ftctl.worker.distributed import fsdp_arguments
from ftctl.worker.kernels import idle_plugins, liger_arguments
from ftctl.worker.model import Base, tf32_enabled, tf32_supported, uses_flash


@dataclass(frozen=True)
class Trained:
    """What a finished training produced, for the run directory."""

    model: Any  # a PeftModel (LoRA) or the full model (the best one with load_best_model_at_end)
    log_history: list[dict[str, Any]]
    training_loss: float
    steps: int
    tokens_seen: int  # the trainer's count, else the rows' tokens
    trained_tokens: int | None  # the rows' own tokens times the epochs (None with max_steps)
    wall_time_s: float
    main_process: bool  # only the main process writes the run directory


def build(
    recipe: Recipe,
    cuda: bool,
    out: Path,
    root: Path,
    base: Base,
    data: Data,
    *,
    checkpoint_seconds: float | None = None,
    progress: Path | None = None,
) -> Any:
    """The trainer for ``recipe`` (derived: pad_to_sequence_len is filled in), ready to train.

    ``checkpoint_seconds``: apply's checkpoint cadence (wall-clock) for a recipe that saves
    none, so an interrupted run can resume; checkpoints change nothing that is trained, and a
    short run saves none at all (it costs no more than a run without apply).
    ``progress``: a JSON-lines file that gets one event per logged step, for apply to show.
    """
    import os

    import torch

    for line in [*idle_plugins(recipe), *ignored_settings(recipe, data.eval is not None)]:
        warn(line)
    os.environ.update(tracking_environment(recipe))
    common = training_arguments(
        recipe,
        cuda,
        out,
        bf16_supported=cuda and torch.cuda.is_bf16_supported(),
        has_eval=data.eval is not None,
        root=root,
        has_tf32=tf32_supported(),
    )
    timed_saves = checkpoint_seconds is not None and common.get("save_strategy") == "no"
    if timed_saves:
        common["save_total_limit"] = 2
    if progress is not None:
        common["disable_tqdm"] = True  # apply draws its own bar from the progress events
        common["include_num_input_tokens_seen"] = "non_padding"  # for tokens/s; only counts
    # With lora_model_dir the model already holds the adapter to train on.
    peft_config = None if recipe.lora_model_dir is not None else lora_config(recipe)
    trainer = trl_trainer(
        recipe, common, base.model, base.tokenizer, peft_config, data.train, data.eval
    )
    if recipe.early_stopping_patience:
        from transformers import EarlyStoppingCallback

        trainer.add_callback(
            EarlyStoppingCallback(early_stopping_patience=recipe.early_stopping_patience)
        )
    if not sys.stderr.isatty():
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(_plain_progress())
    if progress is not None:
        trainer.add_callback(_progress_events(progress))
    if timed_saves and checkpoint_seconds is not None:
        trainer.add_callback(_timed_checkpoints(checkpoint_seconds))
    return trainer


def train(trainer: Any, recipe: Recipe, data: Data, resume_from: Path | None = None) -> Trained:
    # Tokens of the rows themselves (no padding), the same for packed and unpacked batches.
    epochs = recipe.num_epochs if not recipe.max_steps else None
    trained_tokens = (
        int(sum(map(len, data.train["input_ids"])) * epochs) if epochs and not recipe.rl else None
    )
    clock = time.perf_counter()
    # transformers restores the model, optimizer, scheduler, RNG states and data position.
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    wall = time.perf_counter() - clock
    return Trained(
        model=trainer.model,
        log_history=list(trainer.state.log_history),
        training_loss=result.training_loss,
        steps=result.global_step,
        tokens_seen=int(trainer.state.num_input_tokens_seen or data.tokens),
        trained_tokens=trained_tokens,
        wall_time_s=wall,
        main_process=trainer.is_world_process_zero(),
    )


def ignored_settings(recipe: Recipe, has_eval: bool) -> list[str]:
    """Settings that have nothing to act on in this run, each said in a warning line."""
    lines = []
    if not has_eval and (recipe.evals_per_epoch or recipe.eval_strategy not in (None, "no")):
        # As Axolotl: an evaluation cadence without an evaluation set skips evaluation.
        lines.append(
            "evals_per_epoch/eval_strategy: there is no evaluation set (val_set_size 0, no "
            "test_datasets), so evaluation is skipped"
        )
    if recipe.eval_table_size:
        lines.append("eval_table_size: ftctl logs no table of evaluation samples; ignored")
    return lines


# Tracker settings the integrations read from the environment, by the recipe's key.
TRACKING_ENVIRONMENT = {
    "wandb_project": "WANDB_PROJECT",
    "wandb_entity": "WANDB_ENTITY",
    "wandb_run_id": "WANDB_RUN_ID",
    "wandb_watch": "WANDB_WATCH",
    "wandb_log_model": "WANDB_LOG_MODEL",
    "wandb_mode": "WANDB_MODE",
    "mlflow_tracking_uri": "MLFLOW_TRACKING_URI",
    "mlflow_experiment_name": "MLFLOW_EXPERIMENT_NAME",
}


def tracking_environment(recipe: Recipe) -> dict[str, str]:
    """Environment variables for wandb and mlflow (transformers' integrations read them there)."""
    return {
        variable: str(getattr(recipe, key))
        for key, variable in TRACKING_ENVIRONMENT.items()
        if getattr(recipe, key) is not None
    }


def lora_config(recipe: Recipe) -> Any:
    """peft's LoraConfig for ``adapter: lora`` or ``qlora`` (None for a full fine-tune).

    A string lora_target_modules goes to peft unchanged: peft full-matches it as a regex.
    """
    if recipe.adapter not in ("lora", "qlora"):
        return None
    from peft import LoraConfig

    targets: Any = recipe.lora_target_modules or (
        "all-linear" if recipe.lora_target_linear else None
    )
    return LoraConfig(
        r=recipe.lora_r,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        target_modules=targets,
        modules_to_save=recipe.lora_modules_to_save,
        use_rslora=recipe.use_rslora,
        use_dora=recipe.use_dora,
        fan_in_fan_out=recipe.lora_fan_in_fan_out,
        task_type="CAUSAL_LM",
    )


def training_arguments(
    recipe: Recipe,
    cuda: bool,
    out: Path,
    *,
    bf16_supported: bool,
    has_eval: bool,
    root: Path | None = None,
    has_tf32: bool = False,
) -> dict[str, Any]:
    """The transformers/trl training arguments a recipe means (shared by every trainer)."""
    batch = recipe.micro_batch_size or max(
        1, (recipe.batch_size or 1) // (recipe.gradient_accumulation_steps or 1)
    )
    accumulation = recipe.gradient_accumulation_steps or max(
        1, (recipe.batch_size or batch) // batch
    )
    report_to = [
        name
        for name, on in (
            ("wandb", recipe.wandb_project),
            ("mlflow", recipe.mlflow_tracking_uri),
            ("tensorboard", recipe.use_tensorboard),
        )
        if on
    ]
    evaluation: dict[str, Any] = {"eval_strategy": "no"}
    if has_eval:
        if recipe.eval_steps:
            evaluation = {"eval_strategy": "steps", "eval_steps": recipe.eval_steps}
        elif recipe.evals_per_epoch:
            evaluation = {
                "eval_strategy": "steps",
                "eval_steps": 1.0 / (recipe.evals_per_epoch * recipe.num_epochs),
            }
        else:
            evaluation = {"eval_strategy": recipe.eval_strategy or "epoch"}
    extra: dict[str, Any] = {}
    for key in ("adam_beta1", "adam_beta2", "adam_epsilon"):
        if getattr(recipe, key) is not None:
            extra[key] = getattr(recipe, key)
    scheduler: str = recipe.lr_scheduler
    if recipe.cosine_min_lr_ratio is not None and scheduler == "cosine":
        scheduler = "cosine_with_min_lr"
        extra["lr_scheduler_kwargs"] = {"min_lr_rate": recipe.cosine_min_lr_ratio}
    if recipe.deepspeed is not None:
        extra["deepspeed"] = str((root or Path.cwd()) / recipe.deepspeed)
    extra.update(fsdp_arguments(recipe))
    extra.update(liger_arguments(recipe))
    if recipe.group_by_length:
        extra["group_by_length"] = True
    return dict(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=batch,
        per_device_eval_batch_size=recipe.eval_batch_size or batch,
        gradient_accumulation_steps=accumulation,
        num_train_epochs=recipe.num_epochs,
        max_steps=recipe.max_steps or -1,
        learning_rate=recipe.learning_rate,
        lr_scheduler_type=scheduler,
        # transformers 5: a float below 1 is a ratio of the total steps (warmup_ratio is gone).
        warmup_steps=recipe.warmup_steps
        if recipe.warmup_steps is not None
        else (recipe.warmup_ratio or 0),
        weight_decay=recipe.weight_decay,
        max_grad_norm=recipe.max_grad_norm,
        optim=recipe.optimizer,
        logging_steps=recipe.logging_steps or 1,
        **_checkpoints(recipe, evaluation),
        report_to=report_to,
        run_name=recipe.wandb_run_name or recipe.wandb_name or recipe.mlflow_run_name,
        seed=recipe.seed,
        data_seed=recipe.seed,
        dataloader_num_workers=0,
        use_cpu=not cuda,
        bf16=cuda and (recipe.bf16 is True or (recipe.bf16 == "auto" and bf16_supported)),
        fp16=cuda and recipe.fp16,
        tf32=cuda and tf32_enabled(recipe, has_tf32),
        gradient_checkpointing=recipe.gradient_checkpointing,
        gradient_checkpointing_kwargs=(
            recipe.gradient_checkpointing_kwargs.model_dump(exclude_none=True)
            if recipe.gradient_checkpointing_kwargs
            else None
        ),
        neftune_noise_alpha=recipe.neftune_noise_alpha,
        max_length=recipe.sequence_len,
        disable_tqdm=not sys.stderr.isatty(),
        **evaluation,
        **extra,
    )


def _checkpoints(recipe: Recipe, evaluation: dict[str, Any]) -> dict[str, Any]:
    """Checkpoint cadence: none by default; the recipe's; matched to evaluation when the best model is kept."""
    best = recipe.load_best_model_at_end or recipe.early_stopping_patience is not None
    strategy = recipe.save_strategy
    out: dict[str, Any] = {}
    if strategy is None:
        if recipe.save_steps:
            strategy = "steps"
        elif recipe.saves_per_epoch:
            strategy = "steps"
            out["save_steps"] = 1.0 / (recipe.saves_per_epoch * recipe.num_epochs)
        elif best:
            strategy = evaluation.get("eval_strategy", "epoch")
            if "eval_steps" in evaluation:
                out["save_steps"] = evaluation["eval_steps"]
        else:
            strategy = "no"
    if recipe.save_steps:
        out["save_steps"] = recipe.save_steps
    out["save_strategy"] = strategy
    if recipe.save_total_limit:
        out["save_total_limit"] = recipe.save_total_limit
    if best:
        out["load_best_model_at_end"] = True
        out["metric_for_best_model"] = recipe.metric_for_best_model or "eval_loss"
        out["greater_is_better"] = (
            False if (recipe.metric_for_best_model or "eval_loss").endswith("loss") else None
        )
    return out


def trl_trainer(
    recipe: Recipe,
    common: dict[str, Any],
    model: Any,
    tokenizer: Any,
    peft_config: Any,
    dataset: Any,
    eval_dataset: Any = None,
) -> Any:
    """The trl trainer for the recipe: SFT, DPO/IPO, KTO or ORPO, on the same training arguments."""
    kwargs = {
        "model": model,
        "processing_class": tokenizer,
        "peft_config": peft_config,
        "train_dataset": dataset,
        "eval_dataset": eval_dataset,
    }
    if recipe.rl is None:
        from trl.trainer.sft_config import SFTConfig
        from trl.trainer.sft_trainer import SFTTrainer

        # Rows are tokenized, masked (and packed) by ftctl; pad_to_sequence_len gives every batch one shape.
        pad = recipe.sequence_len if recipe.pad_to_sequence_len else None
        varlen = recipe.sample_packing and uses_flash(recipe)
        config = SFTConfig(
            **common,
            packing=varlen,
            packing_strategy="bfd",
            padding_free=varlen,
            pad_to_multiple_of=pad,
            dataset_kwargs={"skip_prepare_dataset": True},
            remove_unused_columns=False,
        )
        if recipe.sample_packing and not varlen:
            kwargs["data_collator"] = packed_rows_collator(tokenizer.pad_token_id, pad)
        return SFTTrainer(args=config, **kwargs)
    beta = recipe.rl_beta if recipe.rl_beta is not None else 0.1
    if recipe.rl in ("dpo", "ipo"):
        from trl.trainer.dpo_config import DPOConfig
        from trl.trainer.dpo_trainer import DPOTrainer

        loss_type = list(recipe.dpo_loss_type or (["ipo"] if recipe.rl == "ipo" else ["sigmoid"]))
        dpo = DPOConfig(
            **common,
            beta=beta,
            loss_type=loss_type,
            loss_weights=recipe.dpo_loss_weights,
            label_smoothing=recipe.dpo_label_smoothing or 0.0,
        )
        return DPOTrainer(args=dpo, **kwargs)
    if recipe.rl == "kto":
        from trl.trainer.kto_config import KTOConfig
        from trl.trainer.kto_trainer import KTOTrainer

        kto = KTOConfig(
            **common,
            beta=beta,
            desirable_weight=recipe.kto_desirable_weight or 1.0,
            undesirable_weight=recipe.kto_undesirable_weight or 1.0,
        )
        return KTOTrainer(args=kto, **kwargs)
    from trl.experimental.orpo import (  # trl 1.16 keeps ORPO under experimental
        ORPOConfig,
        ORPOTrainer,
    )

    orpo = ORPOConfig(**common, beta=recipe.orpo_alpha if recipe.orpo_alpha is not None else 0.1)
    return ORPOTrainer(args=orpo, **kwargs)


def packed_rows_collator(pad_token_id: int, pad_to_multiple_of: int | None) -> Any:
    """Packed rows for SDPA/eager attention: one row per packed sequence, position_ids restarting per sample.

    Flash attention trains packed rows padding-free (trl flattens the batch and passes the sequence
    boundaries). SDPA would then attend over the whole flattened batch at quadratic cost, so here each
    packed row stays a row, and the attention mask is left out: transformers then builds a
    block-diagonal mask from position_ids, so samples never attend to each other. Right padding
    needs no mask under causal attention, and its labels are -100.
    """
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    inner = DataCollatorForLanguageModeling(
        pad_token_id=pad_token_id, return_position_ids=True, pad_to_multiple_of=pad_to_multiple_of
    )

    def collate(examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = inner(examples)
        batch.pop("attention_mask", None)
        return batch

    return collate


def _plain_progress() -> Any:
    """One line per logged step when output is not a terminal (a bar is shown on one)."""
    from transformers import TrainerCallback

    class PlainProgress(TrainerCallback):
        def on_log(
            self,
            args: Any,
            state: Any,
            control: Any,
            logs: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            if logs and "loss" in logs:
                info(
                    f"step {state.global_step}/{state.max_steps}  loss {float(logs['loss']):.4f}  "
                    f"lr {float(logs.get('learning_rate', 0)):.2e}"
                )

    return PlainProgress()


def _progress_events(path: Path) -> Any:
    """Append {step, max_steps, loss, lr, tokens, elapsed_s} per logged step to ``path`` (JSON lines)."""
    import json

    from transformers import TrainerCallback

    clock = time.perf_counter()

    class ProgressEvents(TrainerCallback):
        def on_log(
            self,
            args: Any,
            state: Any,
            control: Any,
            logs: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            if not logs or "loss" not in logs or not state.is_world_process_zero:
                return
            event = {
                "step": state.global_step,
                "max_steps": state.max_steps,
                "loss": float(logs["loss"]),
                "lr": float(logs.get("learning_rate", 0.0)),
                "tokens": int(state.num_input_tokens_seen or 0),
                "elapsed_s": round(time.perf_counter() - clock, 3),
            }
            with path.open("a", encoding="utf-8") as stream:
                stream.write(json.dumps(event) + "\n")

    return ProgressEvents()


def _timed_checkpoints(seconds: float) -> Any:
    """Ask for a checkpoint when ``seconds`` have passed since the last one (or the start)."""
    from transformers import TrainerCallback

    class TimedCheckpoints(TrainerCallback):
        def __init__(self) -> None:
            self.last = time.monotonic()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            now = time.monotonic()
            if now - self.last >= seconds and state.global_step < state.max_steps:
                control.should_save = True
                self.last = now

    return TimedCheckpoints()
