"""Every cross-field rule: a recipe that triggers it, its message, key and line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ftctl.errors import Problem
from ftctl.recipe.load import validate_document
from ftctl.recipe.model import Recipe
from ftctl.recipe.rules import RULES, check_rules
from ftctl.yamlio import parse_yaml

BASE: dict[str, Any] = {
    "base_model": "org/model",
    "adapter": "lora",
    "datasets": [{"path": "data/train.jsonl", "type": "alpaca"}],
    "micro_batch_size": 2,
    "gradient_accumulation_steps": 2,
    "learning_rate": 0.001,
}
DPO_DATA = [{"path": "org/pairs", "type": "dpo"}]
KTO_DATA = [{"path": "org/kto", "type": "kto"}]
QLORA = {"adapter": "qlora", "load_in_4bit": True}


def to_yaml(data: dict[str, Any]) -> str:
    """One top-level key per line, values in JSON flow style (valid YAML)."""
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in data.items())


def problems_for(overrides: dict[str, Any]) -> tuple[str, list[Problem]]:
    data = {**BASE, **overrides}
    data = {k: v for k, v in data.items() if v is not None}
    text = to_yaml(data)
    problems: list[Problem] = []
    validate_document(parse_yaml(text, "r.yaml"), problems)
    return text, problems


# (rule, overrides, key path shown, message fragment)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "unfrozen_parameters_need_full_finetune",
        {"unfrozen_parameters": ["lm_head"]},
        "unfrozen_parameters",
        "selects weights for a full fine-tune; adapter: lora trains only its own",
    ),
    (
        "model_configs_are_the_base",
        {"tokenizer_config": "org/other"},
        "tokenizer_config",
        "ftctl loads the model and tokenizer from base_model",
    ),
    (
        "no_streamed_data",
        {"streaming": True, "max_steps": 10},
        "streaming",
        "not supported by ftctl (streamed pretraining data)",
    ),
    (
        "no_prompt_limit",
        {"rl": "dpo", "datasets": DPO_DATA, "max_prompt_len": 128},
        "max_prompt_len",
        "trl's preference trainers take no prompt limit",
    ),
    (
        "chat_template_kwargs_not_reserved",
        {"chat_template_kwargs": {"tokenize": True, "enable_thinking": False}},
        "chat_template_kwargs.tokenize",
        "ftctl sets this parameter of the chat template itself",
    ),
    (
        "attention_agrees",
        {"sdp_attention": True, "attn_implementation": "eager"},
        "attn_implementation",
        "eager contradicts sdp_attention: true (sdpa)",
    ),
    (
        "one_cross_entropy_kernel",
        {"liger_cross_entropy": True, "cut_cross_entropy": True},
        "cut_cross_entropy",
        "liger_cross_entropy and cut_cross_entropy each replace the loss",
    ),
    (
        "save_as_safetensors",
        {"save_safetensors": False},
        "save_safetensors",
        "ftctl saves adapters and models as safetensors only",
    ),
    (
        "quantized_needs_adapter",
        {"adapter": None, "load_in_4bit": True},
        "load_in_4bit",
        "quantized loading needs an adapter",
    ),
    (
        "quantized_needs_adapter",
        {"adapter": None, "load_in_8bit": True},
        "load_in_8bit",
        "quantized loading needs an adapter",
    ),
    ("qlora_needs_4bit", {"adapter": "qlora"}, "adapter", "qlora needs load_in_4bit: true"),
    (
        "qlora_not_8bit",
        {"adapter": "qlora", "load_in_8bit": True},
        "load_in_8bit",
        "loads the model in 4-bit, not 8-bit",
    ),
    (
        "one_quantization",
        {**QLORA, "load_in_8bit": True},
        "load_in_8bit",
        "load_in_4bit and load_in_8bit exclude each other",
    ),
    (
        "bnb_options_need_4bit",
        {"bnb_4bit_quant_type": "nf4"},
        "bnb_4bit_quant_type",
        "has no effect without load_in_4bit",
    ),
    (
        "lora_options_need_adapter",
        {"adapter": None, "lora_r": 16},
        "lora_r",
        "has no effect without an adapter",
    ),
    (
        "target_modules_are_regexes",
        {"lora_target_modules": ["q_proj", "(v_proj"]},
        "lora_target_modules[1]",
        "is not a valid regular expression",
    ),
    (
        "unfrozen_parameters_are_regexes",
        {"unfrozen_parameters": ["layers.[0-"]},
        "unfrozen_parameters[0]",
        "is not a valid regular expression",
    ),
    (
        "unfrozen_not_reentrant",
        {
            "unfrozen_parameters": ["lm_head"],
            "gradient_checkpointing": True,
            "gradient_checkpointing_kwargs": {"use_reentrant": True},
        },
        "gradient_checkpointing_kwargs.use_reentrant",
        "reentrant gradient checkpointing",
    ),
    ("needs_data", {"datasets": None}, "datasets", "required: the recipe trains on nothing"),
    (
        "one_kind_of_data",
        {"pretraining_dataset": [{"path": "org/corpus"}], "max_steps": 10},
        "pretraining_dataset",
        "datasets and pretraining_dataset exclude each other",
    ),
    (
        "stream_needs_max_steps",
        {"datasets": None, "pretraining_dataset": [{"path": "org/corpus"}]},
        "pretraining_dataset",
        "needs max_steps",
    ),
    ("stream_needs_max_steps", {"streaming": True}, "streaming", "needs max_steps"),
    (
        "no_val_split_when_streaming",
        {"streaming": True, "max_steps": 10, "val_set_size": 0.1},
        "val_set_size",
        "cannot split a validation set off a streamed dataset",
    ),
    (
        "val_set_size_shape",
        {"val_set_size": 2.5},
        "val_set_size",
        "neither a fraction below 1 nor a whole number",
    ),
    (
        "test_datasets_or_split",
        {"test_datasets": [{"path": "data/t.jsonl", "type": "alpaca"}], "val_set_size": 0.1},
        "val_set_size",
        "test_datasets and a non-zero val_set_size exclude each other",
    ),
    (
        "jinja_needs_template",
        {"chat_template": "jinja"},
        "chat_template",
        "jinja needs chat_template_jinja",
    ),
    (
        "jinja_needs_template",
        {"datasets": [{"path": "d.jsonl", "type": "chat_template", "chat_template": "jinja"}]},
        "datasets[0].chat_template",
        "needs chat_template_jinja at the top level",
    ),
    (
        "jinja_text_needs_jinja",
        {"chat_template_jinja": "{{ x }}"},
        "chat_template_jinja",
        "is ignored while chat_template is tokenizer_default",
    ),
    (
        "roles_to_train_not_empty",
        {
            "datasets": [
                {
                    "path": "d.jsonl",
                    "type": "chat_template",
                    "roles_to_train": [],
                    "train_on_eos": "none",
                }
            ]
        },
        "datasets[0].roles_to_train",
        "nothing in this dataset would be trained",
    ),
    (
        "dataset_types_match_trainer",
        {"datasets": DPO_DATA},
        "datasets[0].type",
        "holds preference rows, but the recipe has no rl trainer",
    ),
    (
        "dataset_types_match_trainer",
        {"rl": "kto", "datasets": DPO_DATA},
        "datasets[0].type",
        "rl: kto needs kto rows",
    ),
    (
        "dataset_types_match_trainer",
        {"rl": "dpo"},
        "datasets[0].type",
        "rl: dpo needs paired preference rows",
    ),
    ("rl_options_need_rl", {"rl_beta": 0.1}, "rl_beta", "has no effect without an rl trainer"),
    (
        "trainer_specific_options",
        {"rl": "dpo", "datasets": DPO_DATA, "orpo_alpha": 0.1},
        "orpo_alpha",
        "only applies to rl: orpo",
    ),
    (
        "trainer_specific_options",
        {"rl": "dpo", "datasets": DPO_DATA, "kto_desirable_weight": 1.0},
        "kto_desirable_weight",
        "only applies to rl: kto",
    ),
    (
        "dpo_weights_need_types",
        {"rl": "dpo", "datasets": DPO_DATA, "dpo_loss_weights": [1.0]},
        "dpo_loss_weights",
        "needs dpo_loss_type",
    ),
    (
        "dpo_weights_need_types",
        {
            "rl": "dpo",
            "datasets": DPO_DATA,
            "dpo_loss_type": ["sigmoid", "bco_pair"],
            "dpo_loss_weights": [1.0],
        },
        "dpo_loss_weights",
        "has 1 weights for 2 loss types",
    ),
    (
        "prompt_fits_sequence",
        {"rl": "dpo", "datasets": DPO_DATA, "sequence_len": 512, "max_prompt_len": 512},
        "max_prompt_len",
        "leaves no room for the completion",
    ),
    (
        "no_packing_with_rl",
        {"rl": "dpo", "datasets": DPO_DATA, "sample_packing": True},
        "sample_packing",
        "sample packing does not work with rl: dpo",
    ),
    (
        "no_eval_packing_with_kto",
        {"rl": "kto", "datasets": KTO_DATA, "eval_sample_packing": True},
        "eval_sample_packing",
        "does not work with rl: kto",
    ),
    (
        "eval_packing_needs_packing",
        {"eval_sample_packing": True},
        "eval_sample_packing",
        "needs sample_packing: true",
    ),
    (
        "packing_pads",
        {"sample_packing": True, "pad_to_sequence_len": False},
        "pad_to_sequence_len",
        "packed batches are always padded",
    ),
    (
        "eval_table_without_eval_packing",
        {"sample_packing": True, "eval_table_size": 5},
        "eval_table_size",
        "cannot decode packed evaluation batches",
    ),
    (
        "two_of_three_batch_sizes",
        {"gradient_accumulation_steps": None},
        "micro_batch_size",
        "the batch is underdetermined",
    ),
    (
        "two_of_three_batch_sizes",
        {"gradient_accumulation_steps": None, "micro_batch_size": None},
        "",
        "the batch is underdetermined",
    ),
    (
        "accumulation_or_batch_size",
        {"batch_size": 16},
        "batch_size",
        "gradient_accumulation_steps and batch_size exclude each other",
    ),
    (
        "one_warmup",
        {"warmup_steps": 10, "warmup_ratio": 0.1},
        "warmup_ratio",
        "warmup_steps and warmup_ratio exclude each other",
    ),
    ("warmup_ends", {"warmup_steps": 100, "max_steps": 50}, "warmup_steps", "never leaves warmup"),
    (
        "one_half_precision",
        {"bf16": True, "fp16": True},
        "fp16",
        "bf16 and fp16 exclude each other",
    ),
    (
        "one_attention",
        {"flash_attention": True, "sdp_attention": True},
        "sdp_attention",
        "flash_attention and sdp_attention exclude each other",
    ),
    (
        "checkpointing_kwargs_need_checkpointing",
        {"gradient_checkpointing_kwargs": {"use_reentrant": False}},
        "gradient_checkpointing_kwargs",
        "without gradient_checkpointing: true",
    ),
    (
        "one_memory_limit",
        {"max_memory": {"0": "20GiB"}, "gpu_memory_limit": "20GiB"},
        "gpu_memory_limit",
        "max_memory and gpu_memory_limit exclude each other",
    ),
    (
        "deepspeed_or_fsdp",
        {"deepspeed": "ds/zero3.json", "fsdp": ["full_shard"]},
        "fsdp",
        "deepspeed and fsdp exclude each other",
    ),
    (
        "deepspeed_or_fsdp",
        {"deepspeed": "ds/zero3.json", "fsdp_config": {"fsdp_version": 2}},
        "fsdp_config",
        "deepspeed and fsdp exclude each other",
    ),
    (
        "fsdp_no_8bit_optimizer",
        {"fsdp": ["full_shard", "auto_wrap"], "optimizer": "paged_adamw_8bit"},
        "optimizer",
        "8-bit state that FSDP cannot shard",
    ),
    (
        "fsdp_settings_transformers_reads",
        {"fsdp_config": {"fsdp_version": 2, "fsdp_limit_all_gathers": True}},
        "fsdp_config.fsdp_limit_all_gathers",
        "FSDP1 only, and fsdp_version is 2",
    ),
    (
        "save_steps_need_step_strategy",
        {"save_steps": 100, "save_strategy": "epoch"},
        "save_strategy",
        "epoch conflicts with save_steps",
    ),
    (
        "save_steps_need_step_strategy",
        {"save_steps": 100, "saves_per_epoch": 2},
        "saves_per_epoch",
        "saves_per_epoch and save_steps exclude each other",
    ),
    (
        "best_checkpoint_needs_metric",
        {"save_strategy": "best"},
        "save_strategy",
        "needs metric_for_best_model",
    ),
    (
        "eval_steps_need_step_strategy",
        {"val_set_size": 0.1, "eval_steps": 50, "eval_strategy": "epoch"},
        "eval_strategy",
        "epoch conflicts with eval_steps",
    ),
    (
        "eval_steps_need_step_strategy",
        {"val_set_size": 0.1, "eval_steps": 50, "evals_per_epoch": 4},
        "evals_per_epoch",
        "evals_per_epoch and eval_steps exclude each other",
    ),
    (
        "eval_steps_need_step_strategy",
        {"eval_steps": 50},
        "eval_steps",
        "nothing to evaluate: val_set_size is 0",
    ),
    (
        "early_stopping_needs_steps",
        {"val_set_size": 0.1, "early_stopping_patience": 3},
        "early_stopping_patience",
        "needs save_steps and eval_steps",
    ),
    (
        "early_stopping_needs_steps",
        {"val_set_size": 0.1, "early_stopping_patience": 3, "save_steps": 150, "eval_steps": 100},
        "save_steps",
        "is not a multiple of eval_steps 100",
    ),
    (
        "best_model_needs_eval_set",
        {"load_best_model_at_end": True},
        "load_best_model_at_end",
        "needs an evaluation set",
    ),
]


@pytest.mark.parametrize(
    ("rule", "overrides", "path", "fragment"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_rule(rule: str, overrides: dict[str, Any], path: str, fragment: str) -> None:
    text, problems = problems_for(overrides)
    matching = [p for p in problems if fragment in p.message]
    assert len(matching) == 1, [p.render() for p in problems]
    problem = matching[0]
    rendered = problem.render()
    assert problem.location is not None
    top_key = path.split(".")[0].split("[")[0]
    if top_key:
        written = [
            i for i, line in enumerate(text.splitlines(), 1) if line.startswith(f"{top_key}:")
        ]
        expected_line = written[0] if written else 1  # a missing key is reported at the top
        assert problem.location.line == expected_line, rendered
        assert rendered.startswith(f"r.yaml:{expected_line}:")
        assert f": {path}: " in rendered
    else:
        assert rendered.startswith("r.yaml:1:1: the batch is underdetermined")
    assert problem.hint, "every rule says what to do"
    # The rule that produced the message is the one the case names.
    recipe = Recipe.model_validate(
        {k: v for k, v in {**BASE, **overrides}.items() if v is not None}
    )
    assert rule in {v.rule for v in check_rules(recipe) if fragment in v.message}


def test_every_rule_has_a_case() -> None:
    covered = {case[0] for case in CASES}
    assert {r.__name__ for r in RULES} <= covered
    assert len(RULES) >= 30


def test_base_recipe_is_valid() -> None:
    assert problems_for({})[1] == []


def test_all_violations_reported_together() -> None:
    _, problems = problems_for({"bf16": True, "fp16": True, "warmup_steps": 1, "warmup_ratio": 0.1})
    assert len(problems) == 2


def test_rules_reported_next_to_value_errors() -> None:
    _, problems = problems_for({"lora_r": -1, "bf16": True, "fp16": True})
    assert [p.message for p in problems] == ["must be > 0", "bf16 and fp16 exclude each other"]


def test_rule_reading_an_invalid_value_stays_silent() -> None:
    # micro_batch_size is invalid; the batch rule must not claim the batch is underdetermined.
    _, problems = problems_for({"micro_batch_size": -1})
    assert [p.render() for p in problems] == ["r.yaml:4:19: micro_batch_size: must be > 0"]
    # An invalid dataset entry must not make "needs_data" claim there are no datasets.
    _, problems = problems_for({"datasets": [{"path": "d.jsonl", "type": "nope"}]})
    assert [p.message for p in problems] == ["unknown type 'nope'"]


def test_missing_required_values_do_not_hide_rules() -> None:
    _, problems = problems_for(
        {"base_model": None, "learning_rate": None, "warmup_steps": 5, "warmup_ratio": 0.1}
    )
    assert [str(p.key_path[0]) for p in problems] == ["base_model", "learning_rate", "warmup_ratio"]
