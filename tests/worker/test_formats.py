"""Loss masking per dataset type, token by token, on the tiny model's tokenizer."""

from __future__ import annotations

from typing import Any

import pytest

from ftctl.errors import FtctlError
from ftctl.recipe.datasets import ChatTemplateDataset
from tests.conftest import REPO

pytest.importorskip("transformers", reason="the worker tests need the train extra")


@pytest.fixture(scope="module")
def tok() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(REPO / "models" / "tiny-llama"))


def trained_text(tok: Any, row: dict[str, list[int]]) -> str:
    return str(
        tok.decode(
            [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
        )
    )


def test_alpaca_masks_the_prompt(tok: Any) -> None:
    from ftctl.worker.formats import alpaca

    row = alpaca(
        tok, {"instruction": "Reverse the word.", "input": "apple", "output": "elppa"}, False, "d"
    )
    assert len(row["input_ids"]) == len(row["labels"])
    assert trained_text(tok, row) == "elppa<|endoftext|>"
    assert tok.decode(row["input_ids"]).startswith("Below is an instruction")
    assert "### Input:\napple" in tok.decode(row["input_ids"])
    everything = alpaca(
        tok, {"instruction": "Reverse the word.", "input": "apple", "output": "elppa"}, True, "d"
    )
    assert everything["labels"] == everything["input_ids"]


def test_alpaca_without_input_and_missing_field(tok: Any) -> None:
    from ftctl.worker.formats import alpaca

    row = alpaca(tok, {"instruction": "Say hi.", "output": "hi"}, False, "d")
    assert "### Input" not in tok.decode(row["input_ids"])
    with pytest.raises(FtctlError, match="row has no field 'output'"):
        alpaca(tok, {"instruction": "x"}, False, "datasets[0]")


def test_completion_trains_everything_in_chunks(tok: Any) -> None:
    from ftctl.worker.formats import completion

    rows = list(completion(tok, {"text": "apple river stone " * 20}, "text", 16, "d"))
    assert len(rows) > 1 and all(len(r["input_ids"]) <= 16 for r in rows)
    assert all(r["labels"] == r["input_ids"] for r in rows)
    assert rows[-1]["input_ids"][-1] == tok.eos_token_id


def test_input_output_masks_per_segment(tok: Any) -> None:
    from ftctl.worker.formats import input_output

    row = input_output(
        tok,
        {
            "segments": [
                {"label": False, "text": "Question: hot?"},
                {"label": True, "text": " cold."},
            ]
        },
        "d",
    )
    assert trained_text(tok, row) == " cold."


def chat_entry(**options: Any) -> ChatTemplateDataset:
    return ChatTemplateDataset.model_validate(
        {"path": "d.jsonl", "type": "chat_template", **options}
    )


MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Opposite of hot?"},
    {"role": "assistant", "content": "cold."},
    {"role": "user", "content": "Of big?"},
    {"role": "assistant", "content": "small."},
]


def test_chat_trains_assistant_turns_with_their_end_of_turn(tok: Any) -> None:
    from ftctl.worker.formats import chat

    row = chat(tok, {"messages": MESSAGES}, chat_entry(), None, "d")
    assert trained_text(tok, row) == "cold.<|im_end|>small.<|im_end|>"


def test_chat_train_on_eos_and_roles(tok: Any) -> None:
    from ftctl.worker.formats import chat

    no_eos = chat(tok, {"messages": MESSAGES}, chat_entry(train_on_eos="none"), None, "d")
    assert trained_text(tok, no_eos) == "cold.small."
    last = chat(tok, {"messages": MESSAGES}, chat_entry(train_on_eos="last"), None, "d")
    assert trained_text(tok, last) == "cold.small.<|im_end|>"
    users = chat(
        tok,
        {"messages": MESSAGES},
        chat_entry(roles_to_train=["user"], train_on_eos="none"),
        None,
        "d",
    )
    assert trained_text(tok, users) == "Opposite of hot?Of big?"


def test_chat_per_message_training_flag(tok: Any) -> None:
    from ftctl.worker.formats import chat

    messages: list[dict[str, object]] = [dict(m) for m in MESSAGES]
    messages[2]["training"] = False
    row = chat(tok, {"messages": messages}, chat_entry(), None, "d")
    assert trained_text(tok, row) == "small.<|im_end|>"


def test_chat_sharegpt_shaped_rows_through_mappings(tok: Any) -> None:
    from ftctl.worker.formats import chat

    entry = chat_entry(
        field_messages="conversations",
        message_property_mappings={"role": "from", "content": "value"},
        roles={"user": ["human"], "assistant": ["gpt"]},
    )
    row = chat(
        tok,
        {"conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}]},
        entry,
        None,
        "d",
    )
    assert trained_text(tok, row) == "Hello.<|im_end|>"


def test_preprocess_debug_prints_tokens_with_labels(run_cli: Any, pulled_data: Any) -> None:
    result = run_cli("preprocess", "tiny-alpaca", "--debug", "--rows", "1", cwd=REPO)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("--- row 0: ") and "trained" in lines[0]
    masked = [line for line in lines[1:] if line.startswith("( -100,")]
    trained = [
        line for line in lines[1:] if line.startswith("(") and not line.startswith("( -100,")
    ]
    assert masked and trained  # the prompt is masked, the response is trained
    assert trained[-1].endswith("'<|endoftext|>'")  # EOS is trained
    assert lines[-1].startswith("96 rows after dropping those longer than sequence_len 256")
    assert run_cli("preprocess", "tiny-alpaca", cwd=REPO).code == 1  # --debug is required


def test_named_chat_templates(tok: Any) -> None:
    from ftctl.worker.formats import chat, chat_template_for

    messages = {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    }
    entry = ChatTemplateDataset(path="d.jsonl", type="chat_template")
    row = chat(tok, messages, entry, chat_template_for("chatml", None), "d")
    assert (
        tok.decode(row["input_ids"])
        == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n"
    )
    assert chat_template_for("tokenizer_default", None) is None
    assert chat_template_for("jinja", "{{ x }}") == "{{ x }}"


def no_template(tok: Any) -> Any:
    import copy

    bare = copy.deepcopy(tok)
    bare.chat_template = None
    return bare


def test_family_names_use_the_base_models_own_template(tok: Any) -> None:
    from ftctl.worker.formats import chat, chat_template_for

    own = chat_template_for("llama3", None, tok, "tiny")
    assert own == tok.chat_template  # tiny-llama ships ChatML as its own template
    assert chat_template_for("tokenizer_default", None, tok, "tiny") == tok.chat_template
    row = chat(tok, {"messages": MESSAGES}, chat_entry(), own, "d")
    assert trained_text(tok, row) == "cold.<|im_end|>small.<|im_end|>"
    with pytest.raises(
        FtctlError,
        match="chat_template: qwen3 stands for the base model's own template, and tiny has none",
    ):
        chat_template_for("qwen3", None, no_template(tok), "tiny")
    with pytest.raises(FtctlError, match="tokenizer_default stands for"):
        chat_template_for("tokenizer_default", None, no_template(tok), "tiny")


def test_named_templates_from_a_dict_of_templates(tok: Any) -> None:
    from ftctl.worker.formats import chat_template_for

    several = no_template(tok)
    several.chat_template = {"default": "{{ 'd' }}", "tool_use": "{{ 't' }}"}
    assert chat_template_for("command_a", None, several, "m") == "{{ 'd' }}"
    assert chat_template_for("command_a_tool_use", None, several, "m") == "{{ 't' }}"
    with pytest.raises(FtctlError, match="command_a_rag stands for the base model's own 'rag'"):
        chat_template_for("command_a_rag", None, several, "m")
    with pytest.raises(FtctlError, match="own 'tool_use' template, and m has none"):
        chat_template_for("command_a_tool_use", None, tok, "m")  # one template, not the named one


def test_alpaca_chat_template_token_by_token(tok: Any) -> None:
    from ftctl.worker.formats import chat, chat_template_for, end_markers

    row = chat(
        tok,
        {"messages": MESSAGES},
        chat_entry(),
        chat_template_for("alpaca", None),
        "d",
        markers=end_markers("alpaca", tok, None),
    )
    assert tok.decode(row["input_ids"]) == (
        "Be brief.\n\n### Instruction:\nOpposite of hot?\n\n### Response:\ncold.<|endoftext|>\n\n"
        "### Instruction:\nOf big?\n\n### Response:\nsmall.<|endoftext|>\n\n"
    )
    assert trained_text(tok, row) == "cold.<|endoftext|>small.<|endoftext|>"


def test_metharme_chat_template_token_by_token(tok: Any) -> None:
    from ftctl.worker.formats import chat, chat_template_for, end_markers

    row = chat(
        tok,
        {"messages": MESSAGES},
        chat_entry(),
        chat_template_for("metharme", None),
        "d",
        markers=end_markers("metharme", tok, None),
    )
    assert tok.decode(row["input_ids"]) == (
        "<|system|>Be brief.<|user|>Opposite of hot?<|model|>cold.<|endoftext|>"
        "<|user|>Of big?<|model|>small.<|endoftext|>"
    )
    # The next turn's <|user|> is not the end of the model's turn: EOS is.
    assert trained_text(tok, row) == "cold.<|endoftext|>small.<|endoftext|>"
    last = chat(
        tok,
        {"messages": MESSAGES},
        chat_entry(train_on_eos="last"),
        chat_template_for("metharme", None),
        "d",
        markers=end_markers("metharme", tok, None),
    )
    assert trained_text(tok, last) == "cold.small.<|endoftext|>"


EOT_TEMPLATE = "{% for m in messages %}{{ '[' + m['role'] + ']\\n' + m['content'] + '[EOT]' + '\\n' }}{% endfor %}"


def test_eot_tokens_end_a_turn(tok: Any) -> None:
    from ftctl.recipe.model import Recipe
    from ftctl.worker.formats import chat, end_markers
    from ftctl.worker.model import add_tokens

    recipe = Recipe.model_validate(
        {"base_model": "./m", "learning_rate": 1e-4, "eot_tokens": ["[EOT]"]}
    )
    eot = no_template(tok)

    class Embeddings:
        class weight:
            shape = (10**6,)

    class Model:
        def get_input_embeddings(self) -> Any:
            return Embeddings()

    assert add_tokens(recipe, eot, Model()) is True  # added as a special token: one id
    assert len(eot(["[EOT]"], add_special_tokens=False)["input_ids"][0]) == 1
    assert add_tokens(recipe, eot, Model()) is False  # already there
    markers = end_markers("jinja", eot, recipe.eot_tokens)
    assert markers == ("[EOT]", "<|endoftext|>")
    row = chat(eot, {"messages": MESSAGES}, chat_entry(), EOT_TEMPLATE, "d", markers=markers)
    assert trained_text(eot, row) == "cold.[EOT]small.[EOT]"
    plain = chat(eot, {"messages": MESSAGES}, chat_entry(), EOT_TEMPLATE, "d")
    assert trained_text(eot, plain) == "cold.small."  # without eot_tokens no <|...|> closes it
    none = chat(
        eot,
        {"messages": MESSAGES},
        chat_entry(train_on_eos="none"),
        EOT_TEMPLATE,
        "d",
        markers=markers,
    )
    assert trained_text(eot, none) == "cold.small."


def test_chat_template_kwargs_and_default_system_message(tok: Any) -> None:
    from ftctl.worker.formats import chat

    template = (
        "{% if flag %}FLAG {% endif %}{% for m in messages %}"
        "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    )
    short = [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]
    row = chat(
        tok,
        {"messages": short},
        chat_entry(),
        template,
        "d",
        template_kwargs={"flag": True},
        system_message="Be kind.",
    )
    assert tok.decode(row["input_ids"]).startswith("FLAG <|im_start|>system\nBe kind.<|im_end|>")
    assert trained_text(tok, row) == "Hello.<|im_end|>"
    kept = chat(tok, {"messages": MESSAGES}, chat_entry(), None, "d", system_message="Be kind.")
    assert "Be kind." not in tok.decode(kept["input_ids"])  # the row has its own system message
