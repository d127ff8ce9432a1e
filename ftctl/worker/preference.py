"""Preference rows for DPO/IPO/ORPO ({prompt, chosen, rejected}) and KTO ({prompt, completion, label}).

trl tokenizes these itself; this module only maps a dataset's columns onto
trl's standard (string) format, the way Axolotl's mappers do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ftctl.errors import FtctlError

# Renders messages with the dataset's chat template: (messages, add_generation_prompt) -> text.
Render = Callable[[list[dict[str, str]], bool], str]
# Axolotl's chat_template.default: roles as written unless the entry maps them.
_DEFAULT_ROLES = {
    "user": ["user"],
    "assistant": ["assistant"],
    "system": ["system"],
    "tool": ["tool"],
}


def _get(row: dict[str, Any], name: str, where: str) -> Any:
    if name not in row:
        raise FtctlError(
            f"{where}: row has no field '{name}' (fields: {', '.join(sorted(row))})",
            hint="map the column with field_prompt, field_chosen, ... in the dataset entry",
        )
    return row[name]


def preference_row(
    entry: Any, row: dict[str, Any], where: str, render: Render | None = None
) -> dict[str, Any]:
    if entry.type == "chat_template.default":
        if render is None:
            raise FtctlError(f"{where}: chat_template.default rows need the tokenizer's template")
        return chat_preference_row(entry, row, where, render)
    if entry.type == "dpo":
        return {
            "prompt": str(_get(row, entry.field_prompt, where)),
            "chosen": str(_get(row, entry.field_chosen, where)),
            "rejected": str(_get(row, entry.field_rejected, where)),
        }
    if entry.type == "chatml.intel":
        # Axolotl's chatml.intel: a ChatML prompt from system + question; answers end the turn.
        system = row.get("system")
        prompt = (f"<|im_start|>system\n{system}<|im_end|>\n" if system else "") + (
            f"<|im_start|>user\n{_get(row, 'question', where)}<|im_end|>\n<|im_start|>assistant\n"
        )
        return {
            "prompt": prompt,
            "chosen": f"{_get(row, 'chosen', where)}<|im_end|>",
            "rejected": f"{_get(row, 'rejected', where)}<|im_end|>",
        }
    if entry.type == "kto":
        return {
            "prompt": str(_get(row, entry.field_prompt, where)),
            "completion": str(_get(row, entry.field_completion, where)),
            "label": bool(_get(row, entry.field_label, where)),
        }
    raise FtctlError(f"{where}: type {entry.type} holds SFT rows, not preference rows")


def chat_preference_row(
    entry: Any, row: dict[str, Any], where: str, render: Render
) -> dict[str, str]:
    """Axolotl's ``chat_template.default`` strategy: the prompt is the conversation up to the
    assistant's turn; each answer is that turn as the template renders it after a stand-in user
    message, cut from where its text starts and stripped at the end."""
    role_key = entry.message_property_mappings.role
    content_key = entry.message_property_mappings.content
    roles = {src: dst for dst, srcs in (entry.roles or _DEFAULT_ROLES).items() for src in srcs}

    def message(raw: Any, what: str) -> dict[str, str]:
        if not isinstance(raw, dict) or role_key not in raw or content_key not in raw:
            raise FtctlError(f"{where}: {what} needs '{role_key}' and '{content_key}'")
        role = raw[role_key]
        if role not in roles:
            raise FtctlError(
                f"{where}: {what} has role '{role}', which roles does not map",
                hint=f"map it with roles: (known: {', '.join(sorted(roles))})",
            )
        return {"role": roles[role], "content": str(raw[content_key])}

    def answer(field: str) -> dict[str, str]:
        raw = _get(row, field, where)
        if isinstance(raw, str):
            return {"role": "assistant", "content": raw}
        if isinstance(raw, list) and raw:
            raw = raw[-1]
        return message(raw, field)

    conversation = _get(row, entry.field_messages, where)
    if isinstance(conversation, str):
        conversation = [{role_key: "user", content_key: conversation}]
    if not isinstance(conversation, list):
        raise FtctlError(f"{where}: {entry.field_messages} must be a list of messages or a text")
    messages = [message(m, f"{entry.field_messages}[{i}]") for i, m in enumerate(conversation)]
    out = {"prompt": render(messages, True)}
    stand_in = {"role": "user", "content": "[[dummy_message]]"}
    for field, name in ((entry.field_chosen, "chosen"), (entry.field_rejected, "rejected")):
        turn = answer(field)
        text = render([stand_in, turn], False)
        start = text.find(turn["content"])
        if start < 0:
            raise FtctlError(
                f"{where}: the chat template changes the {name} text, so its turn cannot be cut out",
                hint="use type: dpo with the rendered prompt and answers",
            )
        out[name] = text[start:].rstrip()
    return out
