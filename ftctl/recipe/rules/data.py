"""Rules on data and preference training: what trains on what, and which options need which trainer."""

from __future__ import annotations

from collections.abc import Iterator

from ftctl.recipe.datasets import KTO_TYPES, PAIRED_TYPES, SFT_TYPES
from ftctl.recipe.model import Recipe
from ftctl.recipe.names import RESERVED_TEMPLATE_KWARGS
from ftctl.recipe.rules.engine import Violation, given, rule


@rule
def no_streamed_data(r: Recipe) -> Iterator[Violation]:
    for key in ("pretraining_dataset", "streaming"):
        if getattr(r, key):
            yield Violation(
                (key,),
                "not supported by ftctl (streamed pretraining data)",
                "use type: completion in datasets for a finite text corpus",
            )


@rule
def no_prompt_limit(r: Recipe) -> Iterator[Violation]:
    if r.max_prompt_len is not None:
        yield Violation(
            ("max_prompt_len",),
            "not supported by ftctl (trl's preference trainers take no prompt limit)",
            "remove it; sequence_len bounds prompt and answer together",
        )


@rule
def chat_template_kwargs_not_reserved(r: Recipe) -> Iterator[Violation]:
    for key in sorted(set(r.chat_template_kwargs or {}) & RESERVED_TEMPLATE_KWARGS):
        yield Violation(
            ("chat_template_kwargs", key),
            "ftctl sets this parameter of the chat template itself",
            "remove it; chat_template_kwargs is for the template's own variables",
        )


@rule
def needs_data(r: Recipe) -> Iterator[Violation]:
    if r.datasets is None and r.pretraining_dataset is None:
        yield Violation(
            ("datasets",), "required: the recipe trains on nothing", "add a datasets: list"
        )


@rule
def one_kind_of_data(r: Recipe) -> Iterator[Violation]:
    if r.datasets is not None and r.pretraining_dataset is not None:
        yield Violation(
            ("pretraining_dataset",),
            "datasets and pretraining_dataset exclude each other",
            "keep one; use type: completion in datasets for a finite text corpus",
        )


@rule
def stream_needs_max_steps(r: Recipe) -> Iterator[Violation]:
    for key in ("pretraining_dataset", "streaming"):
        if getattr(r, key) and r.max_steps is None:
            yield Violation(
                (key,),
                "a streamed dataset has no length, so training needs max_steps",
                "set max_steps",
            )


@rule
def no_val_split_when_streaming(r: Recipe) -> Iterator[Violation]:
    if (r.streaming or r.pretraining_dataset) and r.val_set_size > 0:
        yield Violation(
            ("val_set_size",),
            "cannot split a validation set off a streamed dataset",
            "set val_set_size: 0 and use test_datasets",
        )


@rule
def val_set_size_shape(r: Recipe) -> Iterator[Violation]:
    if r.val_set_size >= 1 and r.val_set_size != int(r.val_set_size):
        yield Violation(
            ("val_set_size",),
            f"{r.val_set_size} is neither a fraction below 1 nor a whole number of rows",
            "write e.g. 0.05 or 500",
        )


@rule
def test_datasets_or_split(r: Recipe) -> Iterator[Violation]:
    if r.test_datasets is not None and r.val_set_size > 0:
        yield Violation(
            ("val_set_size",),
            "test_datasets and a non-zero val_set_size exclude each other",
            "set val_set_size: 0 or remove test_datasets",
        )


@rule
def jinja_needs_template(r: Recipe) -> Iterator[Violation]:
    if r.chat_template == "jinja" and r.chat_template_jinja is None:
        yield Violation(
            ("chat_template",), "jinja needs chat_template_jinja", "add the template text"
        )
    for i, entry in enumerate(r.datasets or ()):
        if getattr(entry, "chat_template", None) == "jinja" and r.chat_template_jinja is None:
            yield Violation(
                ("datasets", i, "chat_template"),
                "jinja needs chat_template_jinja at the top level",
                "add the template text",
            )


@rule
def jinja_text_needs_jinja(r: Recipe) -> Iterator[Violation]:
    uses_jinja = r.chat_template == "jinja" or any(
        getattr(entry, "chat_template", None) == "jinja" for entry in r.datasets or ()
    )
    if r.chat_template_jinja is not None and not uses_jinja:
        yield Violation(
            ("chat_template_jinja",),
            f"is ignored while chat_template is {r.chat_template}",
            "set chat_template: jinja",
        )


@rule
def roles_to_train_not_empty(r: Recipe) -> Iterator[Violation]:
    for i, entry in enumerate(r.datasets or ()):
        # With no trained role only train_on_eos: all leaves a token to train on; every row
        # of this dataset would be dropped as untrainable.
        if getattr(entry, "roles_to_train", None) == [] and getattr(entry, "train_on_eos", "") in (
            "turn",
            "last",
            "none",
        ):
            yield Violation(
                ("datasets", i, "roles_to_train"),
                "nothing in this dataset would be trained",
                "list the roles to train, e.g. [assistant]",
            )


# --- preference training -------------------------------------------------------


def _dataset_lists(r: Recipe) -> Iterator[tuple[str, int, str]]:
    for key in ("datasets", "test_datasets"):
        for i, entry in enumerate(getattr(r, key) or ()):
            yield key, i, entry.type


@rule
def dataset_types_match_trainer(r: Recipe) -> Iterator[Violation]:
    for key, i, kind in _dataset_lists(r):
        path = (key, i, "type")
        if r.rl is None and kind not in SFT_TYPES:
            yield Violation(
                path,
                f"{kind} holds preference rows, but the recipe has no rl trainer",
                "set rl: kto" if kind in KTO_TYPES else "set rl: dpo (or ipo, orpo)",
            )
        elif r.rl == "kto" and kind not in KTO_TYPES:
            yield Violation(path, f"rl: kto needs kto rows, not {kind}", "use type: kto")
        elif r.rl in ("dpo", "ipo", "orpo") and kind not in PAIRED_TYPES:
            yield Violation(
                path,
                f"rl: {r.rl} needs paired preference rows, not {kind}",
                "use type: dpo ({prompt, chosen, rejected}) or chatml.intel",
            )


@rule
def rl_options_need_rl(r: Recipe) -> Iterator[Violation]:
    if r.rl is not None:
        return
    for key in (
        "rl_beta",
        "dpo_loss_type",
        "dpo_loss_weights",
        "dpo_label_smoothing",
        "max_prompt_len",
    ):
        if given(r, key):
            yield Violation(
                (key,), "has no effect without an rl trainer", "set rl: dpo, ipo, orpo or kto"
            )


@rule
def trainer_specific_options(r: Recipe) -> Iterator[Violation]:
    if r.orpo_alpha is not None and r.rl != "orpo":
        yield Violation(("orpo_alpha",), "only applies to rl: orpo", "remove it or set rl: orpo")
    for key in ("kto_desirable_weight", "kto_undesirable_weight"):
        if getattr(r, key) is not None and r.rl != "kto":
            yield Violation((key,), "only applies to rl: kto", "remove it or set rl: kto")


@rule
def dpo_weights_need_types(r: Recipe) -> Iterator[Violation]:
    if r.dpo_loss_weights is None:
        return
    if r.dpo_loss_type is None:
        yield Violation(
            ("dpo_loss_weights",), "needs dpo_loss_type", "list the loss types the weights apply to"
        )
    elif len(r.dpo_loss_weights) != len(r.dpo_loss_type):
        yield Violation(
            ("dpo_loss_weights",),
            f"has {len(r.dpo_loss_weights)} weights for {len(r.dpo_loss_type)} loss types",
            "give one weight per dpo_loss_type entry",
        )


@rule
def prompt_fits_sequence(r: Recipe) -> Iterator[Violation]:
    if r.max_prompt_len is not None and r.max_prompt_len >= r.sequence_len:
        yield Violation(
            ("max_prompt_len",),
            f"{r.max_prompt_len} leaves no room for the completion in sequence_len {r.sequence_len}",
            "make it smaller than sequence_len",
        )
