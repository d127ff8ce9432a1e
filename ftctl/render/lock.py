"""How lock results read on a terminal: what was written, and why a lock is stale.

Every line is passed through ``one_line``: recipe paths, package names, hashes, markers and
Hub replies come from files and servers, so a control character or an escape sequence in
one is shown escaped and cannot start a line of its own or recolour the terminal. The
lines are printed as plain text, never as rich markup, so ``[red]`` in a name stays text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftctl.canonical import flatten
from ftctl.errors import one_line
from ftctl.lock.lockfile import Lockfile
from ftctl.lock.resolve import LockOutcome, LockReport
from ftctl.yamlio import display_path


def render_written(
    report: LockReport, written: list[LockOutcome], removed: list[Path]
) -> list[str]:
    lines = []
    for outcome in report.outcomes:
        written_lock = outcome.new or outcome.old  # write_locks refuses a lock it could not compute
        fp = written_lock.fingerprint.removeprefix("sha256:")[:12] if written_lock else "-"
        state = "locked  " if outcome in written else "unchanged"
        lines.append(f"{state} {outcome.name} ({fp})")
    lines.extend(f"removed  {display_path(path)} (its recipe was deleted)" for path in removed)
    return [one_line(line) for line in lines]


def render_check(report: LockReport) -> tuple[list[str], bool]:
    """(lines, stale?) for `lock --check`."""
    lines: list[str] = []
    for outcome in report.changed:
        if outcome.status == "missing":
            lines.append(f"{outcome.shown}: missing; run `ftctl lock {outcome.name}`")
            continue
        lines.append(f"{outcome.shown}: stale; run `ftctl lock {outcome.name}`")
        if outcome.old_problem:
            lines.append(f"  unreadable: {outcome.old_problem}")
        if outcome.stale_reason:
            lines.append(f"  {outcome.stale_reason}")
        if outcome.new is not None:
            lines.extend(diff_lines(outcome.old, outcome.new))
    for orphan in report.orphans:
        lines.append(
            f"{display_path(orphan)}: its recipe was deleted; run `ftctl lock` to remove it"
        )
    stale = bool(report.changed or report.orphans)
    if not stale:
        lines.append(
            f"{len(report.outcomes)} lock{'s' if len(report.outcomes) != 1 else ''} up to date"
        )
    return [one_line(line) for line in lines], stale


def diff_lines(old: Lockfile | None, new: Lockfile) -> list[str]:
    """``- key: old`` / ``+ key: new`` for every leaf that differs."""
    before = flatten(old.model_dump(mode="json")) if old is not None else {}
    after = flatten(new.model_dump(mode="json"))
    lines = []
    for key in sorted(set(before) | set(after), key=_order(after, before)):
        if before.get(key) == after.get(key):
            continue
        if key in before:
            lines.append(f"  - {key}: {before[key]}")
        if key in after:
            lines.append(f"  + {key}: {after[key]}")
    if not lines:
        lines.append("  (same content, different formatting)")
    return [one_line(line) for line in lines]


def _order(*tables: dict[str, Any]) -> Any:
    positions: dict[str, int] = {}
    for table in tables:
        for key in table:
            positions.setdefault(key, len(positions))
    return lambda key: positions[key]
