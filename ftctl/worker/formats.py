"""Dataset rows -> token ids and labels, with Axolotl's loss masking (label -100 = not trained).

Pure functions of a tokenizer and a row, tested token by token in
tests/test_worker_formats.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ftctl.errors import FtctlError

IGNORE = -100
ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _field(row: dict[str, Any], name: str, where: str) -> Any:
    if name not in row:
        raise FtctlError(
            f"{where}: row has no field '{name}' (fields: {', '.join(sorted(row))})",
            hint="map the column in the dataset entry, or fix the data",
        )
    return row[name]


def alpaca(
    tokenizer: Any, row: dict[str, Any], train_on_inputs: bool, where: str
) -> dict[str, list[int]]:
    instruction = str(_field(row, "instruction", where))
    extra = str(row.get("input") or "")
    prompt = (ALPACA_WITH_INPUT if extra else ALPACA_NO_INPUT).format(
        instruction=instruction, input=extra
    )
    prompt_ids = _ids(tokenizer, prompt)
    response_ids = [*_ids(tokenizer, str(_field(row, "output", where))), tokenizer.eos_token_id]
    labels = (prompt_ids if train_on_inputs else [IGNORE] * len(prompt_ids)) + response_ids
    return {"input_ids": prompt_ids + response_ids, "labels": labels}


def completion(
    tokenizer: Any, row: dict[str, Any], field: str, sequence_len: int, where: str
) -> Iterator[dict[str, list[int]]]:
    ids = [*_ids(tokenizer, str(_field(row, field, where))), tokenizer.eos_token_id]
    for start in range(0, len(ids), sequence_len):
        chunk = ids[start : start + sequence_len]
        yield {"input_ids": chunk, "labels": list(chunk)}


def input_output(tokenizer: Any, row: dict[str, Any], where: str) -> dict[str, list[int]]:
    input_ids: list[int] = []
    labels: list[int] = []
    for i, segment in enumerate(_field(row, "segments", where)):
        if not isinstance(segment, dict) or "text" not in segment:
            raise FtctlError(f"{where}: segments[{i}] needs text and label")
        ids = _ids(tokenizer, str(segment["text"]))
        input_ids += ids
        labels += ids if segment.get("label", True) else [IGNORE] * len(ids)
    return {"input_ids": input_ids, "labels": labels}


# Templates ftctl writes itself, from the public formats. Every other name stands for the base
# model's own tokenizer template (chat_template_for), never silently for another one.
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Alpaca's layout: the system text first, then "### Instruction:" / "### Response:" blocks; EOS ends a response.
ALPACA_CHAT = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}"
    "{% else %}{{ '### Response:\\n' + message['content'] + eos_token + '\\n\\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"
)
# Metharme (Pygmalion): role prefixes and no separators; EOS ends the model's turn.
METHARME = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ '<|system|>' + message['content'] }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>' + message['content'] }}"
    "{% else %}{{ '<|model|>' + message['content'] + eos_token }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|model|>' }}{% endif %}"
)
BUILT_IN_TEMPLATES = {"chatml": CHATML, "alpaca": ALPACA_CHAT, "metharme": METHARME}
# Templates whose turns end with EOS rather than a <|...|> marker (Metharme's next turn starts with one).
EOS_ENDS_TURN = frozenset({"alpaca", "metharme"})


def chat_template_for(
    name: str, jinja: str | None, tokenizer: Any = None, model: str = "the base model"
) -> str | None:
    """The Jinja template a recipe names; without a tokenizer, None stands for the tokenizer's own."""
    if name == "jinja":
        return jinja
    if name in BUILT_IN_TEMPLATES:
        return BUILT_IN_TEMPLATES[name]
    if tokenizer is None:
        return None
    return tokenizer_template(tokenizer, name, model)


def tokenizer_template(tokenizer: Any, name: str, model: str) -> str:
    """The base model's own template that a family name (llama3, qwen3, ...) stands for."""
    from ftctl.recipe.names import NAMED_TOKENIZER_TEMPLATES

    own = getattr(tokenizer, "chat_template", None)
    wanted = NAMED_TOKENIZER_TEMPLATES.get(name)
    if isinstance(own, dict):
        own = own.get(wanted or "default")
    elif wanted is not None:
        own = None  # a single template is not the named one
    if not own:
        which = (
            f"the base model's own '{wanted}' template"
            if wanted
            else "the base model's own template"
        )
        raise FtctlError(
            f"chat_template: {name} stands for {which}, and {model} has none",
            hint="use chatml or jinja (with chat_template_jinja)",
        )
    return str(own)


def end_markers(name: str, tokenizer: Any, eot_tokens: list[str] | None) -> tuple[str, ...] | None:
    """What ends a turn: the recipe's eot_tokens (and EOS), EOS for built-ins that end with it, else None.

    None keeps the rule that the first <|...|> token after a message closes it.
    """
    eos = getattr(tokenizer, "eos_token", None)
    if eot_tokens:
        return (*eot_tokens, *([eos] if eos else []))
    if name in EOS_ENDS_TURN and eos:
        return (eos,)
    return None


def chat(
    tokenizer: Any,
    row: dict[str, Any],
    entry: Any,
    template: str | None,
    where: str,
    *,
    markers: tuple[str, ...] | None = None,
    template_kwargs: dict[str, Any] | None = None,
    system_message: str | None = None,
) -> dict[str, list[int]]:
    """Render with the chat template; train the tokens of trainable turns (and their end-of-turn).

    ``markers`` are the texts that end a turn (``end_markers``); ``template_kwargs`` are the recipe's
    chat_template_kwargs; ``system_message`` is added to a conversation that has none.
    """
    raw = _field(row, entry.field_messages, where)
    role_key, content_key = (
        entry.message_property_mappings.role,
        entry.message_property_mappings.content,
    )
    role_map = {
        source: target for target, sources in (entry.roles or {}).items() for source in sources
    }
    messages: list[dict[str, str]] = []
    trainable: list[bool] = []
    for i, message in enumerate(raw):
        if not isinstance(message, dict) or role_key not in message or content_key not in message:
            raise FtctlError(f"{where}: message {i} needs '{role_key}' and '{content_key}'")
        role = str(role_map.get(message[role_key], message[role_key]))
        if role == "system" and entry.drop_system_message:
            continue
        messages.append({"role": role, "content": str(message[content_key])})
        flag = message.get(entry.message_field_training)
        trainable.append(bool(flag) if flag is not None else role in entry.roles_to_train)
    if (
        system_message
        and not entry.drop_system_message
        and not any(m["role"] == "system" for m in messages)
    ):
        messages.insert(0, {"role": "system", "content": system_message})
        trainable.insert(0, "system" in entry.roles_to_train)
    kwargs: dict[str, Any] = dict(template_kwargs or {})
    if template:
        kwargs["chat_template"] = template
    text = tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    spans = _trainable_spans(text, messages, trainable, entry.train_on_eos, markers)
    labels = [
        token
        if any(start < end_span and end > start_span for start_span, end_span in spans)
        else IGNORE
        for token, (start, end) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)
    ]
    return {"input_ids": list(encoded["input_ids"]), "labels": labels}


def _trainable_spans(
    text: str,
    messages: list[dict[str, str]],
    trainable: list[bool],
    train_on_eos: str,
    markers: tuple[str, ...] | None = None,
) -> list[tuple[int, int]]:
    """Character spans to train: each trainable message's content, plus its end-of-turn text."""
    spans = []
    cursor = 0
    last_trained = max((i for i, t in enumerate(trainable) if t), default=-1)
    for i, (message, train) in enumerate(zip(messages, trainable, strict=True)):
        start = text.find(message["content"], cursor)
        if start < 0:
            raise FtctlError(
                "the chat template does not render message contents verbatim",
                hint="use a template that keeps message text as written",
            )
        end = start + len(message["content"])
        nxt = text.find(messages[i + 1]["content"], end) if i + 1 < len(messages) else len(text)
        eos_end = _end_of_turn(text, end, nxt, markers)
        with_eos = (
            train_on_eos == "all"
            or (train_on_eos == "turn" and train)
            or (train_on_eos == "last" and i == last_trained)
        )
        if train:
            spans.append((start, eos_end if with_eos else end))
        elif with_eos and eos_end > end:
            spans.append((end, eos_end))
        cursor = end
    return spans


def _end_of_turn(text: str, end: int, limit: int, markers: tuple[str, ...] | None = None) -> int:
    """Where the turn's closing marker ends: the first of ``markers`` after the content, else the
    first special-looking token (e.g. <|im_end|>)."""
    segment = text[end:limit]
    if markers is not None:
        found = [(at, at + len(m)) for m in markers if (at := segment.find(m)) >= 0]
        return end + min(found)[1] if found else end
    close = segment.find("<|")
    if close < 0:
        return end
    stop = segment.find("|>", close)
    return end + (stop + 2 if stop >= 0 else close)
