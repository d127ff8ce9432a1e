"""The fingerprint changes exactly when the trained weights can change."""

from __future__ import annotations

from typing import Any

import pytest

from ftctl.lock.fingerprint import NON_SEMANTIC, fingerprint, training_config
from ftctl.lock.resolve import _without_refs
from ftctl.recipe.load import validate_document
from ftctl.recipe.model import Recipe
from ftctl.yamlio import parse_yaml

BASE = """\
base_model: org/model
adapter: lora
lora_r: 16
lora_alpha: 32
datasets:
  - path: data/train.jsonl
    type: alpaca
micro_batch_size: 2
gradient_accumulation_steps: 4
learning_rate: 0.0002
"""
BASE_ID = {"source": "hf", "repo": "org/model", "revision": "a" * 40}
DATA_IDS = [{"source": "dvc", "md5": "b" * 32}]
PINS = "sha256:" + "c" * 64
TRAINER = {"ftctl": "0.1.0"}


def recipe_of(text: str) -> Recipe:
    problems: list[Any] = []
    recipe = validate_document(parse_yaml(text, "r.yaml"), problems)
    assert recipe is not None, problems
    return recipe


def fp(
    text: str = BASE,
    base: dict[str, Any] = BASE_ID,
    data: list[dict[str, Any]] = DATA_IDS,
    pins: str = PINS,
    trainer: dict[str, str] = TRAINER,
) -> str:
    return fingerprint(_without_refs(training_config(recipe_of(text))), base, data, pins, trainer)


@pytest.mark.parametrize(
    "variant",
    [
        "# a comment\n" + BASE + "# trailing comment\n",
        "\n".join(
            reversed(
                BASE.replace(
                    "datasets:\n  - path: data/train.jsonl\n    type: alpaca\n", ""
                ).splitlines()
            )
        )
        + "\ndatasets:\n  - {type: alpaca, path: data/train.jsonl}\n",
        BASE.replace("learning_rate: 0.0002", "learning_rate: 2.0e-4"),
        BASE.replace("learning_rate: 0.0002", "learning_rate: '0.0002'"),
        BASE.replace("adapter: lora", 'adapter: "lora"'),
        BASE.replace("lora_r: 16", "lora_r:    16   "),
        BASE + "seed: 42\n",  # the default, written out
        BASE + "sequence_len: 2048\nnum_epochs: 1\noptimizer: adamw_torch_fused\n",
        BASE + "pad_to_sequence_len: false\n",  # the derived value, written out
    ],
    ids=[
        "comments",
        "key-order-and-flow",
        "exponent",
        "quoted-number",
        "quoted-string",
        "whitespace",
        "default-seed",
        "more-defaults",
        "derived-value",
    ],
)
def test_formatting_never_changes_it(variant: str) -> None:
    assert fp(variant) == fp()


SEMANTIC_EDITS = {
    "lora_r": ("lora_r: 16", "lora_r: 32"),
    "lora_alpha": ("lora_alpha: 32", "lora_alpha: 64"),
    "learning_rate": ("learning_rate: 0.0002", "learning_rate: 0.0003"),
    "micro_batch_size": ("micro_batch_size: 2", "micro_batch_size: 4"),
    "dataset type": ("type: alpaca", "type: completion"),
    "seed": (None, "seed: 7"),
    "sequence_len": (None, "sequence_len: 1024"),
    "sample_packing": (None, "sample_packing: true"),
    "num_epochs": (None, "num_epochs: 2"),
    "optimizer": (None, "optimizer: adamw_torch"),
    "lr_scheduler": (None, "lr_scheduler: linear"),
    "warmup_steps": (None, "warmup_steps: 10"),
    "weight_decay": (None, "weight_decay: 0.01"),
    "bf16": (None, "bf16: true"),
    "gradient_checkpointing": (None, "gradient_checkpointing: true"),
    "train_on_inputs": (None, "train_on_inputs: true"),
    "chat_template": (None, "chat_template: chatml"),
    "lora_target_modules": (None, "lora_target_modules: [q_proj]"),
    "val_set_size": (None, "val_set_size: 0.1"),
    "strict": (None, "strict: true"),
}


@pytest.mark.parametrize("field", sorted(SEMANTIC_EDITS))
def test_every_semantic_field_changes_it(field: str) -> None:
    old, new = SEMANTIC_EDITS[field]
    text = BASE.replace(old, new) if old else BASE + new + "\n"
    assert text != BASE
    assert fp(text) != fp()


NON_SEMANTIC_EDITS = [
    "output_dir: ./elsewhere",
    "logging_steps: 5",
    "save_steps: 100",
    "save_total_limit: 2",
    "save_strategy: epoch",
    "saves_per_epoch: 2",
    "dataset_prepared_path: ./prepared",
    "dataset_processes: 8",
    "wandb_project: p\nwandb_entity: e\nwandb_run_name: r\nwandb_name: n",
    "mlflow_tracking_uri: http://mlflow\nmlflow_experiment_name: x",
    "use_tensorboard: true",
    "ftctl:\n  description: changed\n  executor: local\n  publish: hf://acme/model",
    "val_set_size: 0.1\neval_steps: 50",
]


@pytest.mark.parametrize("edit", NON_SEMANTIC_EDITS)
def test_non_semantic_fields_do_not_change_it(edit: str) -> None:
    base = BASE + ("val_set_size: 0.1\n" if "eval_steps" in edit else "")
    edited = BASE + edit + "\n"
    assert fp(edited) == fp(base)


def test_checkpoint_cadence_counts_when_it_selects_the_weights() -> None:
    selecting = (
        BASE + "val_set_size: 0.1\nload_best_model_at_end: true\neval_steps: 50\nsave_steps: 50\n"
    )
    assert fp(selecting) != fp(
        selecting.replace("eval_steps: 50\nsave_steps: 50", "eval_steps: 25\nsave_steps: 50")
    )


def test_non_semantic_list_is_documented() -> None:
    from tests.conftest import REPO

    doc = (REPO / "docs" / "fingerprint.md").read_text()
    assert all(f"`{name}`" in doc for name in NON_SEMANTIC)


def test_inputs_change_it() -> None:
    assert fp(base={**BASE_ID, "revision": "d" * 40}) != fp()
    assert fp(data=[{"source": "dvc", "md5": "e" * 32}]) != fp()
    assert fp(pins="sha256:" + "f" * 64) != fp()
    assert fp(trainer={"ftctl": "0.2.0"}) != fp()


def test_reference_spelling_does_not_change_it() -> None:
    # The resolved identities stand in for the references: renaming a DVC file or pinning
    # @main to the commit it already points at trains the same thing.
    moved = BASE.replace("data/train.jsonl", "data/v2/train.jsonl").replace(
        "org/model", "org/model@main"
    )
    assert fp(moved) == fp()
