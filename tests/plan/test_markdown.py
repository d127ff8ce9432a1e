"""The pull-request comment keeps its structure whatever recipes, paths and reasons contain."""

from __future__ import annotations

import re

from ftctl.plan.planner import Change, Plan, Reason
from ftctl.render.plan import markdown

HOSTILE = "data/x|`</details>\n# forged\r\n<script>alert(1)</script>&amp;"


def hostile_plan() -> Plan:
    reason = Reason("dataset_changed", "datasets[0]", HOSTILE, HOSTILE + " (new)")
    change = Change("alpha", "retrain", (reason,), "sha256:" + "a" * 64, None, None)
    return Plan((change,), (f"manifests/x\nftctl: warning: forged: {HOSTILE}",))


def test_user_text_cannot_end_the_section_or_start_a_line() -> None:
    text = markdown(hostile_plan())
    assert text.count("<details>") == text.count("</details>") == 1
    assert "<script>" not in text and "&lt;script>" in text
    assert not re.search(r"^# forged", text, re.MULTILINE)
    assert not re.search(r"^ftctl: warning: forged", text, re.MULTILINE)
    table = [line for line in text.splitlines() if line.startswith("| dataset_changed")]
    assert len(table) == 1 and table[0].count(" | ") == 1  # the | in the path is escaped
    assert "\\n# forged" in text  # shown, escaped, on its line
