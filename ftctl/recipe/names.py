"""Closed lists of names a recipe may use: chat templates, optimizers, schedulers.

These are names, never import paths: a reviewed YAML file must not be able to
run code of its own choosing. The training worker maps each name onto the
library feature that implements it.
"""

from __future__ import annotations

from typing import Literal, get_args

ChatTemplateName = Literal[
    "tokenizer_default",
    "jinja",
    "alpaca",
    "chatml",
    "metharme",
    # Axolotl's names for model families' own templates: the base model's tokenizer template
    "gemma",
    "gemma3",
    "gemma3n",
    "gemma4",
    "gemma4_unified",
    "llama3",
    "llama3_2_vision",
    "llama4",
    "mistral_v1",
    "mistral_v2v3",
    "mistral_v3_tekken",
    "mistral_v7_tekken",
    "phi_3",
    "phi_35",
    "qwen_25",
    "qwen3",
    "qwen3_5",
    "qwen2_vl",
    "cohere",
    "command_a",
    "command_a_tool_use",
    "command_a_rag",
    "aya",
    "deepseek_v2",
    "deepseek_v3",
    "jamba",
    "falcon_h1",
    "nemotron_h",
    "exaone",
    "exaone4",
    "pixtral",
    "llava",
]

# Templates ftctl writes itself (from the public formats); every other family name stands for
# the base model's own tokenizer template, which is what Axolotl's copy of it renders.
BUILT_IN_CHAT_TEMPLATES = frozenset({"alpaca", "chatml", "metharme"})
# Family names whose tokenizer keeps the template under a name of its own.
NAMED_TOKENIZER_TEMPLATES = {"command_a_tool_use": "tool_use", "command_a_rag": "rag"}

OptimizerName = Literal[
    "adamw_torch",
    "adamw_torch_fused",
    "adafactor",
    "sgd",
    "rmsprop",
    "adagrad",
    "adamw_8bit",
    "adamw_bnb_8bit",
    "paged_adamw_8bit",
    "paged_adamw_32bit",
    "lion_8bit",
    "paged_lion_8bit",
    "lion_32bit",
    "paged_lion_32bit",
    "adamw_torch_4bit",
    "adamw_torch_8bit",
]

# Optimizers implemented by torchao (through transformers): CUDA only.
TORCHAO_OPTIMIZERS = frozenset({"adamw_torch_4bit", "adamw_torch_8bit"})

# Optimizers Axolotl implements itself or imports from other packages: refused by name.
AXOLOTL_OPTIMIZERS = frozenset(
    "optimi_adamw ao_adamw_4bit ao_adamw_8bit ao_adamw_fp8 adopt_adamw adamc came_pytorch muon "
    "dion sinkgd polora flash_adamw flash_adam flash_sgd flash_sgdw flash_lion "
    "q_galore_adamw8bit".split()
)

# attn_implementation values transformers provides and ftctl trains.
AttnImplementation = Literal[
    "eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention"
]
# GPU-only implementations: the worker refuses them on a machine without CUDA.
GPU_ATTENTION = frozenset({"flash_attention_2", "flash_attention_3"})
# Axolotl's other values, each with the feature it stands for.
UNSUPPORTED_ATTENTION = {
    "xformers": "xformers attention",
    "sage": "SageAttention",
    "fp8": "fp8 attention",
    "flash_attention_4": "FlashAttention 4",
    "flash_attention_torch": "Axolotl's torch flash attention",
}

# The plugins a recipe may list, by Axolotl's name; ftctl maps each onto a built-in feature.
PluginName = Literal[
    "axolotl.integrations.liger.LigerPlugin",
    "axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin",
    "axolotl.integrations.swanlab.SwanLabPlugin",
    "axolotl.integrations.lm_eval.LMEvalPlugin",
]

# Optimizers implemented by bitsandbytes: CUDA only, and not with FSDP's sharded state.
BNB_OPTIMIZERS = frozenset(
    name
    for name in get_args(OptimizerName)
    if ("8bit" in name or name.startswith(("paged_", "lion")))
    and name not in ("adamw_torch_4bit", "adamw_torch_8bit")
)
BNB_8BIT_OPTIMIZERS = frozenset(name for name in BNB_OPTIMIZERS if "8bit" in name)

SchedulerName = Literal[
    "linear",
    "cosine",
    "cosine_with_restarts",
    "cosine_with_min_lr",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "warmup_stable_decay",
]

RLName = Literal["dpo", "ipo", "orpo", "kto"]


# apply_chat_template parameters ftctl sets itself; chat_template_kwargs may not name them.
RESERVED_TEMPLATE_KWARGS = frozenset(
    "conversation tools documents chat_template add_generation_prompt continue_final_message tokenize "
    "sanitize_control_tokens padding truncation max_length return_tensors return_dict "
    "return_assistant_tokens_mask tokenizer_kwargs messages".split()
)
