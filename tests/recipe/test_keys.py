"""Axolotl's keys as Axolotl reads them: the key table, null values, mapped spellings, plugins."""

from __future__ import annotations

from typing import Any

import pytest

from ftctl.errors import Problem
from ftctl.lock.fingerprint import training_config
from ftctl.recipe.axolotl_schema import PLUGINS, SFT_DATASET
from ftctl.recipe.datasets import ChatTemplateDataset
from ftctl.recipe.keys import all_axolotl_keys, dataset_kind, kind_of
from ftctl.recipe.load import validate_document
from ftctl.recipe.model import Recipe
from ftctl.yamlio import parse_yaml

HEAD = """\
base_model: org/model
adapter: lora
datasets:
  - path: data/train.jsonl
    type: alpaca
micro_batch_size: 2
gradient_accumulation_steps: 2
learning_rate: 0.0002
"""
FIELDS = frozenset(Recipe.model_fields)


def check(text: str) -> tuple[Recipe | None, list[str]]:
    problems: list[Problem] = []
    recipe = validate_document(parse_yaml(text, "r.yaml"), problems)
    return recipe, [p.render() for p in problems]


def valid(text: str) -> Recipe:
    recipe, problems = check(text)
    assert problems == [] and recipe is not None
    return recipe


def test_every_axolotl_key_is_classified() -> None:
    assert [k for k in all_axolotl_keys() if kind_of(k, FIELDS) == "unknown"] == []


def test_every_dataset_key_is_classified() -> None:
    fields = frozenset(ChatTemplateDataset.model_fields) | {"field", "field_prompt"}
    fields |= {"field_chosen", "field_rejected", "field_completion", "field_label"}
    assert [k for k in SFT_DATASET if dataset_kind(k, fields) == "unknown"] == []


def test_null_means_unset() -> None:
    recipe = valid(HEAD + "fp16:\nweight_decay:\nresume_from_checkpoint:\nlora_r:\ngptq:\n")
    assert recipe.fp16 is False and recipe.lora_r == 8 and recipe.weight_decay == 0


def test_numbers_written_as_strings_are_numbers() -> None:
    recipe = valid(HEAD.replace("0.0002", '"2e-5"') + 'lora_r: "16"\n')
    assert recipe.learning_rate == 2e-5 and recipe.lora_r == 16


def test_non_semantic_keys_are_accepted_and_not_fingerprinted() -> None:
    plain = training_config(valid(HEAD))
    noisy = HEAD + "ddp_find_unused_parameters: false\nloss_watchdog_threshold: 5.0\n"
    noisy += "remove_unused_columns: false\nskip_prepare_dataset: true\nlora_mlp_kernel: true\n"
    assert training_config(valid(noisy)) == plain


def test_unsupported_feature_inactive_is_accepted_and_set_is_refused() -> None:
    valid(HEAD + "tiled_mlp: false\nuse_ray: false\nray_num_workers: 1\n")
    _, problems = check(HEAD + "tiled_mlp: true\n")
    assert problems == [
        "r.yaml:9:1: tiled_mlp: not supported by ftctl (Axolotl's tiled MLP); remove it"
    ]


def test_new_fields_at_their_default_keep_the_fingerprint() -> None:
    config = training_config(valid(HEAD))
    assert "attn_implementation" not in config and "plugins" not in config
    assert "attn_implementation" in training_config(valid(HEAD + "attn_implementation: sdpa\n"))


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("attn_implementation: flash_attention_2", "attn_implementation", "flash_attention_2"),
        ("flex_attention: true", "attn_implementation", "flex_attention"),
        ("eager_attention: true", "attn_implementation", "eager"),
        ("noisy_embedding_alpha: 5", "neftune_noise_alpha", 5.0),
        ("dpo_beta: 0.1\nrl: dpo", "rl_beta", 0.1),
        ("hub_model_id: acme/bot", "ftctl", None),
        ("bf16: auto\ntf32: auto", "tf32", "auto"),
        ("lora_target_modules: '.*\\.(q|v)_proj'", "lora_target_modules", r".*\.(q|v)_proj"),
        ("optimizer: adamw_torch_8bit", "optimizer", "adamw_torch_8bit"),
        ("chat_template: gemma3", "chat_template", "gemma3"),
        ("evals_per_epoch: 0", "evals_per_epoch", None),
        ("eot_tokens:\n  - <end_of_turn>", "eot_tokens", ["<end_of_turn>"]),
    ],
)
def test_axolotl_spellings(line: str, field: str, value: Any) -> None:
    text = HEAD + line + "\n"
    if "rl: dpo" in line:
        text = text.replace("type: alpaca", "type: dpo")
    recipe = valid(text)
    if field == "ftctl":
        assert recipe.ftctl.publish == "hf://acme/bot"
    else:
        assert getattr(recipe, field) == value


def test_fsdp2_block() -> None:
    text = HEAD + (
        "fsdp_version: 2\nfsdp_config:\n  offload_params: false\n  state_dict_type: FULL_STATE_DICT\n"
        "  auto_wrap_policy: TRANSFORMER_BASED_WRAP\n  transformer_layer_cls_to_wrap: LlamaDecoderLayer\n"
        "  reshard_after_forward: true\n  activation_checkpointing: true\n"
    )
    config = valid(text).fsdp_config
    assert config is not None and config.fsdp_version == 2
    assert config.fsdp_transformer_layer_cls_to_wrap == "LlamaDecoderLayer"
    _, problems = check(text + "deepspeed: ds.json\n")
    assert problems == ["r.yaml:10:1: fsdp_config: deepspeed and fsdp exclude each other; keep one"]


def test_fsdp_prefixed_and_bare_conflict() -> None:
    _, problems = check(
        HEAD + "fsdp_config:\n  offload_params: true\n  fsdp_offload_params: false\n"
    )
    assert problems == [
        "r.yaml:10:3: fsdp_config.offload_params: conflicts with fsdp_offload_params; keep one"
    ]


def test_plugins_list() -> None:
    text = HEAD + (
        "plugins:\n  - axolotl.integrations.liger.LigerPlugin\n"
        "  - axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin\n"
        "liger_rms_norm: true\nliger_glu_activation: true\n"
    )
    recipe = valid(text)
    assert recipe.liger_rms_norm is True
    assert training_config(recipe)["cut_cross_entropy"] is True  # the plugin turns it on
    assert "axolotl.integrations.kd.KDPlugin" in PLUGINS


def test_unsupported_plugin_key() -> None:
    _, problems = check(HEAD + "use_scattermoe: true\n")
    assert problems == [
        "r.yaml:9:1: use_scattermoe: not supported by ftctl (Axolotl's kernels plugin); remove it"
    ]


def test_sharegpt_with_conversation_becomes_chat_template() -> None:
    text = HEAD.replace(
        "type: alpaca", "type: sharegpt\n    conversation: chatml\n    split: train"
    )
    recipe = valid(text)
    assert recipe.datasets is not None
    entry = recipe.datasets[0]
    assert isinstance(entry, ChatTemplateDataset)
    assert entry.chat_template == "chatml" and entry.field_messages == "conversations"
    assert entry.message_property_mappings.role == "from"
    assert entry.roles == {"user": ["human", "user"], "assistant": ["gpt", "assistant"]}


def test_old_message_field_keys_map_onto_mappings() -> None:
    text = HEAD.replace(
        "type: alpaca",
        "type: chat_template\n    message_field_role: from\n    message_field_content: value",
    )
    recipe = valid(text)
    assert recipe.datasets is not None
    entry = recipe.datasets[0]
    assert isinstance(entry, ChatTemplateDataset)
    assert entry.message_property_mappings.content == "value"


@pytest.mark.parametrize("key", ["revision_of_model", "model_revision"])
def test_revision_of_model_is_the_base_models_revision(key: str) -> None:
    recipe, problems = check(HEAD + f"{key}: v1.0\n")
    assert problems == [] and recipe is not None and recipe.base_model == "org/model@v1.0"
    same, problems = check(HEAD.replace("org/model", "org/model@v1.0") + f"{key}: v1.0\n")
    assert problems == [] and same is not None and same.base_model == "org/model@v1.0"
    _, problems = check(HEAD.replace("org/model", "org/model@main") + f"{key}: v1.0\n")
    assert problems == [f"r.yaml:9:1: {key}: conflicts with base_model's @main; keep one"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("attn_implementation: xformers", "xformers: not supported by ftctl (Axolotl's xformers"),
        ("attn_implementation: org/kernel", "not supported by ftctl (Axolotl's attention kernels"),
        ("optimizer: muon", "muon: not supported by ftctl (Axolotl's own optimizers)"),
        ("noisy_embedding_alpha: 5\nneftune_noise_alpha: 4", "means neftune_noise_alpha"),
        (
            "model_revision: main\nrevision_of_model: v2",
            "model_revision: conflicts with revision_of_model",
        ),
        ("fsdp_version: 2\nfsdp_config: {version: 1}", "conflicts with fsdp_config version 1"),
        ("lora_target_modules: '(q'", "is not a valid regular expression"),
    ],
)
def test_refused_values_name_the_feature(line: str, message: str) -> None:
    _, problems = check(HEAD + line + "\n")
    assert len(problems) == 1 and message in problems[0], problems


def test_dataset_feature_keys() -> None:
    text = HEAD.replace("type: alpaca", "type: chat_template\n    field_thinking: reasoning")
    _, problems = check(text)
    assert problems == [
        "r.yaml:6:5: datasets[0].field_thinking: not supported by ftctl "
        "(Axolotl's reasoning-trace fields); remove it"
    ]
