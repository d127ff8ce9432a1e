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
    "gemma",
    "llama3",
    "mistral_v1",
    "mistral_v2v3",
    "phi_3",
    "qwen_25",
    "qwen3",
]

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
]

# Optimizers implemented by bitsandbytes: CUDA only, and not with FSDP's sharded state.
BNB_OPTIMIZERS = frozenset(
    name
    for name in get_args(OptimizerName)
    if "8bit" in name or name.startswith(("paged_", "lion"))
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
