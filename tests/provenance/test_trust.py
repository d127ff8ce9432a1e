"""Trust pinned outside the change under review: what a pull request can and cannot make ftctl believe."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ScenarioWorkspace as Workspace
from tests.conftest import git


def branch(root: Path) -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=root, capture_output=True, text=True
    )
    return out.stdout.strip()


@pytest.fixture
def pull_request(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Workspace, str]:
    """main has alpha recorded; the branch retrains nothing, it edits the recipe and brings its own key
    and a manifest signed by it that claims the new fingerprint."""
    ws.record("alpha")
    base = branch(ws.root)
    git(ws.root, "checkout", "-q", "-b", "pr")
    recipe = ws.root / "recipes" / "alpha.yaml"
    recipe.write_text(recipe.read_text().replace("lora_r: 8", "lora_r: 16"))
    ws.lock()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "evil-home"))
    assert ws.ftctl("keygen", "evil").code == 0
    monkeypatch.setenv(
        "FTCTL_SIGNING_KEY", str(tmp_path / "evil-home" / "ftctl" / "keys" / "evil.key")
    )
    ws.record("alpha")  # a forged record: no training happened
    return ws, base


def test_without_a_pinned_trust_the_forgery_hides_the_retrain(
    pull_request: tuple[Workspace, str],
) -> None:
    ws, _ = pull_request
    plan = ws.plan()
    assert [c["action"] for c in plan["changes"]] == ["no-op"]  # what the trust ref is for


def test_the_trust_ref_plans_the_retrain_and_lists_the_key(
    pull_request: tuple[Workspace, str],
) -> None:
    ws, base = pull_request
    plan = ws.plan("--trust-ref", base)
    assert [c["action"] for c in plan["changes"]] == ["retrain"]
    assert plan["changes"][0]["reasons"][0]["path"] == "lora_r"
    assert [(t["change"], t["file"]) for t in plan["trust_changes"]] == [("added", "keys/evil.pub")]
    assert plan["trust"].startswith(f"{base} (")
    assert any("no signature by a trusted key" in w for w in plan["warnings"])
    terminal = ws.ftctl("plan", "--trust-ref", base)
    assert (
        "trust changes against" in terminal.out and "added    keys/evil.pub (keyid " in terminal.out
    )
    markdown = ws.ftctl("plan", "--trust-ref", base, "--markdown").out
    assert "**Trust changes**" in markdown and "| added | `keys/evil.pub` |" in markdown


def test_the_environment_pins_trust_for_every_command(
    pull_request: tuple[Workspace, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, base = pull_request
    monkeypatch.setenv("FTCTL_TRUST_REF", base)
    assert [c["action"] for c in ws.plan()["changes"]] == ["retrain"]
    audit = ws.ftctl("audit", "--json")
    rows = json.loads(audit.out)
    assert audit.code == 1 and sum(not r["ok"] for r in rows) == 1
    assert "REJECTED" in ws.ftctl("log", "alpha").out
    forged = sorted((ws.root / "manifests" / "alpha").iterdir())[-1]
    assert ws.ftctl("verify", str(forged)).code == 1


def test_trusted_keys_from_the_environment_override_both(
    pull_request: tuple[Workspace, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, _ = pull_request
    pem = (ws.root / "keys" / "ci.pub").read_text()
    monkeypatch.setenv("FTCTL_TRUST_REF", "does-not-matter")
    monkeypatch.setenv("FTCTL_TRUSTED_KEYS", pem)
    plan = ws.plan()
    assert [c["action"] for c in plan["changes"]] == ["retrain"]
    assert plan["trust"] == "FTCTL_TRUSTED_KEYS"
    monkeypatch.setenv("FTCTL_TRUSTED_KEYS", str(ws.root / "keys" / "ci.pub"))
    assert [c["action"] for c in ws.plan()["changes"]] == ["retrain"]


def test_an_unknown_trust_ref_is_one_line(ws: Workspace) -> None:
    result = ws.ftctl("plan", "--trust-ref", "no-such-branch")
    assert result.code == 1
    assert result.err.splitlines() == [
        "ftctl: error: trust ref 'no-such-branch' is not a commit of this repository; fetch it first "
        "(e.g. git fetch origin main) or name a branch, tag or commit"
    ]
    assert ws.ftctl("plan", "--trust-ref", "--output").code == 1


def test_the_same_trust_lists_no_changes(ws: Workspace) -> None:
    ws.record("alpha")
    plan = ws.plan("--trust-ref", "HEAD")
    assert plan["trust_changes"] == [] and [c["action"] for c in plan["changes"]] == ["no-op"]


def test_a_key_file_symlinked_out_of_the_workspace_is_refused_by_plan(
    ws: Workspace, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.pub"
    outside.write_bytes((ws.root / "keys" / "ci.pub").read_bytes())
    (ws.root / "keys" / "other.pub").symlink_to(outside)
    result = ws.ftctl("plan")
    assert result.code == 1
    assert result.err == (
        "ftctl: error: keys/other.pub: the key file leads outside the workspace; "
        "commit the public key itself, not a link to it\n"
    )
