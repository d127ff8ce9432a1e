"""``ftctl preprocess RECIPE --debug``: the tokens a recipe trains on, each with its label.

Like Axolotl's preprocess --debug: every token of the first rows printed as
``(label, token_id) text``; label -100 means the loss ignores the token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftctl.errors import FtctlError
from ftctl.recipe.load import load_recipe
from ftctl.recipe.refs import parse_model_ref


def preprocess(recipe_path: Path, root: Path, rows: int = 3) -> list[str]:
    from transformers import AutoTokenizer

    from ftctl.worker.inputs import resolve_path
    from ftctl.worker.train import build_dataset, build_preference_dataset

    recipe = load_recipe(recipe_path).recipe
    ref = parse_model_ref(recipe.base_model)
    if ref.kind == "recipe":
        raise FtctlError("base_model: recipe:<name>: preprocess the upstream recipe's base instead")
    source = str(resolve_path(root, ref.value)) if ref.kind == "local" else ref.value
    tokenizer = AutoTokenizer.from_pretrained(
        source, revision=ref.revision if ref.kind == "hf" else None
    )
    lines: list[str] = []
    if recipe.rl:
        for index, row in enumerate(build_preference_dataset(recipe, root)[:rows]):
            lines.append(f"--- row {index} ({recipe.rl}: tokenized by trl at train time)")
            lines.extend(f"{key}: {value!r}" for key, value in row.items())
        return lines
    dataset = build_dataset(recipe, tokenizer, root)
    for index, row in enumerate(dataset[:rows]):
        trained = sum(label != -100 for label in row["labels"])
        lines.append(f"--- row {index}: {len(row['input_ids'])} tokens, {trained} trained")
        lines.extend(
            _token_line(tokenizer, token, label)
            for token, label in zip(row["input_ids"], row["labels"], strict=True)
        )
    lines.append(
        f"{len(dataset)} rows after dropping those longer than sequence_len {recipe.sequence_len}"
    )
    return lines


def _token_line(tokenizer: Any, token: int, label: int) -> str:
    text = tokenizer.decode([token])
    return f"({label:>5}, {token:>6}) {text!r}"
