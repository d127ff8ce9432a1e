"""Preference rows for DPO/IPO/ORPO ({prompt, chosen, rejected}) and KTO ({prompt, completion, label}).

trl tokenizes these itself; this module only maps a dataset's columns onto
trl's standard (string) format, the way Axolotl's mappers do.
"""

from __future__ import annotations

from typing import Any

from ftctl.errors import FtctlError


def _get(row: dict[str, Any], name: str, where: str) -> Any:
    if name not in row:
        raise FtctlError(
            f"{where}: row has no field '{name}' (fields: {', '.join(sorted(row))})",
            hint="map the column with field_prompt, field_chosen, ... in the dataset entry",
        )
    return row[name]


def preference_row(entry: Any, row: dict[str, Any], where: str) -> dict[str, Any]:
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
