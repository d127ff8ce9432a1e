"""What apply prints per step and at the end: plain lines a CI log can hold, hostile values escaped."""

from __future__ import annotations

from ftctl.apply.controller import Outcome, Step, Summary
from ftctl.render.apply import outcome_line, step_line, summary_line

STEP = Step("tiny", "create", "sha256:" + "0" * 64)


def test_one_line_per_step_with_rate_and_eta() -> None:
    event = {
        "step": 6,
        "max_steps": 24,
        "loss": 6.1033,
        "lr": 0.002,
        "tokens": 3000,
        "elapsed_s": 6.0,
    }
    assert (
        step_line(STEP, event) == "tiny: step 6/24  loss 6.1033  lr 2.00e-03  500 tok/s  ETA 0:18"
    )


def test_missing_or_hostile_fields_are_left_out() -> None:
    event = {"step": "\x1b[31m", "max_steps": -1, "loss": "nan", "lr": True, "tokens": None}
    assert step_line(STEP, event) == "tiny: step 0/0"


def test_summary_and_outcomes() -> None:
    summary = Summary(
        [
            Outcome("a", "create", "trained", 75.0, 0.5, "manifests/a/x.intoto.json", None, 40),
            Outcome("b", "restore", "restored", 1.0, 0.0, "manifests/b/y.intoto.json"),
            Outcome("c", "create", "failed", 2.0, message="training c failed (exit 1): boom"),
            Outcome("d", "create", "skipped", 0.0, message="its upstream c failed"),
        ],
        3725.0,
    )
    assert outcome_line(summary.outcomes[0]) == (
        "a: trained in 1:15, resumed from step 40 -> manifests/a/x.intoto.json"
    )
    assert outcome_line(summary.outcomes[3]) == "d: skipped: its upstream c failed"
    assert summary_line(summary) == (
        "Apply failed: 1 trained, 1 restored, 0 published, 0 retired, 1 failed, 1 skipped; "
        "1:02:05, 0.50 GPU-hours."
    )
