"""The recipe model: the seed config, base_model forms, dataset types, unsupported keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftctl.errors import Location, Problem
from ftctl.recipe.datasets import DATASET_TYPES
from ftctl.recipe.keys import axolotl_default
from ftctl.recipe.load import load_recipe, validate_document
from ftctl.recipe.model import Recipe
from ftctl.recipe.refs import ModelRef, RefError, model_ref_problem, parse_model_ref
from ftctl.recipe.unsupported import UNSUPPORTED_KEYS
from ftctl.yamlio import parse_yaml
from tests.conftest import REPO, VALID_RECIPE

# The config every Axolotl user knows, exactly as the Foundation issue gives it.
SEED_CONFIG = """\
base_model: meta-llama/Meta-Llama-3.1-8B
strict: false
load_in_4bit: true
bnb_4bit_quant_type: nf4
bnb_4bit_use_double_quant: true
bnb_4bit_compute_dtype: bfloat16
adapter: qlora
lora_r: 32
lora_alpha: 64
lora_dropout: 0.05
lora_target_modules: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]
use_rslora: true
datasets:
  - path: tatsu-lab/alpaca
    type: alpaca
chat_template: llama3
val_set_size: 0.05
sequence_len: 4096
sample_packing: true
pad_to_sequence_len: true
eval_sample_packing: false
micro_batch_size: 2
gradient_accumulation_steps: 8
num_epochs: 3
optimizer: paged_adamw_8bit
lr_scheduler: cosine
learning_rate: 0.0002
warmup_ratio: 0.03
bf16: true
tf32: true
flash_attention: true
gradient_checkpointing: true
gradient_checkpointing_kwargs:
  use_reentrant: false
output_dir: ./outputs/llama3-qlora
save_steps: 200
save_total_limit: 3
logging_steps: 10
eval_steps: 200
wandb_project: yobitel-finetune
wandb_run_name: llama3-8b-alpaca-r32
"""


def validate_text(text: str) -> tuple[Recipe | None, list[str]]:
    problems: list[Problem] = []
    recipe = validate_document(parse_yaml(text, "r.yaml"), problems)
    return recipe, [p.render() for p in problems]


def test_seed_config_validates_exactly_as_written() -> None:
    recipe, problems = validate_text(SEED_CONFIG)
    assert problems == []
    assert recipe is not None
    assert recipe.adapter == "qlora" and recipe.lora_r == 32 and recipe.learning_rate == 0.0002
    assert recipe.gradient_checkpointing_kwargs is not None
    assert recipe.gradient_checkpointing_kwargs.use_reentrant is False
    assert recipe.datasets is not None and recipe.datasets[0].type == "alpaca"


def test_seed_config_is_shipped_as_an_example() -> None:
    shipped = (REPO / "examples" / "llama3-8b-qlora-alpaca.yaml").read_text(encoding="utf-8")
    assert shipped == SEED_CONFIG


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("meta-llama/Llama-3.1-8B", ModelRef("hf", "meta-llama/Llama-3.1-8B")),
        ("gpt2", ModelRef("hf", "gpt2")),
        ("org/name@main", ModelRef("hf", "org/name", "main")),
        ("org/name@v1.0", ModelRef("hf", "org/name", "v1.0")),
        ("org/name@refs/pr/3", ModelRef("hf", "org/name", "refs/pr/3")),
        ("org/name@" + "a" * 40, ModelRef("hf", "org/name", "a" * 40)),
        ("./models/tiny", ModelRef("local", "./models/tiny")),
        ("../shared/model", ModelRef("local", "../shared/model")),
        ("/srv/models/llama", ModelRef("local", "/srv/models/llama")),
        ("~/models/llama", ModelRef("local", "~/models/llama")),
        ("recipe:support-sft", ModelRef("recipe", "support-sft")),
    ],
)
def test_base_model_forms(text: str, expected: ModelRef) -> None:
    assert parse_model_ref(text) == expected
    assert str(parse_model_ref(text)) == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "must not be empty"),
        ("meta llama/x", "is not a Hugging Face id"),
        ("a/b/c", "is not a Hugging Face id"),
        ("org--x/name", "'--' and '..' are not allowed"),
        ("org/name-", "may not end"),
        ("org/name@", "nothing after '@'"),
        ("org/name@a..b", "is not a valid branch, tag or commit"),
        ("recipe:", "is not a recipe name"),
        ("recipe:Has_Caps", "is not a recipe name"),
    ],
)
def test_bad_base_model_forms(text: str, fragment: str) -> None:
    with pytest.raises(RefError, match=fragment):
        parse_model_ref(text)
    assert fragment in (model_ref_problem(text) or "")


DATASETS = {
    "alpaca": "{path: d.jsonl, type: alpaca}",
    "chat_template": "{path: d.jsonl, type: chat_template, field_messages: conversations, "
    "message_property_mappings: {role: from, content: value}, roles_to_train: [assistant, tool], "
    "train_on_eos: all, roles: {user: [human], assistant: [gpt]}}",
    "completion": "{path: d.jsonl, type: completion, field: body}",
    "input_output": "{path: d.jsonl, type: input_output}",
    "dpo": "{path: org/pairs@v2, type: dpo, field_prompt: question}",
    "chatml.intel": "{path: Intel/orca_dpo_pairs, type: chatml.intel}",
    "chat_template.default": "{path: org/chat-pairs, type: chat_template.default, "
    "field_messages: conversation, roles: {user: [human], assistant: [gpt]}}",
    "kto": "{path: d.parquet, type: kto, field_label: good, ds_type: parquet}",
}
RL_FOR = {"dpo": "dpo", "chatml.intel": "orpo", "chat_template.default": "dpo", "kto": "kto"}


def test_every_dataset_type_has_a_case() -> None:
    assert set(DATASETS) == DATASET_TYPES


@pytest.mark.parametrize("kind", sorted(DATASETS))
def test_dataset_types(kind: str) -> None:
    text = VALID_RECIPE.replace(
        "datasets:\n  - path: data/train.jsonl\n    type: alpaca\n",
        f"datasets:\n  - {DATASETS[kind]}\n",
    )
    if kind in RL_FOR:
        text += f"rl: {RL_FOR[kind]}\n"
    recipe, problems = validate_text(text)
    assert problems == []
    assert recipe is not None and recipe.datasets is not None
    assert recipe.datasets[0].type == kind


def test_chat_template_defaults_follow_axolotl() -> None:
    recipe, _ = validate_text(VALID_RECIPE.replace("type: alpaca", "type: chat_template"))
    assert recipe is not None and recipe.datasets is not None
    entry = recipe.datasets[0]
    assert entry.type == "chat_template"
    assert entry.field_messages == "messages"
    assert entry.roles_to_train == ["assistant"]
    assert entry.train_on_eos == "turn"


@pytest.mark.parametrize("key", sorted(UNSUPPORTED_KEYS))
def test_every_unsupported_key_is_named(key: str) -> None:
    # A value other than Axolotl's default: at the default the feature is off and accepted.
    value = "false" if axolotl_default(key) is True else "true"
    _, problems = validate_text(VALID_RECIPE + f"{key}: {value}\n")
    assert len(problems) == 1
    assert (
        f": {key}: not supported by ftctl (Axolotl's {UNSUPPORTED_KEYS[key].feature})"
        in problems[0]
    )


def test_unknown_key_position_is_the_key() -> None:
    _, problems = validate_text(VALID_RECIPE + "ftctl:\n  description: x\n  executr: local\n")
    assert problems == ["r.yaml:13:3: ftctl.executr: unknown key; did you mean 'executor'?"]


def test_infinite_numbers_are_refused() -> None:
    _, problems = validate_text(VALID_RECIPE + "val_set_size: .inf\n")
    assert problems == ["r.yaml:11:15: val_set_size: must be a finite number"]


def test_key_with_control_characters_stays_one_line() -> None:
    _, problems = validate_text('{"a\\nb": 1}')
    assert all("\n" not in p for p in problems)
    assert any("a\\nb: unknown key" in p for p in problems)


def test_defaults_live_on_fields() -> None:
    recipe, _ = validate_text(VALID_RECIPE)
    assert recipe is not None
    assert recipe.seed == 42 and recipe.sequence_len == 2048 and recipe.num_epochs == 1.0
    assert recipe.pad_to_sequence_len is None  # derived from sample_packing later, not here
    assert recipe.ftctl.executor == "local"
    assert recipe.model_fields_set >= {"base_model", "learning_rate"}
    assert "seed" not in recipe.model_fields_set


def test_recipe_is_frozen() -> None:
    recipe, _ = validate_text(VALID_RECIPE)
    assert recipe is not None
    with pytest.raises(ValueError):
        recipe.lora_r = 4  # type: ignore[misc]  # what the test checks: the model is frozen


@pytest.mark.parametrize(
    "path",
    sorted([*(REPO / "recipes").glob("*.yaml"), *(REPO / "examples").glob("*.yaml")]),
    ids=lambda p: p.name,
)
def test_shipped_recipes_validate(path: Path) -> None:
    loaded = load_recipe(path, path.name)
    assert loaded.name == path.stem


def test_problem_rendering() -> None:
    problem = Problem("must be > 0", Location("recipes/a.yaml", 12, 3), ("lora_alpha",), "set it")
    assert problem.render() == "recipes/a.yaml:12:3: lora_alpha: must be > 0; set it"
    assert Problem("x", Location("f"), ("datasets", 0, "type")).render() == "f: datasets[0].type: x"
