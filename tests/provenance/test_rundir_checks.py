"""result.json is range-checked before attest signs it; strict JSON refuses deep nesting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ftctl.canonical import JSONError, strict_loads
from ftctl.errors import FtctlError
from ftctl.provenance.rundir import check_result

GOOD = {"started_at": "2026-11-24T10:00:00Z", "finished_at": "2026-11-24T11:00:00Z"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"finished_at": "9999-12-31T23:59:59-05:00"}, "finished_at"),
        ({"finished_at": "1970-01-01T00:00:00Z"}, "finished_at"),
        ({"started_at": "2026-11-25T10:00:00Z"}, "started_at is after finished_at"),
        ({"started_at": "2026-11-24T10:00:00"}, "started_at"),
        ({"started_at": 5}, "started_at is missing"),
        ({"steps": -1}, "steps"),
        ({"tokens_seen": 1.5}, "tokens_seen"),
        ({"metrics": [1]}, "metrics"),
        ({"metrics": {"loss": "low"}}, "metrics 'loss'"),
    ],
)
def test_result_json_out_of_range(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(FtctlError) as info:
        check_result({**GOOD, **change}, Path("run/result.json"))
    assert reason in info.value.problem.message
    assert "\n" not in str(info.value)


def test_result_json_in_range() -> None:
    check_result({**GOOD, "steps": 3, "metrics": {"loss": 0.5}}, Path("r"))


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"a":' * 65 + "1" + "}" * 65])
def test_strict_loads_refuses_deep_nesting(text: str) -> None:
    with pytest.raises(JSONError, match="nested more than 64 levels"):
        strict_loads(text)


def test_strict_loads_takes_64_levels() -> None:
    assert strict_loads("[" * 64 + "]" * 64) is not None
