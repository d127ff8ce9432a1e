"""Train one recipe, top to bottom: check the hardware, load, build the data, train, save.

Supervised fine-tuning (alpaca, chat_template, completion, input_output) with
LoRA or a full fine-tune, through trl's SFTTrainer on pre-tokenized, masked
rows. Determinism (REFERENCE section 5): the parent sets PYTHONHASHSEED and
CUBLAS_WORKSPACE_CONFIG; here the seed is set before the adapter is created,
deterministic algorithms are on, TF32 off unless the recipe asks, one
data-loading process. Writes the run directory of docs/run-dir.md.
"""

from __future__ import annotations

import json
import platform
import resource
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from ftctl.errors import FtctlError
from ftctl.lock.lockfile import Lockfile
from ftctl.recipe.load import load_recipe
from ftctl.recipe.model import Recipe
from ftctl.runspec import RunSpec
from ftctl.worker import formats

PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "accelerate",
    "datasets",
    "safetensors",
    "tokenizers",
    "ftctl",
)


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


def _rows(
    recipe: Recipe, root: Path, list_name: str = "datasets", lock: Lockfile | None = None
) -> Iterator[tuple[Any, str, dict[str, Any]]]:
    """(dataset entry, where, row) for every row of every dataset, read through `datasets`.

    A local path (fetched through DVC when tracked and missing), or a Hub dataset at the locked
    revision (through the Hugging Face cache).
    """
    from datasets import load_dataset

    from ftctl.recipe.refs import check_hf_id, split_revision
    from ftctl.worker.inputs import fetch_if_tracked, hub_dataset, locked_revision, resolve_path

    for index, entry in enumerate(getattr(recipe, list_name) or []):
        where = f"{list_name}[{index}] ({entry.path})"
        source = resolve_path(root, entry.path)
        if not source.exists() and not fetch_if_tracked(root, source, where):
            repo_id, revision = split_revision(entry.path)
            if check_hf_id(repo_id) is not None:
                raise FtctlError(
                    f"{where}: not found on this machine, and not a Hub dataset id",
                    hint="check the path (relative to the workspace root)",
                )
            source = hub_dataset(
                repo_id, locked_revision(lock, entry.path, "dataset") or revision, where
            )
            files: Any = [str(source / f) for f in entry.data_files] if entry.data_files else None
            for row in load_dataset(
                str(source), name=entry.name, data_files=files, split=entry.split
            ):
                yield entry, where, row
            continue
        kind = entry.ds_type or (
            "json" if source.suffix in (".jsonl", ".json") else source.suffix.lstrip(".")
        )
        files = [str(source / f) for f in entry.data_files] if entry.data_files else str(source)
        for row in load_dataset(kind, data_files=files, split=entry.split):
            yield entry, where, row


def build_preference_dataset(
    recipe: Recipe, root: Path, list_name: str = "datasets", lock: Lockfile | None = None
) -> list[dict[str, Any]]:
    from ftctl.worker.preference import preference_row

    return [
        preference_row(entry, row, where)
        for entry, where, row in _rows(recipe, root, list_name, lock)
    ]


def build_dataset(
    recipe: Recipe,
    tokenizer: Any,
    root: Path,
    list_name: str = "datasets",
    lock: Lockfile | None = None,
) -> list[dict[str, list[int]]]:
    rows: list[dict[str, list[int]]] = []
    for entry, where, row in _rows(recipe, root, list_name, lock):
        if entry.type == "alpaca":
            rows.append(formats.alpaca(tokenizer, row, recipe.train_on_inputs, where))
        elif entry.type == "chat_template":
            template = formats.chat_template_for(
                entry.chat_template or recipe.chat_template, recipe.chat_template_jinja
            )
            rows.append(formats.chat(tokenizer, row, entry, template, where))
        elif entry.type == "completion":
            rows.extend(formats.completion(tokenizer, row, entry.field, recipe.sequence_len, where))
        elif entry.type == "input_output":
            rows.append(formats.input_output(tokenizer, row, where))
        else:
            raise FtctlError(f"{where}: type {entry.type} needs an rl trainer")
    # Like Axolotl: drop rows longer than sequence_len (truncating would cut the response off),
    # and rows with nothing to train; say how many.
    kept = [
        r
        for r in rows
        if len(r["input_ids"]) <= recipe.sequence_len
        and any(t != formats.IGNORE for t in r["labels"])
    ]
    if len(kept) < len(rows):
        print(
            f"ftctl: warning: dropped {len(rows) - len(kept)} of {len(rows)} rows longer than "
            f"sequence_len {recipe.sequence_len} or with nothing to train",
            file=sys.stderr,
        )
    return kept


def run(spec: RunSpec) -> Path:
    import torch

    started = datetime.now(UTC)
    recipe = load_recipe(Path(spec.recipe_path)).recipe
    cuda = torch.cuda.is_available()
    check_hardware(recipe, cuda)
    from peft import LoraConfig
    from transformers import AutoTokenizer, set_seed

    from ftctl.worker.inputs import load_base
    from ftctl.worker.loading import add_tokens, check_new_tokens_train, load_model

    root = Path(spec.workspace)
    out = Path(spec.output_dir)
    torch.use_deterministic_algorithms(True)
    # Deterministic mode also fills every torch.empty with NaN, a debugging aid that made trl's chunked
    # log-prob buffer (tokens x vocab chunk, refilled each step) a third of CPU training time. Kernels
    # write those buffers before reading them, so results stay bitwise identical (tested).
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = recipe.tf32
    set_seed(recipe.seed)
    lock = None
    if spec.lock is not None:
        from ftctl.lock.lockfile import load_lock
        from ftctl.worker.inputs import verify_inputs

        lock = load_lock(Path(spec.lock), spec.lock)
        verify_inputs(lock, root, spec.lock)
    source, revision, merge = load_base(
        recipe.base_model, Path(spec.base_model_dir) if spec.base_model_dir else None, root, lock
    )
    tokenizer_source = (
        str(merge) if merge is not None and (merge / "tokenizer_config.json").is_file() else source
    )
    tokenizer = AutoTokenizer.from_pretrained(
        tokenizer_source,
        revision=None if merge else revision,
        trust_remote_code=recipe.trust_remote_code,
    )
    model = load_model(source, revision, recipe, cuda)
    if merge is not None:
        from peft import PeftModel

        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))  # the upstream added tokens
        model = PeftModel.from_pretrained(model, str(merge)).merge_and_unload()
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

    def build(list_name: str) -> list[dict[str, Any]]:
        if recipe.rl:
            return build_preference_dataset(recipe, root, list_name, lock)
        return build_dataset(recipe, tokenizer, root, list_name, lock)

    rows = build("datasets")
    if not rows:
        raise FtctlError(
            "the datasets produced no trainable rows",
            hint="check the dataset types and roles_to_train",
        )
    from datasets import Dataset

    train_set, eval_set = Dataset.from_list(rows), None
    if recipe.test_datasets:
        eval_set = Dataset.from_list(build("test_datasets"))
    elif recipe.val_set_size:
        size = recipe.val_set_size if recipe.val_set_size < 1 else int(recipe.val_set_size)
        split = train_set.train_test_split(test_size=size, seed=recipe.seed, shuffle=True)
        train_set, eval_set = split["train"], split["test"]
    if recipe.sample_packing:
        from trl.data_utils import pack_dataset

        # Best-fit decreasing keeps every sample whole; the collator then trains padding-free on position_ids.
        train_set = pack_dataset(train_set, recipe.sequence_len, strategy="bfd")
        if eval_set is not None and recipe.eval_sample_packing is not False:
            eval_set = pack_dataset(eval_set, recipe.sequence_len, strategy="bfd")
    peft_config = None
    if recipe.adapter == "lora":
        targets: Any = recipe.lora_target_modules or (
            "all-linear" if recipe.lora_target_linear else None
        )
        peft_config = LoraConfig(
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
    common = training_arguments(
        recipe,
        cuda,
        out,
        bf16_supported=cuda and torch.cuda.is_bf16_supported(),
        has_eval=eval_set is not None,
        root=root,
    )
    trainer = _trainer(recipe, common, model, tokenizer, peft_config, train_set, eval_set)
    if recipe.early_stopping_patience:
        from transformers import EarlyStoppingCallback

        trainer.add_callback(
            EarlyStoppingCallback(early_stopping_patience=recipe.early_stopping_patience)
        )
    if not sys.stderr.isatty():
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(_plain_progress())
    # Tokens of the rows themselves (no padding), the same for packed and unpacked batches.
    epochs = recipe.num_epochs if not recipe.max_steps else None
    trained_tokens = (
        int(sum(map(len, train_set["input_ids"])) * epochs) if epochs and not recipe.rl else None
    )
    clock = time.perf_counter()
    result = trainer.train()
    wall = time.perf_counter() - clock
    adapter = out / "adapter"
    trained: Any = (
        trainer.model
    )  # a PeftModel (LoRA) or the full model (the best one with load_best_model_at_end)
    if not trainer.is_world_process_zero():
        return out  # one process writes the run directory
    trained.save_pretrained(str(adapter))
    if tokenizer_changed or recipe.adapter is None:
        tokenizer.save_pretrained(
            str(adapter)
        )  # the adapter (or model) needs the tokenizer it was trained with
    checkpoints = out / "checkpoints"
    if checkpoints.is_dir() and not any(checkpoints.iterdir()):
        checkpoints.rmdir()  # save_strategy "no": the trainer's output folder stays empty
    _name_the_base(adapter, recipe.base_model)
    log = [h for h in trainer.state.log_history if "loss" in h]
    (out / "train-log.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "step": h.get("step"),
                    "loss": h.get("loss"),
                    "learning_rate": h.get("learning_rate"),
                    "grad_norm": h.get("grad_norm"),
                    "tokens": h.get("num_tokens"),
                }
            )
            + "\n"
            for h in log
        )
    )
    environment = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in PACKAGES},
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
    }
    (out / "environment.json").write_text(json.dumps(environment, indent=2, sort_keys=True) + "\n")
    metrics = {"train_loss": result.training_loss}
    if log:
        metrics["final_loss"] = log[-1]["loss"]
    evals = [h for h in trainer.state.log_history if "eval_loss" in h]
    if evals:
        metrics["eval_loss"] = evals[-1]["eval_loss"]
    summary = {
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "metrics": metrics,
        "steps": result.global_step,
        "tokens_seen": int(
            trainer.state.num_input_tokens_seen or sum(len(r.get("input_ids", ())) for r in rows)
        ),
        "packed": recipe.sample_packing,
        "tokens_per_second": round(trained_tokens / wall, 1)
        if trained_tokens and wall > 0
        else None,
        "wall_time_s": round(wall, 3),
        "peak_memory_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "host": platform.node(),
        "determinism": {
            "seed": recipe.seed,
            "deterministic_algorithms": True,
            "tf32": recipe.tf32,
            "device": environment["device"],
        },
    }
    if spec.fingerprint:
        summary["fingerprint"] = spec.fingerprint
    (out / "result.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return out


def training_arguments(
    recipe: Recipe,
    cuda: bool,
    out: Path,
    *,
    bf16_supported: bool,
    has_eval: bool,
    root: Path | None = None,
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
    if recipe.fsdp:
        extra["fsdp"] = " ".join(recipe.fsdp)
        if recipe.fsdp_config is not None:
            extra["fsdp_config"] = recipe.fsdp_config.model_dump(exclude_none=True)
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
        tf32=cuda and recipe.tf32,
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


def _trainer(
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
        pad = (
            recipe.pad_to_sequence_len
            if recipe.pad_to_sequence_len is not None
            else recipe.sample_packing
        )
        varlen = recipe.sample_packing and recipe.flash_attention
        config = SFTConfig(
            **common,
            packing=varlen,
            packing_strategy="bfd",
            padding_free=varlen,
            pad_to_multiple_of=recipe.sequence_len if pad else None,
            dataset_kwargs={"skip_prepare_dataset": True},
            remove_unused_columns=False,
        )
        if recipe.sample_packing and not varlen:
            kwargs["data_collator"] = packed_rows_collator(
                tokenizer.pad_token_id, recipe.sequence_len if pad else None
            )
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
                print(
                    f"step {state.global_step}/{state.max_steps}  loss {float(logs['loss']):.4f}  "
                    f"lr {float(logs.get('learning_rate', 0)):.2e}",
                    file=sys.stderr,
                    flush=True,
                )

    return PlainProgress()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _name_the_base(adapter: Path, base_model: str) -> None:
    """PEFT writes the load path of the base; record the recipe's reference instead (REFERENCE 4)."""
    config_path = adapter / "adapter_config.json"
    if config_path.exists():
        config = json.loads(config_path.read_text())
        config["base_model_name_or_path"] = base_model
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    readme = adapter / "README.md"
    if readme.exists():
        readme.unlink()  # PEFT's generated card names the temporary path; the registry writes the card
