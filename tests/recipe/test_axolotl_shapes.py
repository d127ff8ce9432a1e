"""Axolotl configs as people write them: the common shapes validate as written.

Each recipe below is written here in the shape of a family of Axolotl's own example configs
(the headers say which), so the share of those configs that ftctl accepts cannot fall without a
test failing. Features ftctl does not train stay one located line naming the feature.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ftctl.errors import Problem
from ftctl.recipe.load import ignored_warnings, validate_document
from ftctl.recipe.model import Recipe
from ftctl.yamlio import parse_yaml
from tests.conftest import RunCLI, write

# The blank keys, the commented-out wandb block and the empty evals_per_epoch are how the
# examples come; null means unset.
QLORA_CHAT = """\
base_model: org/Chat-8B
model_type: AutoModelForCausalLM
tokenizer_type: AutoTokenizer
load_in_8bit: false
load_in_4bit: true
adapter: qlora
lora_model_dir:
lora_r: 32
lora_alpha: 16
lora_dropout: 0.05
lora_target_linear: true
chat_template: llama3
datasets:
  - path: org/chat-rows
    type: chat_template
    split: train[:20%]
    field_messages: conversations
    message_property_mappings:
      role: from
      content: value
dataset_prepared_path: last_run_prepared
val_set_size: 0.02
output_dir: ./outputs/qlora-out
sequence_len: 2048
sample_packing: true
eval_sample_packing: false
wandb_project:
wandb_entity:
wandb_watch:
wandb_name:
wandb_log_model:
gradient_accumulation_steps: 4
micro_batch_size: 2
num_epochs: 1
optimizer: paged_adamw_8bit
lr_scheduler: cosine
learning_rate: 2e-4
bf16: auto
tf32: false
gradient_checkpointing: true
gradient_checkpointing_kwargs:
  use_reentrant: false
resume_from_checkpoint:
logging_steps: 1
attn_implementation: flash_attention_2
loss_watchdog_threshold: 5.0
loss_watchdog_patience: 3
warmup_ratio: 0.1
evals_per_epoch: 4
saves_per_epoch: 1
weight_decay: 0.0
special_tokens:
  pad_token: <|end_of_text|>
"""

LORA_ALPACA = """\
base_model: org/Small-1B
adapter: lora
lora_r: 16
lora_alpha: 32
lora_dropout: 0.05
lora_target_modules:
  - q_proj
  - v_proj
lora_fan_in_fan_out:
datasets:
  - path: org/alpaca-rows
    type: alpaca
val_set_size: 0.05
sequence_len: 4096
pad_to_sequence_len: true
micro_batch_size: 2
gradient_accumulation_steps: 4
num_epochs: 4
optimizer: adamw_bnb_8bit
lr_scheduler: cosine
learning_rate: 0.0002
train_on_inputs: false
group_by_length: false
bf16: true
fp16:
tf32: false
early_stopping_patience:
local_rank:
xformers_attention:
flash_attention: true
warmup_steps: 10
evals_per_epoch:
eval_steps:
save_steps:
debug:
deepspeed:
weight_decay: 0.0
fsdp:
fsdp_config:
"""

FSDP2_FULL = """\
base_model: org/Dense-8B
datasets:
  - path: org/chat-rows
    type: chat_template
sequence_len: 8192
sample_packing: true
micro_batch_size: 1
gradient_accumulation_steps: 1
num_epochs: 1
optimizer: adamw_torch_fused
lr_scheduler: cosine
learning_rate: 2e-5
bf16: auto
tf32: true
gradient_checkpointing: true
attn_implementation: flash_attention_2
fsdp_version: 2
fsdp_config:
  offload_params: false
  cpu_ram_efficient_loading: true
  auto_wrap_policy: TRANSFORMER_BASED_WRAP
  transformer_layer_cls_to_wrap: LlamaDecoderLayer
  state_dict_type: FULL_STATE_DICT
  sharding_strategy: FULL_SHARD
  reshard_after_forward: true
  activation_checkpointing: true
"""

FSDP1_LIST = """\
base_model: org/Dense-8B
adapter: lora
lora_r: 8
lora_alpha: 16
lora_target_linear: true
datasets:
  - path: org/alpaca-rows
    type: alpaca
micro_batch_size: 1
gradient_accumulation_steps: 4
learning_rate: 0.00001
bf16: true
fsdp:
  - full_shard
  - auto_wrap
fsdp_config:
  fsdp_limit_all_gathers: true
  fsdp_sync_module_states: true
  fsdp_offload_params: true
  fsdp_use_orig_params: false
  fsdp_cpu_ram_efficient_loading: true
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_transformer_layer_cls_to_wrap: MistralDecoderLayer
  fsdp_state_dict_type: FULL_STATE_DICT
  fsdp_sharding_strategy: FULL_SHARD
  fsdp_forward_prefetch: false
  fsdp_backward_prefetch: BACKWARD_PRE
"""

LIGER_PLUGINS = """\
base_model: org/Dense-8B
plugins:
  - axolotl.integrations.liger.LigerPlugin
liger_rope: true
liger_rms_norm: true
liger_glu_activation: true
liger_layer_norm: true
liger_fused_linear_cross_entropy: true
datasets:
  - path: org/chat-rows
    type: chat_template
    roles_to_train: [assistant]
    train_on_eos: turn
eot_tokens:
  - <|im_end|>
micro_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 1e-5
bf16: auto
"""

CCE_REGEX_TARGETS = """\
base_model: org/Moe-30B
plugins:
  - axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin
adapter: lora
lora_r: 16
lora_alpha: 32
lora_target_modules: 'model.language_model.layers.[\\d]+.(mlp|self_attn).(up|down|gate|q|k|v|o)_proj'
lora_mlp_kernel: true
lora_qkv_kernel: true
lora_o_kernel: true
datasets:
  - path: org/chat-rows
    type: chat_template
chat_template: qwen3
micro_batch_size: 1
gradient_accumulation_steps: 1
learning_rate: 2e-4
"""

SHAREGPT_OLD = """\
base_model: org/Small-1B
adapter: lora
lora_r: 8
lora_alpha: 16
datasets:
  - path: org/sharegpt-rows
    type: sharegpt
    conversation: chatml
micro_batch_size: 2
gradient_accumulation_steps: 2
learning_rate: 0.0001
"""

DPO_CHAT = """\
base_model: org/Chat-8B
rl: dpo
adapter: lora
lora_r: 16
lora_alpha: 32
lora_target_linear: true
chat_template: llama3
datasets:
  - path: org/preference-rows
    split: train
    type: chat_template.default
    field_messages: conversation
    field_chosen: chosen
    field_rejected: rejected
    message_property_mappings:
      role: role
      content: content
    roles:
      system: [system]
      user: [user]
      assistant: [assistant]
micro_batch_size: 1
gradient_accumulation_steps: 4
learning_rate: 5e-6
dpo_beta: 0.1
"""

MAPPED_AND_OBSERVING = """\
base_model: org/Small-1B
revision_of_model: main
hub_model_id: acme/small-sft
plugins:
  - axolotl.integrations.swanlab.SwanLabPlugin
use_swanlab: true
swanlab_project: demo
use_wandb: true
eval_max_new_tokens: 128
adapter: lora
lora_r: 8
lora_alpha: 16
peft_use_rslora: true
datasets:
  - path: org/alpaca-rows
    type: alpaca
micro_batch_size: 2
gradient_accumulation_steps: 2
learning_rate: "3e-4"
ddp_find_unused_parameters: false
dataloader_num_workers: 2
remove_unused_columns: false
skip_prepare_dataset: false
"""

SPEED_ONLY = """\
base_model: org/Small-1B
datasets:
  - path: org/alpaca-rows
    type: alpaca
micro_batch_size: 2
gradient_accumulation_steps: 2
learning_rate: 0.0001
gradient_checkpointing: offload
flash_attn_rms_norm: true
flash_attn_fuse_mlp: true
fused_attn_kernel: true
"""

SHAPES = {
    "qlora-chat (llama-3, qwen3, mistral families)": QLORA_CHAT,
    "lora-alpaca (the older configs)": LORA_ALPACA,
    "fsdp2-full (FSDP2 blocks)": FSDP2_FULL,
    "fsdp1-list (fsdp list with fsdp_ keys)": FSDP1_LIST,
    "liger (liger plugin and kernels)": LIGER_PLUGINS,
    "cce-regex (cut cross-entropy, regex targets, LoRA kernels)": CCE_REGEX_TARGETS,
    "sharegpt (type: sharegpt with conversation)": SHAREGPT_OLD,
    "dpo-chat (chat_template.default rows)": DPO_CHAT,
    "mapped (deprecated spellings, hub id, logging knobs)": MAPPED_AND_OBSERVING,
    "speed-only (kernels and offloading ftctl skips)": SPEED_ONLY,
}


def check(text: str) -> tuple[Recipe | None, list[str]]:
    problems: list[Problem] = []
    recipe = validate_document(parse_yaml(text, "r.yaml"), problems)
    return recipe, [p.render() for p in problems]


@pytest.mark.parametrize("text", SHAPES.values(), ids=list(SHAPES))
def test_common_shapes_validate_as_written(text: str) -> None:
    recipe, problems = check(text)
    assert problems == [] and recipe is not None


def test_what_the_shapes_mean() -> None:
    mapped, _ = check(MAPPED_AND_OBSERVING)
    assert mapped is not None
    assert mapped.base_model == "org/Small-1B@main"
    assert mapped.ftctl.publish == "hf://acme/small-sft"
    assert mapped.use_rslora and mapped.learning_rate == 3e-4
    fsdp2, _ = check(FSDP2_FULL)
    assert fsdp2 is not None and fsdp2.fsdp_config is not None
    assert fsdp2.fsdp_config.fsdp_version == 2 and fsdp2.fsdp_config.fsdp_reshard_after_forward
    sharegpt, _ = check(SHAREGPT_OLD)
    assert sharegpt is not None and sharegpt.datasets is not None
    assert sharegpt.datasets[0].type == "chat_template"
    speed, _ = check(SPEED_ONLY)
    assert speed is not None and speed.gradient_checkpointing is True


def test_speed_only_settings_are_warned_about() -> None:
    warnings = [w.render() for w in ignored_warnings(parse_yaml(SPEED_ONLY, "r.yaml"))]
    assert warnings == [
        "r.yaml:8:1: gradient_checkpointing: offload: ftctl checkpoints but keeps activations "
        "in GPU memory",
        "r.yaml:9:1: flash_attn_rms_norm: accepted and ignored: ftctl trains without flash-attn's "
        "fused kernels",
        "r.yaml:10:1: flash_attn_fuse_mlp: accepted and ignored: ftctl trains without flash-attn's "
        "fused kernels",
        "r.yaml:11:1: fused_attn_kernel: accepted and ignored: ftctl trains without Axolotl's "
        "fused RMSNorm+RoPE kernel",
    ]


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        (
            "processor_type: AutoProcessor\n",
            "processor_type: not supported by ftctl (Axolotl's multimodal training)",
        ),
        (
            "qat:\n  weight_dtype: int8\n",
            "qat: not supported by ftctl (Axolotl's quantization-aware training (QAT))",
        ),
        (
            "quantize_moe_experts: true\n",
            "quantize_moe_experts: not supported by ftctl (Axolotl's mixture-of-experts kernels)",
        ),
        (
            "tokenizer_use_mistral_common: true\n",
            "tokenizer_use_mistral_common: not supported by ftctl (Axolotl's tokenizer options)",
        ),
        (
            "context_parallel_size: 2\n",
            "context_parallel_size: not supported by ftctl (Axolotl's sequence/context parallelism)",
        ),
    ],
)
def test_features_ftctl_does_not_train_are_one_line(extra: str, line: str) -> None:
    _, problems = check(SHAREGPT_OLD + extra)
    assert len(problems) == 1 and line in problems[0], problems


def test_validate_prints_the_warnings_and_passes(workspace: Path, run_cli: RunCLI) -> None:
    write(workspace / "recipes" / "fast.yaml", SPEED_ONLY)
    result = run_cli("validate", cwd=workspace)
    assert result.code == 0 and result.out.strip() == "1 recipe valid"
    assert result.err.splitlines()[0] == (
        "ftctl: warning: recipes/fast.yaml:8:1: gradient_checkpointing: offload: "
        "ftctl checkpoints but keeps activations in GPU memory"
    )
    assert len(result.err.splitlines()) == 4
