"""The training and evaluation sets: rows read, formatted, filtered, split and packed.

SFT rows are tokenized and masked by ftctl (formats.py); preference rows stay
strings that trl tokenizes (preference.py). Rows come from local files
(fetched through DVC when tracked and missing) or Hub datasets at the locked
revision.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftctl.errors import FtctlError
from ftctl.lock.lockfile import Lockfile
from ftctl.recipe.model import Recipe
from ftctl.render.terminal import warn
from ftctl.worker import formats


@dataclass(frozen=True)
class Data:
    """What the trainer trains and evaluates on."""

    train: Any  # a datasets.Dataset
    eval: Any  # a datasets.Dataset, or None
    tokens: int  # tokens of every row before the split (0 for preference rows, trl tokenizes those)


def build(recipe: Recipe, tokenizer: Any, root: Path, lock: Lockfile | None) -> Data:
    """The recipe's training set and evaluation set (test_datasets, else a val_set_size split).

    ``recipe`` is derived (ftctl.recipe.derived): eval_sample_packing is filled in.
    """
    from datasets import Dataset

    def rows_of(list_name: str) -> list[dict[str, Any]]:
        if recipe.rl:
            return build_preference_dataset(recipe, root, list_name, lock, tokenizer)
        return build_dataset(recipe, tokenizer, root, list_name, lock)

    rows = rows_of("datasets")
    if not rows:
        raise FtctlError(
            "the datasets produced no trainable rows",
            hint="check the dataset types and roles_to_train",
        )
    train_set, eval_set = Dataset.from_list(rows), None
    if recipe.test_datasets:
        eval_set = Dataset.from_list(rows_of("test_datasets"))
    elif recipe.val_set_size:
        size = recipe.val_set_size if recipe.val_set_size < 1 else int(recipe.val_set_size)
        # shuffle_merged_datasets: false keeps the rows in order, so the split is the last rows (as Axolotl).
        split = train_set.train_test_split(
            test_size=size, seed=recipe.seed, shuffle=recipe.shuffle_merged_datasets
        )
        train_set, eval_set = split["train"], split["test"]
    if recipe.sample_packing:
        from trl.data_utils import pack_dataset

        # Best-fit decreasing keeps every sample whole; the collator then trains padding-free on position_ids.
        train_set = pack_dataset(train_set, recipe.sequence_len, strategy="bfd")
        if eval_set is not None and recipe.eval_sample_packing:
            eval_set = pack_dataset(eval_set, recipe.sequence_len, strategy="bfd")
    tokens = sum(len(r.get("input_ids", ())) for r in rows)
    return Data(train_set, eval_set, tokens)


def _rows(
    recipe: Recipe, root: Path, list_name: str = "datasets", lock: Lockfile | None = None
) -> Iterator[tuple[Any, str, dict[str, Any]]]:
    """(dataset entry, where, row) for every row of every dataset, read through `datasets`.

    A local path (fetched through DVC when tracked and missing), or a Hub dataset at the locked
    revision (through the Hugging Face cache).
    """
    from datasets import load_dataset

    from ftctl.recipe.refs import check_hf_id, split_revision
    from ftctl.worker.inputs import (
        data_file,
        fetch_if_tracked,
        hub_dataset,
        locked_revision,
        resolve_path,
    )

    for index, entry in enumerate(getattr(recipe, list_name) or []):
        where = f"{list_name}[{index}] ({entry.path})"
        source = resolve_path(root, entry.path, f"{list_name}[{index}].path")
        if not source.exists() and not fetch_if_tracked(root, source, where):
            repo_id, revision = split_revision(entry.path)
            if check_hf_id(repo_id) is not None:
                raise FtctlError(
                    f"{where}: not found on this machine, and not a Hub dataset id",
                    hint="check the path (relative to the workspace root)",
                )
            source = hub_dataset(
                repo_id, locked_revision(lock, entry.path, "dataset") or revision, where
            )
            files: Any = None
            if entry.data_files:
                files = [data_file(root, entry.path, f, where, source) for f in entry.data_files]
            for row in load_dataset(
                str(source), name=entry.name, data_files=files, split=entry.split
            ):
                yield entry, where, row
            continue
        kind = entry.ds_type or (
            "json" if source.suffix in (".jsonl", ".json") else source.suffix.lstrip(".")
        )
        files = str(source)
        if entry.data_files:
            files = [data_file(root, entry.path, f, where) for f in entry.data_files]
        for row in load_dataset(kind, data_files=files, split=entry.split):
            yield entry, where, row


def build_preference_dataset(
    recipe: Recipe,
    root: Path,
    list_name: str = "datasets",
    lock: Lockfile | None = None,
    tokenizer: Any = None,
) -> list[dict[str, Any]]:
    from ftctl.worker.preference import preference_row

    return [
        preference_row(entry, row, where, _renderer(recipe, tokenizer, entry))
        for entry, where, row in _rows(recipe, root, list_name, lock)
    ]


def _renderer(recipe: Recipe, tokenizer: Any, entry: Any) -> Any:
    """How a chat_template.default entry renders messages (None for string preference rows)."""
    if entry.type != "chat_template.default" or tokenizer is None:
        return None
    template = formats.chat_template_for(
        entry.chat_template or recipe.chat_template,
        recipe.chat_template_jinja,
        tokenizer,
        recipe.base_model,
    )
    extra = {"chat_template": template} if template else {}

    def render(messages: list[dict[str, str]], prompt: bool) -> str:
        text = tokenizer.apply_chat_template(
            messages, add_generation_prompt=prompt, tokenize=False, **extra
        )
        return str(text)

    return render


def _chat_row(
    recipe: Recipe, tokenizer: Any, entry: Any, row: dict[str, Any], where: str
) -> dict[str, list[int]]:
    name = entry.chat_template or recipe.chat_template
    template = formats.chat_template_for(
        name, recipe.chat_template_jinja, tokenizer, recipe.base_model
    )
    return formats.chat(
        tokenizer,
        row,
        entry,
        template,
        where,
        markers=formats.end_markers(name, tokenizer, recipe.eot_tokens),
        template_kwargs=recipe.chat_template_kwargs,
        system_message=recipe.default_system_message,
    )


def build_dataset(
    recipe: Recipe,
    tokenizer: Any,
    root: Path,
    list_name: str = "datasets",
    lock: Lockfile | None = None,
) -> list[dict[str, list[int]]]:
    rows: list[dict[str, list[int]]] = []
    for entry, where, row in _rows(recipe, root, list_name, lock):
        if entry.type == "alpaca":
            rows.append(formats.alpaca(tokenizer, row, recipe.train_on_inputs, where))
        elif entry.type == "chat_template":
            rows.append(_chat_row(recipe, tokenizer, entry, row, where))
        elif entry.type == "completion":
            rows.extend(formats.completion(tokenizer, row, entry.field, recipe.sequence_len, where))
        elif entry.type == "input_output":
            rows.append(formats.input_output(tokenizer, row, where))
        else:
            raise FtctlError(f"{where}: type {entry.type} needs an rl trainer")
    # Like Axolotl: drop rows longer than sequence_len (truncating would cut the response off),
    # and rows with nothing to train; say how many.
    kept = [
        r
        for r in rows
        if len(r["input_ids"]) <= recipe.sequence_len
        and any(t != formats.IGNORE for t in r["labels"])
    ]
    if len(kept) < len(rows):
        warn(
            f"dropped {len(rows) - len(kept)} of {len(rows)} rows longer than "
            f"sequence_len {recipe.sequence_len} or with nothing to train"
        )
    return kept
