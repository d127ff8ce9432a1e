"""Caches cost time, never truth: a forged, stale or hand-edited ``.ftctl/`` never changes a plan.

The property test applies random edits to recipes, locks, data, manifests and
the memo itself, then plans from the memo and without it: the plans, or the
errors, must be identical.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftctl.cache import base
from tests.cache.test_planmemo import age, planned
from tests.cachefiles import read_body, write_body
from tests.conftest import PLAN_RECIPE, write
from tests.conftest import ScenarioWorkspace as Workspace


@pytest.fixture(autouse=True)
def fresh_key() -> Iterator[None]:
    base.cache_key.cache_clear()
    yield
    base.cache_key.cache_clear()


def memo_file(root: Path) -> Path:
    return root / ".ftctl" / "plan-memo.json"


def test_a_forged_memo_changes_nothing(ws: Workspace) -> None:
    ws.record("alpha")
    age(ws.root)
    os.chdir(ws.root)
    truth = planned(ws.root, memo=False)
    assert planned(ws.root, memo=True) == truth  # writes the memo
    body = read_body(memo_file(ws.root))
    entry = body["recipes"]["alpha"]
    entry["publish"] = "hf://evil/alpha"
    for run in body["manifests"].values():
        run["fingerprint"] = "sha256:" + "0" * 64
    # What a pull request can put there: a committed file, without the key's MAC.
    memo_file(ws.root).write_text(json.dumps(body))
    assert planned(ws.root, memo=True) == truth


def test_caches_made_under_another_key_are_not_read(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FTCTL_CACHE_KEY", "ci-secret-1")
    base.cache_key.cache_clear()
    age(ws.root)
    os.chdir(ws.root)
    planned(ws.root, memo=True)
    written = memo_file(ws.root).read_bytes()
    assert base.load(memo_file(ws.root), 2)
    monkeypatch.setenv("FTCTL_CACHE_KEY", "ci-secret-2")
    base.cache_key.cache_clear()
    assert base.load(memo_file(ws.root), 2) == {}
    planned(ws.root, memo=True)
    assert memo_file(ws.root).read_bytes() != written  # recomputed and rewritten under the new key


def test_without_a_key_caches_are_off(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # the key cannot be made
    monkeypatch.delenv("FTCTL_CACHE_KEY", raising=False)
    base.cache_key.cache_clear()
    age(ws.root)
    os.chdir(ws.root)
    assert base.cache_key() is None
    shutil.rmtree(ws.root / ".ftctl", ignore_errors=True)
    assert isinstance(planned(ws.root, memo=True), dict)
    assert not memo_file(ws.root).exists()


def test_an_in_place_edit_with_restored_mtime_is_noticed(ws: Workspace) -> None:
    ws.record("alpha")
    age(ws.root)
    os.chdir(ws.root)
    planned(ws.root, memo=True)
    recipe = ws.root / "recipes" / "alpha.yaml"
    before = recipe.stat()
    recipe.write_text(recipe.read_text().replace("lora_r: 8", "lora_r: 9"))  # same size
    os.utime(recipe, ns=(before.st_atime_ns, before.st_mtime_ns))
    truth = planned(ws.root, memo=False)
    assert truth == [
        "locks are not up to date: lockfiles/alpha.lock (stale); run `ftctl lock` and commit the locks"
    ]
    assert planned(ws.root, memo=True) == truth


def test_two_files_for_one_name_are_never_planned_from_the_memo(ws: Workspace) -> None:
    age(ws.root)
    os.chdir(ws.root)
    planned(ws.root, memo=True)
    write(ws.root / "recipes" / "alpha.yml", PLAN_RECIPE)
    age(ws.root)
    truth = planned(ws.root, memo=False)
    assert "recipe name 'alpha' is also used by recipes/alpha.yaml" in truth[0]
    assert planned(ws.root, memo=True) == truth


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    if data:
        data[at % len(data)] ^= 0x01
        path.write_bytes(bytes(data))


def _edit(root: Path, kind: str, n: int) -> None:
    """One edit of the kind a user, a merge or a hostile change could make."""
    recipe, lock = root / "recipes" / "alpha.yaml", root / "lockfiles" / "alpha.lock"
    manifests = sorted((root / "manifests").rglob("*.intoto.json"))
    memo = memo_file(root)
    if kind == "recipe" and recipe.exists():
        recipe.write_text(recipe.read_text().replace("lora_r: 8", f"lora_r: {n % 9 + 1}"))
    elif kind == "lock" and lock.exists():
        _flip(lock, n)
    elif kind == "data":
        (root / "data" / "train.jsonl").write_text(f'{{"instruction": "{n}", "output": "b"}}\n')
    elif kind == "manifest" and manifests:
        _flip(manifests[n % len(manifests)], n)
    elif kind == "memo-bytes" and memo.exists():
        _flip(memo, n)
    elif kind == "memo-entry" and memo.exists():
        try:
            body: dict[str, Any] = read_body(memo)
        except (ValueError, IndexError):
            return  # an earlier edit broke it
        for entry in body.get("recipes", {}).values():
            entry["fingerprint"] = "sha256:" + f"{n:064x}"[-64:]
        write_body(memo, json.dumps(body))  # a valid MAC on a wrong entry: still not trusted
    elif kind == "delete-lock" and lock.exists():
        lock.unlink()


EDITS = st.lists(
    st.tuples(
        st.sampled_from(
            ["recipe", "lock", "data", "manifest", "memo-bytes", "memo-entry", "delete-lock"]
        ),
        st.integers(min_value=0, max_value=10_000),
    ),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edits=EDITS)
def test_plan_from_the_memo_equals_plan_without_it(
    ws: Workspace, tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[str, int]]
) -> None:
    if not (ws.root / "manifests").exists():
        ws.record("alpha")
        age(ws.root)
        os.chdir(ws.root)
        planned(ws.root, memo=True)
    root = tmp_path_factory.mktemp("edited") / "ws"
    shutil.copytree(ws.root, root, symlinks=True)
    os.chdir(root)
    age(root)
    planned(root, memo=True)  # a memo of the unedited copy
    for kind, n in edits:
        _edit(root, kind, n)
    age(root)
    from_memo = planned(root, memo=True)
    assert from_memo == planned(root, memo=False)
