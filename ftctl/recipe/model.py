"""The recipe: an Axolotl config, strictly checked, plus ftctl's own ``ftctl:`` block.

Field names, meanings and defaults follow Axolotl. Defaults live on the
fields; no validator fills anything in. A value Axolotl derives from others
(``pad_to_sequence_len`` from ``sample_packing``) is ``None`` here, meaning
"derived", and is resolved in one explicit step later (see docs/recipes.md).
Cross-field rules live in :mod:`ftctl.recipe.rules`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ftctl.recipe.datasets import DatasetEntry, NonEmptyStr
from ftctl.recipe.names import (
    AttnImplementation,
    ChatTemplateName,
    OptimizerName,
    PluginName,
    RLName,
    SchedulerName,
)
from ftctl.recipe.refs import RECIPE_NAME_RE, check_hf_id, model_ref_problem
from ftctl.recipe.types import (
    AcceleratorsStr,
    DeepSpeedPathStr,
    ExecutorNameStr,
    MemoryStr,
    ModelClassStr,
    TokenizerClassStr,
)

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, protected_namespaces=(), allow_inf_nan=False
    )


class GradientCheckpointingKwargs(_Strict):
    use_reentrant: bool | None = None


class SpecialTokens(_Strict):
    bos_token: str | None = None
    eos_token: str | None = None
    pad_token: str | None = None
    unk_token: str | None = None


class FSDPConfig(_Strict):
    """FSDP settings handed to accelerate (Axolotl's ``fsdp_config``)."""

    fsdp_version: Literal[1, 2] | None = None
    fsdp_offload_params: bool | None = None
    fsdp_sync_module_states: bool | None = None
    fsdp_use_orig_params: bool | None = None
    fsdp_cpu_ram_efficient_loading: bool | None = None
    fsdp_state_dict_type: Literal["FULL_STATE_DICT", "SHARDED_STATE_DICT"] | None = None
    fsdp_auto_wrap_policy: Literal["TRANSFORMER_BASED_WRAP", "SIZE_BASED_WRAP"] | None = None
    fsdp_transformer_layer_cls_to_wrap: str | None = None
    fsdp_sharding_strategy: (
        Literal["FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD"] | None
    ) = None
    fsdp_activation_checkpointing: bool | None = None
    fsdp_reshard_after_forward: bool | None = None
    # added after fingerprint scheme 1: left out of the fingerprint while unset
    fsdp_limit_all_gathers: bool | None = None
    fsdp_cpu_offload_pin_memory: bool | None = None
    fsdp_final_state_dict_type: (
        Literal["FULL_STATE_DICT", "LOCAL_STATE_DICT", "SHARDED_STATE_DICT"] | None
    ) = None
    fsdp_min_num_params: PositiveInt | None = None
    fsdp_mixed_precision_policy: str | None = None
    fsdp_forward_prefetch: bool | None = None
    fsdp_backward_prefetch: Literal["BACKWARD_PRE", "BACKWARD_POST", "NO_PREFETCH"] | None = None


class PretrainingDataset(_Strict):
    path: NonEmptyStr
    name: str | None = None
    split: NonEmptyStr = "train"
    type: Literal["pretrain"] = "pretrain"
    text_column: NonEmptyStr = "text"


class Resources(_Strict):
    """What the run needs from an executor (SkyPilot-style names)."""

    accelerators: AcceleratorsStr | None = Field(
        None, description="accelerator type and count, e.g. 'H100:1'"
    )
    cpus: PositiveInt | None = None
    memory_gb: PositiveInt | None = None
    disk_gb: PositiveInt | None = None
    use_spot: bool | None = None


class FtctlBlock(_Strict):
    """ftctl's own settings; none of them changes the trained weights."""

    publish: str | None = Field(
        None, description="hf://ORG/REPO or file://PATH; default <registry>/<recipe name>"
    )
    executor: ExecutorNameStr = Field("local", description="name of an executor in ftctl.yaml")
    resources: Resources = Resources()
    description: str | None = None
    pins: NonEmptyStr | None = Field(None, description="pip requirements file for this recipe")

    @field_validator("publish")
    @classmethod
    def _publish_target(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.startswith("hf://"):
            reason = check_hf_id(value[5:])
            if reason or "/" not in value[5:]:
                raise ValueError(f"'{value}': hf:// needs ORG/REPO ({reason or 'no org'})")
            return value
        if value.startswith("file://") and len(value) > len("file://"):
            return value
        raise ValueError("must be hf://ORG/REPO or file://PATH")


class Recipe(_Strict):
    """One training, in Axolotl's vocabulary."""

    # --- base model
    base_model: NonEmptyStr = Field(
        description="Hub id[@revision], ./local/dir, or recipe:<name> to train on another recipe"
    )
    base_model_config: NonEmptyStr | None = None
    model_type: ModelClassStr | None = None
    tokenizer_type: TokenizerClassStr | None = None
    tokenizer_config: NonEmptyStr | None = None
    trust_remote_code: bool = False
    strict: bool = False

    # --- quantization (QLoRA)
    load_in_8bit: bool = False
    load_in_4bit: bool = False
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = "nf4"
    bnb_4bit_use_double_quant: bool = False
    bnb_4bit_compute_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"

    # --- adapter
    adapter: Literal["lora", "qlora"] | None = None
    lora_model_dir: NonEmptyStr | None = None
    lora_r: PositiveInt = 8
    lora_alpha: PositiveInt = 16
    lora_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    lora_target_modules: list[NonEmptyStr] | NonEmptyStr | None = Field(
        None, description="module names, or one regex matched against each full module name"
    )
    lora_target_linear: bool = False
    lora_modules_to_save: list[NonEmptyStr] | None = None
    lora_fan_in_fan_out: bool = False
    use_rslora: bool = False
    use_dora: bool = False
    unfrozen_parameters: list[NonEmptyStr] | None = None

    # --- data
    datasets: list[DatasetEntry] | None = Field(None, min_length=1)
    test_datasets: list[DatasetEntry] | None = Field(None, min_length=1)
    pretraining_dataset: list[PretrainingDataset] | None = Field(None, min_length=1)
    streaming: bool = False
    shuffle_merged_datasets: bool = True
    dataset_prepared_path: str | None = None
    dataset_processes: PositiveInt | None = None
    val_set_size: Annotated[float, Field(ge=0)] = 0.0
    chat_template: ChatTemplateName = "tokenizer_default"
    chat_template_jinja: NonEmptyStr | None = None
    default_system_message: str | None = None
    train_on_inputs: bool = False
    special_tokens: SpecialTokens | None = None
    tokens: list[NonEmptyStr] | None = None
    resize_token_embeddings_to_32x: bool = False

    # --- sequence and packing
    sequence_len: PositiveInt = 2048
    sample_packing: bool = False
    eval_sample_packing: bool | None = None
    pad_to_sequence_len: bool | None = None
    group_by_length: bool = False

    # --- batch and schedule
    micro_batch_size: PositiveInt | None = None
    gradient_accumulation_steps: PositiveInt | None = None
    batch_size: PositiveInt | None = None
    eval_batch_size: PositiveInt | None = None
    num_epochs: PositiveFloat = 1.0
    max_steps: PositiveInt | None = None

    # --- optimizer
    optimizer: OptimizerName = "adamw_torch_fused"
    learning_rate: PositiveFloat
    lr_scheduler: SchedulerName = "cosine"
    cosine_min_lr_ratio: Annotated[float, Field(ge=0, le=1)] | None = None
    warmup_steps: NonNegativeInt | None = None
    warmup_ratio: Fraction | None = None
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    max_grad_norm: PositiveFloat = 1.0
    adam_beta1: Fraction | None = None
    adam_beta2: Fraction | None = None
    adam_epsilon: PositiveFloat | None = None
    neftune_noise_alpha: PositiveFloat | None = None

    # --- precision, attention, memory
    bf16: bool | Literal["auto"] = False
    fp16: bool = False
    tf32: bool | Literal["auto"] = False
    flash_attention: bool = False
    sdp_attention: bool = False
    gradient_checkpointing: bool = False
    gradient_checkpointing_kwargs: GradientCheckpointingKwargs | None = None
    max_memory: dict[str, str] | None = None
    gpu_memory_limit: MemoryStr | PositiveInt | None = None

    # --- distributed
    deepspeed: DeepSpeedPathStr | None = Field(
        None, description="path of a DeepSpeed JSON config, relative to the workspace"
    )
    fsdp: (
        list[Literal["full_shard", "shard_grad_op", "hybrid_shard", "auto_wrap", "offload"]] | None
    ) = None
    fsdp_config: FSDPConfig | None = None

    # --- preference training
    rl: RLName | None = None
    rl_beta: PositiveFloat | None = None
    dpo_loss_type: (
        list[
            Literal[
                "sigmoid",
                "hinge",
                "ipo",
                "robust",
                "bco_pair",
                "apo_zero",
                "apo_down",
                "sppo_hard",
                "nca_pair",
                "exo_pair",
            ]
        ]
        | None
    ) = None
    dpo_loss_weights: list[Annotated[float, Field(ge=0)]] | None = None
    dpo_label_smoothing: Annotated[float, Field(ge=0, le=0.5)] | None = None
    orpo_alpha: PositiveFloat | None = None
    kto_desirable_weight: PositiveFloat | None = None
    kto_undesirable_weight: PositiveFloat | None = None
    max_prompt_len: PositiveInt | None = None

    # --- evaluation
    eval_strategy: Literal["no", "steps", "epoch"] | None = None
    eval_steps: PositiveInt | None = None
    evals_per_epoch: PositiveInt | None = None
    eval_table_size: NonNegativeInt | None = None
    early_stopping_patience: PositiveInt | None = None
    load_best_model_at_end: bool = False
    metric_for_best_model: NonEmptyStr | None = None

    # --- checkpoints and logging (not part of the fingerprint)
    output_dir: NonEmptyStr = "./outputs"
    save_strategy: Literal["no", "steps", "epoch", "best"] | None = None
    save_steps: PositiveInt | None = None
    saves_per_epoch: PositiveInt | None = None
    save_total_limit: PositiveInt | None = None
    save_safetensors: bool = True
    logging_steps: PositiveInt | None = None
    wandb_project: str | None = None
    wandb_entity: str | None = None
    wandb_name: str | None = None
    wandb_run_name: str | None = None
    wandb_run_id: str | None = None
    wandb_watch: Literal["gradients", "parameters", "all", "false"] | None = None
    wandb_log_model: Literal["end", "checkpoint", "false"] | None = None
    wandb_mode: Literal["online", "offline", "disabled"] | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_experiment_name: str | None = None
    mlflow_run_name: str | None = None
    use_tensorboard: bool = False

    seed: NonNegativeInt = 42

    # --- added after fingerprint scheme 1 (ADDED_FIELDS in ftctl.lock.fingerprint): a field
    # at its default stays out of the fingerprint, so older recipes keep theirs
    attn_implementation: AttnImplementation | None = Field(
        None, description="transformers attention: eager, sdpa, flash_attention_2, ..."
    )
    eot_tokens: list[NonEmptyStr] | None = Field(
        None, description="tokens that end a turn (trained with the turn, like the EOS token)"
    )
    chat_template_kwargs: dict[str, str | int | float | bool] | None = Field(
        None, description="extra variables for the chat template, e.g. enable_thinking"
    )
    plugins: list[PluginName] | None = Field(
        None, description="Axolotl plugin names; each maps onto a built-in feature"
    )
    liger_rope: bool | None = Field(None, description="liger kernel for rotary embeddings")
    liger_rms_norm: bool | None = Field(None, description="liger kernel for RMSNorm")
    liger_layer_norm: bool | None = Field(None, description="liger kernel for LayerNorm")
    liger_swiglu: bool | None = Field(None, description="liger kernel for SwiGLU")
    liger_glu_activation: bool | None = Field(None, description="liger kernel for GLU MLPs")
    liger_cross_entropy: bool | None = Field(None, description="liger cross-entropy loss")
    liger_fused_linear_cross_entropy: bool | None = Field(
        None, description="liger fused linear cross-entropy (no full logits in memory)"
    )
    cut_cross_entropy: bool | None = Field(
        None, description="cut cross-entropy loss; default on with its plugin"
    )

    ftctl: FtctlBlock = FtctlBlock()

    @field_validator("base_model")
    @classmethod
    def _base_model_form(cls, value: str) -> str:
        problem = model_ref_problem(value)
        if problem is not None:
            raise ValueError(problem)  # pydantic's way: it becomes a located problem
        return value


def recipe_name_problem(name: str) -> str | None:
    """Why a file stem cannot be a recipe name, or None."""
    if RECIPE_NAME_RE.match(name):
        return None
    return (
        f"'{name}' is not a valid recipe name: use lowercase letters, digits, '.', '_' or '-', "
        "starting with a letter or digit, at most 64 characters"
    )
