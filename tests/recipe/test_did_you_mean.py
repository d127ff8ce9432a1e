"""did-you-mean: a suggestion only for a near miss, never for an unrelated key."""

from __future__ import annotations

import pytest

from ftctl.errors import Problem
from ftctl.recipe.keys import all_axolotl_keys
from ftctl.recipe.load import validate_document
from ftctl.recipe.messages import closest, did_you_mean, edit_distance
from ftctl.recipe.model import Recipe
from ftctl.yamlio import parse_yaml

FIELDS = sorted(Recipe.model_fields)


@pytest.mark.parametrize(
    ("word", "meant"),
    [
        ("lora_alhpa", "lora_alpha"),  # swapped neighbours
        ("wandb_projct", "wandb_project"),  # a letter left out
        ("learning_rat", "learning_rate"),
        ("Sequence_Len", "sequence_len"),  # case
        ("adam_eps", "adam_epsilon"),  # a unique abbreviation
    ],
)
def test_near_misses_are_suggested(word: str, meant: str) -> None:
    assert did_you_mean(word, FIELDS) == f"did you mean '{meant}'?"


@pytest.mark.parametrize(
    "word",
    ["eval_max_new_tokens", "torch_dtype", "test_value", "memory", "timeout_preprocess", "debug"],
)
def test_unrelated_keys_get_no_suggestion(word: str) -> None:
    # difflib's ratio sent eval_max_new_tokens to special_tokens and torch_dtype to tokenizer_type
    assert did_you_mean(word, FIELDS) is None


def test_short_words_allow_one_edit_only() -> None:
    assert closest("sgdd", ["sgd"]) == "sgd"
    assert closest("abcd", ["abxy"]) is None
    assert closest("lora", ["lora_r", "lora_alpha"]) is None  # too short for an abbreviation


def test_edit_distance_is_capped() -> None:
    assert edit_distance("abc", "acb", 3) == 1
    assert edit_distance("kitten", "sitting", 5) == 3
    assert edit_distance("a" * 10, "b" * 10, 2) == 3


def problems_of(text: str) -> list[str]:
    found: list[Problem] = []
    validate_document(parse_yaml(text, "r.yaml"), found)
    return [f"{p.message}; {p.hint}" for p in found]


BASE = (
    "base_model: ./m\nadapter: lora\ndatasets:\n  - {path: d.jsonl, type: alpaca}\n"
    "micro_batch_size: 1\ngradient_accumulation_steps: 1\nlearning_rate: 0.001\n"
)


def test_a_top_level_typo_may_be_meant_for_any_axolotl_key() -> None:
    assert "context_parallel_size" in all_axolotl_keys()
    assert problems_of(BASE + "context_parapllel_size: 2\n") == [
        "unknown key; did you mean 'context_parallel_size'?"
    ]
    assert problems_of(BASE + "eval_max_new_tokenz: 128\n") == [
        "unknown key; did you mean 'eval_max_new_tokens'?"
    ]


def test_an_unrelated_unknown_key_says_remove_it() -> None:
    assert problems_of(BASE + "frobnicate_tokens: 1\n") == [
        "unknown key; remove it (`ftctl schema` lists every key)"
    ]
