"""type: chat_template.default: DPO rows from conversations, rendered as Axolotl's strategy does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ftctl.errors import FtctlError
from ftctl.recipe.datasets import ChatTemplatePreferenceDataset
from ftctl.recipe.load import load_recipe
from tests.conftest import REPO, RunCLI, write

pytest.importorskip("transformers", reason="the worker tests need the train extra")

RECIPE = """\
base_model: ./models/tiny-llama
adapter: lora
rl: dpo
chat_template: chatml
datasets:
  - path: data/pairs.jsonl
    type: chat_template.default
    field_messages: conversation
    message_field_role: from
    message_field_content: value
    roles: {user: [human], assistant: [gpt]}
micro_batch_size: 1
gradient_accumulation_steps: 1
learning_rate: 0.0001
"""


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(REPO / "models" / "tiny-llama")


def test_validate_accepts_it_as_axolotl_writes_it(tmp_path: Path) -> None:
    loaded = load_recipe(write(tmp_path / "r.yaml", RECIPE))
    entry = loaded.recipe.datasets[0] if loaded.recipe.datasets else None
    assert isinstance(entry, ChatTemplatePreferenceDataset)
    # the older message_field_* spellings land on message_property_mappings
    assert entry.message_property_mappings.role == "from"


def test_it_needs_a_preference_trainer(tmp_path: Path) -> None:
    with pytest.raises(FtctlError, match="rl"):
        load_recipe(write(tmp_path / "r.yaml", RECIPE.replace("rl: dpo\n", "")))


def test_rows_are_rendered_with_the_template(tmp_path: Path, tokenizer: Any) -> None:
    from ftctl.worker.data import build_preference_dataset

    write(
        tmp_path / "data" / "pairs.jsonl",
        '{"conversation": [{"from": "human", "value": "Hi?"}], '
        '"chosen": {"from": "gpt", "value": "Hello."}, "rejected": "Go away."}\n',
    )
    recipe = load_recipe(write(tmp_path / "r.yaml", RECIPE)).recipe
    rows = build_preference_dataset(recipe, tmp_path, tokenizer=tokenizer)
    assert rows == [
        {
            "prompt": "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n",
            "chosen": "Hello.<|im_end|>",
            "rejected": "Go away.<|im_end|>",
        }
    ]


def test_unmapped_roles_and_missing_fields_are_one_line(tmp_path: Path, tokenizer: Any) -> None:
    from ftctl.worker.preference import chat_preference_row

    entry = ChatTemplatePreferenceDataset.model_validate(
        {"path": "p", "type": "chat_template.default"}
    )

    def render(messages: list[dict[str, str]], prompt: bool) -> str:
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + ("<a>" if prompt else "")

    good = {"messages": [{"role": "user", "content": "Q"}], "chosen": "A", "rejected": "B"}
    assert chat_preference_row(entry, good, "d", render) == {
        "prompt": "<user>Q<a>",
        "chosen": "A",
        "rejected": "B",
    }
    with pytest.raises(FtctlError, match="role 'human', which roles does not map"):
        chat_preference_row(
            entry, {**good, "messages": [{"role": "human", "content": "Q"}]}, "d", render
        )
    with pytest.raises(FtctlError, match="row has no field 'rejected'"):
        chat_preference_row(entry, {"messages": [], "chosen": "A"}, "d", render)


@pytest.mark.slow
def test_dpo_on_chat_rows_learns(tmp_path: Path, run_cli: RunCLI) -> None:
    pairs = [("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow")] * 4
    rows = [
        {
            "messages": [{"role": "user", "content": f"Opposite of {w}?"}],
            "chosen": {"role": "assistant", "content": f"{o}."},
            "rejected": f"{w}.",
        }
        for w, o in pairs
    ]
    write(tmp_path / "data" / "prefs.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / ".git").mkdir()
    write(tmp_path / "ftctl.yaml", f"allow_paths: ['{REPO / 'models'}']\n")  # the tiny model
    write(
        tmp_path / "recipes" / "pref.yaml",
        f"""\
base_model: {REPO / "models" / "tiny-llama"}
adapter: lora
lora_target_modules: [q_proj, v_proj]
rl: dpo
datasets:
  - path: data/prefs.jsonl
    type: chat_template.default
sequence_len: 128
micro_batch_size: 4
gradient_accumulation_steps: 1
num_epochs: 3
optimizer: adamw_torch
learning_rate: 0.005
seed: 0
""",
    )
    result = run_cli("train", "pref", "--output", str(tmp_path / "run"), cwd=tmp_path)
    assert result.code == 0, result.err
    log = [
        json.loads(line) for line in (tmp_path / "run" / "train-log.jsonl").read_text().splitlines()
    ]
    assert log[-1]["loss"] < log[0]["loss"]
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
