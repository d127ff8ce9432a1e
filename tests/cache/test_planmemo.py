"""The plan memo gives the answer recomputing gives, and an unchanged workspace recomputes nothing.

Each step edits the workspace the way a user would, then plans twice from the
memo and once without it; the plans (or the errors) must be identical. Files
are aged past the memo's racy window first, as they are in any real checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ftctl.errors import FtctlError
from tests.cachefiles import read_body, write_body
from tests.conftest import PLAN_RECIPE as RECIPE
from tests.conftest import ScenarioWorkspace as Workspace
from tests.conftest import git, write


def age(root: Path) -> None:
    """Move every mtime an hour back, outside the memo's racy window."""
    then = time.time_ns() - 3600 * 10**9
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in (*filenames, *dirnames):
            os.utime(os.path.join(directory, name), ns=(then, then), follow_symlinks=False)


def planned(root: Path, memo: bool) -> Any:
    """The plan as JSON, or the error's one line."""
    from ftctl.plan.inputs import gather
    from ftctl.plan.planner import make_plan
    from ftctl.render.plan import to_json
    from ftctl.workspace import discover

    try:
        inputs = gather(discover(root), memo=memo)
    except FtctlError as exc:
        return [p.render() for p in exc.problems]
    plan = make_plan(
        inputs.desired, inputs.recorded, details=inputs.details, in_registry=inputs.in_registry
    )
    inputs.save_memo()
    return to_json(plan)


@pytest.fixture
def locks_computed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The recipes whose locks plan recomputed."""
    import ftctl.lock.resolve

    seen: list[str] = []
    real = ftctl.lock.resolve.compute_locks

    def counting(workspace: Any, recipes: Any, names: Any = (), **kwargs: Any) -> Any:
        seen.extend(sorted(recipes))
        return real(workspace, recipes, names, **kwargs)

    monkeypatch.setattr(ftctl.lock.resolve, "compute_locks", counting)
    yield seen


def same(ws: Workspace, seen: list[str], recomputed: set[str] | None = None) -> Any:
    """Plan from the memo (twice) and without it: identical; the second memo plan recomputes nothing."""
    age(ws.root)
    os.chdir(ws.root)
    fresh = planned(ws.root, memo=False)
    seen.clear()
    first = planned(ws.root, memo=True)
    if recomputed is not None:
        assert set(seen) == recomputed
    seen.clear()
    second = planned(ws.root, memo=True)
    assert first == fresh and second == fresh
    if isinstance(fresh, dict):
        assert seen == [], "an unchanged workspace recomputed locks"
    return fresh


def dvc(root: Path, *args: str) -> None:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, check=True, capture_output=True, env=env
    )


def test_memo_agrees_with_recomputing(ws: Workspace, locks_computed: list[str]) -> None:
    dvc(ws.root, "init", "-q")  # the dataset now resolves through DVC's records (none yet: local)
    write(ws.root / "recipes" / "beta.yaml", RECIPE.replace("./models/tiny", "recipe:alpha"))
    ws.lock()
    ws.record("alpha")
    ws.record("beta")
    plan = same(ws, locks_computed)
    assert {c["action"] for c in plan["changes"]} == {"no-op"}

    # Only the edited recipe is recomputed (with what it builds on).
    write(
        ws.root / "recipes" / "beta.yaml",
        RECIPE.replace("./models/tiny", "recipe:alpha").replace("lora_r: 8", "lora_r: 4"),
    )
    ws.lock()
    plan = same(ws, locks_computed, recomputed={"alpha", "beta"})
    assert [(c["recipe"], c["action"]) for c in plan["changes"]] == [
        ("alpha", "no-op"),
        ("beta", "retrain"),
    ]

    # A dataset edited without re-locking: both say the locks are stale.
    write(ws.root / "data" / "train.jsonl", '{"instruction": "new", "output": "b"}\n')
    assert same(ws, locks_computed) == [
        "locks are not up to date: lockfiles/alpha.lock (stale), lockfiles/beta.lock (stale); "
        "run `ftctl lock` and commit the locks"
    ]
    ws.lock()
    same(ws, locks_computed)

    # The path becomes DVC-tracked: a new data/train.jsonl.dvc changes how it resolves.
    git(ws.root, "rm", "-q", "--cached", "data/train.jsonl")
    dvc(ws.root, "add", "-q", "data/train.jsonl")
    assert "lockfiles/alpha.lock (stale)" in same(ws, locks_computed)[0]
    ws.lock()
    same(ws, locks_computed)

    # The base model directory changes inside.
    write(ws.root / "models" / "tiny" / "extra" / "note.txt", "x")
    assert "lockfiles/alpha.lock (stale)" in same(ws, locks_computed)[0]
    ws.lock()
    same(ws, locks_computed)

    # A lock deleted, then restored.
    lock = ws.root / "lockfiles" / "beta.lock"
    text = lock.read_text()
    lock.unlink()
    assert same(ws, locks_computed)[0].startswith(
        "locks are not up to date: lockfiles/beta.lock (missing)"
    )
    lock.write_text(text)
    same(ws, locks_computed)


def test_memo_never_vouches_for_a_tampered_manifest_or_an_untrusted_key(
    ws: Workspace, locks_computed: list[str]
) -> None:
    manifest = ws.record("alpha")
    assert same(ws, locks_computed)["changes"][0]["action"] == "no-op"
    original = manifest.read_bytes()
    manifest.write_bytes(original.replace(b'"sig":"', b'"sig":"AAAA', 1))
    plan = same(ws, locks_computed)
    assert (
        plan["changes"][0]["action"] == "create"
        and "no signature by a trusted key" in plan["warnings"][0]
    )
    manifest.write_bytes(original)
    assert same(ws, locks_computed)["changes"][0]["action"] == "no-op"
    # Trust another key instead: the memo of verified manifests no longer applies.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ftctl.provenance.keys import public_pem

    for key in (ws.root / "keys").glob("*.pub"):
        key.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    plan = same(ws, locks_computed)
    assert plan["changes"][0]["action"] == "create" and plan["warnings"]


def test_recent_changes_are_not_memoised(ws: Workspace, locks_computed: list[str]) -> None:
    os.chdir(ws.root)
    assert isinstance(planned(ws.root, memo=True), dict)
    locks_computed.clear()
    planned(
        ws.root, memo=True
    )  # files written a moment ago: their mtime may not show the next change
    assert locks_computed == ["alpha"]


def test_a_corrupt_memo_is_ignored(ws: Workspace, locks_computed: list[str]) -> None:
    ws.record("alpha")
    expected = same(ws, locks_computed)
    memo = ws.root / ".ftctl" / "plan-memo.json"
    body = read_body(memo)
    body["recipes"]["alpha"]["fingerprint"] = 7  # wrong type, right place
    for garbage in (
        json.dumps(body),
        "{",
        "[]",
        json.dumps({"version": 2, "recipes": {"alpha": "x"}}),
    ):
        write_body(memo, garbage)
        assert planned(ws.root, memo=True) == expected
    memo.write_text(json.dumps(read_body(memo)))  # no MAC: never read
    assert planned(ws.root, memo=True) == expected
