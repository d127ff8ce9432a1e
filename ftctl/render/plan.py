"""Plan output: terminal (Terraform-like), Markdown (one PR comment), JSON (format_version 1)."""

from __future__ import annotations

import json
from typing import Any

from ftctl import __version__
from ftctl.errors import one_line
from ftctl.plan.planner import SYMBOLS, Change, Estimate, Plan, Reason

FORMAT_VERSION = 1
MARKDOWN_LIMIT = 60_000
COLOURS = {
    "create": "green",
    "retrain": "yellow",
    "restore": "cyan",
    "republish": "blue",
    "retire": "red",
}


def estimate_text(estimate: Estimate | None) -> str | None:
    if estimate is None:
        return None
    tokens = (
        f"~{_count(estimate.tokens)} tokens" if estimate.tokens is not None else "tokens unknown"
    )
    params = (
        f"{_count(estimate.params)} params" if estimate.params is not None else "params unknown"
    )
    hours = (
        f"~{estimate.gpu_hours:.2g} GPU-hours on {estimate.accelerator}"
        if estimate.gpu_hours is not None
        else "GPU-hours unknown"
    )
    return f"estimate: {tokens}, {params}, {hours} ({estimate.basis})"


def _count(value: int | None) -> str:
    if value is None:
        return "?"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return str(value)


def reason_line(reason: Reason) -> str:
    return f"{reason.kind:<19} {reason.text()}" if reason.text() != reason.kind else reason.kind


def _marked(change: Change) -> str:
    """The recipe's name, marked when its recorded run was attested --external."""
    external = bool((change.before or {}).get("external"))
    return (
        f"{change.recipe} (external: inputs not verified by ftctl)" if external else change.recipe
    )


def trust_lines(plan: Plan) -> list[str]:
    """The trust changes, as plain lines: keys the change adds count for nothing."""
    if not plan.trust_changes:
        return []
    lines = [
        f"trust changes against {plan.trust} (not trusted; manifests signed only by them count as absent):"
    ]
    for change, file, keyid in plan.trust_changes:
        shown = f" (keyid {keyid[:16]})" if keyid else ""
        lines.append(f"  {change:<8} {file}{shown}")
    return [*lines, ""]


def terminal_lines(plan: Plan, styled: bool = True) -> list[tuple[str, str | None]]:
    """(plain text, rich markup) for each line; no markup (and no rich import) unless ``styled``.

    The plan's warnings are not among them: the CLI prints them to stderr (``ftctl: warning:``).
    """

    def style(text: str, tag: str | None = None) -> str | None:
        if not styled:
            return None
        from ftctl.render.terminal import escape

        return f"[{tag}]{escape(text)}[/{tag}]" if tag else escape(text)

    lines: list[tuple[str, str | None]] = []
    for text in trust_lines(plan):
        lines.append((text, style(text, "red")))
    changed = [c for c in plan.changes if c.action != "no-op"]
    if changed:
        text = "ftctl will perform these actions:"
        lines.append((text, style(text, "bold")))
    for change in changed:
        head = f"  {SYMBOLS[change.action]:>3} {change.recipe}  {change.action}"
        lines.append(("", None))
        lines.append((head, style(head, COLOURS.get(change.action, "white"))))
        for reason in change.reasons:
            text = f"        {reason_line(reason)}"
            lines.append((text, style(text)))
        estimate = estimate_text(change.estimate)
        if estimate:
            text = f"        {estimate}"
            lines.append((text, style(text, "dim")))
    unchanged = [_marked(c) for c in plan.changes if c.action == "no-op"]
    if unchanged:
        text = f"unchanged: {', '.join(unchanged)}"
        lines.append(("", None))
        lines.append((text, style(text, "dim")))
    lines.append(("", None))
    lines.append((plan.summary(), style(plan.summary(), "bold")))
    return lines


def json_text(plan: Plan) -> str:
    """``plan --json``: :func:`to_json`, indented, keys sorted."""
    return json.dumps(to_json(plan), indent=2, sort_keys=True)


def to_json(plan: Plan) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "ftctl_version": __version__,
        "summary": {
            "train": plan.count("create", "retrain"),
            "restore": plan.count("restore"),
            "republish": plan.count("republish"),
            "retire": plan.count("retire"),
            "unchanged": plan.count("no-op"),
        },
        "changes": [_change_json(c) for c in plan.changes],
        "warnings": list(plan.warnings),
        "trust": plan.trust,
        "trust_changes": [
            {"change": change, "file": file, "keyid": keyid}
            for change, file, keyid in plan.trust_changes
        ],
    }


def _change_json(change: Change) -> dict[str, Any]:
    estimate = change.estimate
    return {
        "recipe": change.recipe,
        "action": change.action,
        "reasons": [
            {"kind": r.kind, "path": r.path, "old": r.old, "new": r.new} for r in change.reasons
        ],
        "before": change.before,
        "after": change.after,
        "fingerprint": change.fingerprint,
        "estimate": None
        if estimate is None
        else {
            "tokens": estimate.tokens,
            "params": estimate.params,
            "accelerator": estimate.accelerator,
            "gpu_hours": None if estimate.gpu_hours is None else round(estimate.gpu_hours, 4),
            "basis": estimate.basis,
            "is_estimate": True,
        },
    }


def markdown(plan: Plan, limit: int = MARKDOWN_LIMIT) -> str:
    """One PR comment: a summary line, a collapsible section per change, cut under ``limit``."""
    head = f"### ftctl plan\n\n**{plan.summary()}**\n"
    parts = [head]
    if plan.trust_changes:
        rows = "\n".join(
            f"| {change} | `{_md(file)}` | `{keyid[:16] if keyid else '-'}` |"
            for change, file, keyid in plan.trust_changes
        )
        parts.append(
            f"\n**Trust changes** against {_md(plan.trust)}: these keys are not trusted, and "
            f"manifests signed only by them count as absent.\n\n| change | key file | keyid |\n"
            f"|---|---|---|\n{rows}\n"
        )
    if plan.warnings:
        parts.append("\n" + "\n".join(f"> :warning: {_md(w)}" for w in plan.warnings) + "\n")
    sections = [_section(c) for c in plan.changes if c.action != "no-op"]
    unchanged = [c.recipe for c in plan.changes if c.action == "no-op"]
    tail = f"\nUnchanged: {', '.join(f'`{n}`' for n in unchanged)}\n" if unchanged else ""
    used = sum(len(p) for p in parts) + len(tail)
    shown = 0
    for section in sections:
        note_room = 200
        if used + len(section) + note_room > limit:
            break
        parts.append(section)
        used += len(section)
        shown += 1
    if shown < len(sections):
        parts.append(
            f"\n_{len(sections) - shown} more change(s) not shown: the comment would exceed "
            f"{limit:,} characters. Run `ftctl plan` for the full plan._\n"
        )
    parts.append(tail)
    return "".join(parts)


def _section(change: Change) -> str:
    first = change.reasons[0].text() if change.reasons else change.action
    rows = "\n".join(f"| {r.kind} | `{_md(r.text())}` |" for r in change.reasons)
    estimate = estimate_text(change.estimate)
    extra = f"\n\n{_md(estimate)}" if estimate else ""
    return (
        f"\n<details><summary><code>{SYMBOLS[change.action].strip() or ' '} {change.recipe}</code> "
        f"{change.action}: {_md(first)}</summary>\n\n| reason | change |\n|---|---|\n{rows}{extra}\n\n</details>\n"
    )


def _md(text: str) -> str:
    """User-derived text as inline markdown: one line, no table cell, code span or HTML tag it can end."""
    flat = one_line(text)  # control characters (newlines too) escaped: nothing starts a new line
    return flat.replace("&", "&amp;").replace("|", "\\|").replace("`", "'").replace("<", "&lt;")
