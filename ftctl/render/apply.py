"""What apply prints while it works, and its closing summary (all on stderr; results are manifests).

One line per logged training step (step, loss, learning rate, tokens/s, ETA),
and on a terminal a live bar below them. The lines are plain text for CI logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftctl.errors import one_line
from ftctl.render.terminal import escape, info, use_styles

if TYPE_CHECKING:
    from ftctl.apply.controller import Outcome, Step, Summary

VERB = {"create": "training", "retrain": "retraining", "restore": "restoring"}
VERB.update({"republish": "republishing", "retire": "retiring"})


def step_line(step: Step, event: dict[str, Any]) -> str:
    """``NAME: step 7/24  loss 6.0572  lr 2.00e-03  410 tok/s  ETA 0:12``."""
    done, total = _int(event.get("step")), _int(event.get("max_steps"))
    elapsed = _float(event.get("elapsed_s"))
    parts = [f"{step.recipe}: step {done}/{total}"]
    loss, lr = _number(event.get("loss")), _number(event.get("lr"))
    if loss is not None:
        parts.append(f"loss {loss:.4f}")
    if lr is not None:
        parts.append(f"lr {lr:.2e}")
    tokens = _int(event.get("tokens"))
    if tokens and elapsed > 0:
        parts.append(f"{tokens / elapsed:,.0f} tok/s")
    if done and total and elapsed > 0 and total >= done:
        parts.append(f"ETA {_clock(elapsed / done * (total - done))}")
    return "  ".join(parts)


def outcome_line(outcome: Outcome) -> str:
    if outcome.status in ("failed", "skipped"):
        return f"{outcome.recipe}: {outcome.status}: {one_line(outcome.message or '')}"
    resumed = f", resumed from step {outcome.resumed_from}" if outcome.resumed_from else ""
    return f"{outcome.recipe}: {outcome.status} in {_clock(outcome.seconds)}{resumed} -> {outcome.manifest}"


def summary_line(summary: Summary) -> str:
    counts = ", ".join(
        f"{summary.count(s)} {s}"
        for s in ("trained", "restored", "published", "retired", "failed", "skipped")
    )
    return (
        f"Apply {'failed' if summary.failed else 'complete'}: {counts}; "
        f"{_clock(summary.seconds)}, {summary.gpu_hours:.2f} GPU-hours."
    )


class Progress:
    """The apply reporter: lines on stderr, and a live bar when stderr is a terminal."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._task: Any = None

    def begin(self, step: Step) -> None:
        info(f"{step.recipe}: {VERB.get(step.action, step.action)}...")
        if step.action in ("create", "retrain") and use_styles(stderr=True):
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn(escape(step.recipe)),
                BarColumn(),
                TextColumn("{task.description}"),
                TimeRemainingColumn(),
                transient=True,
            )
            self._task = self._bar.add_task("starting", total=None)
            self._bar.start()

    def progress(self, step: Step, event: dict[str, Any]) -> None:
        line = step_line(step, event)
        if self._bar is not None:
            done, total = _int(event.get("step")), _int(event.get("max_steps"))
            self._bar.update(
                self._task, completed=done, total=total or None, description=f"{done}/{total}"
            )
            self._bar.console.print(escape(line), highlight=False)
        else:
            info(line)

    def end(self, outcome: Outcome) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        info(outcome_line(outcome))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _float(value: object) -> float:
    return _number(value) or 0.0


def _clock(seconds: float) -> str:
    hours, rest = divmod(max(0, round(seconds)), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
