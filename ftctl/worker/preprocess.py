"""``ftctl preprocess RECIPE --debug``: the tokens a recipe trains on, each with its label.

Like Axolotl's preprocess --debug: every token of the first rows printed as
``(label, token_id) text``; label -100 means the loss ignores the token.
Run as ``python -m ftctl.worker.preprocess RECIPE ROOT ROWS`` (by
ftctl.launch), a worker process like training's.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ftctl.errors import FtctlError
from ftctl.recipe.load import load_recipe
from ftctl.recipe.refs import parse_model_ref
from ftctl.render.terminal import echo, error
from ftctl.worker.process import run_process


def main() -> int:
    return run_process(_main)


def _main() -> int:
    if len(sys.argv) != 4:
        error("usage: python -m ftctl.worker.preprocess RECIPE ROOT ROWS")
        return 1
    for line in preprocess(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])):
        echo(line)
    return 0


def preprocess(recipe_path: Path, root: Path, rows: int = 3) -> list[str]:
    from ftctl.worker.data import build_dataset, build_preference_dataset
    from ftctl.worker.inputs import checked_base
    from ftctl.worker.model import load_tokenizer

    recipe = load_recipe(recipe_path).recipe
    if parse_model_ref(recipe.base_model).kind == "recipe":
        raise FtctlError("base_model: recipe:<name>: preprocess the upstream recipe's base instead")
    base = checked_base(recipe.base_model, None, root, None)
    tokenizer = load_tokenizer(
        base.source,
        base.revision,
        recipe,
        f"base_model {recipe.base_model}",
        local_only=base.local_only,
    )
    lines: list[str] = []
    if recipe.rl:
        for index, row in enumerate(
            build_preference_dataset(recipe, root, tokenizer=tokenizer)[:rows]
        ):
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


if __name__ == "__main__":
    sys.exit(main())
