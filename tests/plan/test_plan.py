"""Plan scenarios in temporary workspaces: every action and reason, the DAG, saved plans, output formats."""

from __future__ import annotations

import base64
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ftctl.canonical import canonical_json
from ftctl.provenance import dsse
from tests.conftest import PLAN_RECIPE as RECIPE
from tests.conftest import REPO, RunCLI, json_object, write
from tests.conftest import ScenarioWorkspace as Workspace

GOLDEN = REPO / "tests" / "golden"


def actions(plan: dict[str, Any]) -> dict[str, str]:
    return {c["recipe"]: c["action"] for c in plan["changes"]}


def reasons(plan: dict[str, Any], recipe: str) -> list[tuple[str, object, object, object]]:
    change = next(c for c in plan["changes"] if c["recipe"] == recipe)
    return [(r["kind"], r["path"], r["old"], r["new"]) for r in change["reasons"]]


def test_create_then_no_op(ws: Workspace) -> None:
    plan = ws.plan()
    assert actions(plan) == {"alpha": "create"}
    assert plan["summary"] == {
        "train": 1,
        "restore": 0,
        "republish": 0,
        "retire": 0,
        "unchanged": 0,
    }
    ws.record("alpha")
    assert actions(ws.plan()) == {"alpha": "no-op"}


def test_detailed_exitcode(ws: Workspace) -> None:
    assert ws.ftctl("plan", "--detailed-exitcode").code == 2
    ws.record("alpha")
    assert ws.ftctl("plan", "--detailed-exitcode").code == 0


def test_recipe_change_is_explained_by_field(ws: Workspace) -> None:
    ws.record("alpha")
    write(
        ws.root / "recipes" / "alpha.yaml",
        RECIPE.replace("lora_r: 8", "lora_r: 16").replace("type: alpaca", "type: completion"),
    )
    ws.lock()
    plan = ws.plan()
    assert actions(plan) == {"alpha": "retrain"}
    assert ("recipe_changed", "lora_r", 8, 16) in reasons(plan, "alpha")
    assert ("recipe_changed", "datasets[0].type", "alpaca", "completion") in reasons(plan, "alpha")
    text = ws.ftctl("plan").out
    assert "-/+ alpha  retrain" in text and "recipe_changed      lora_r: 8 -> 16" in text
    assert text.rstrip().endswith("Plan: 1 to train, 0 to restore, 0 to republish, 0 to retire.")


def test_dataset_change(ws: Workspace) -> None:
    ws.record("alpha")
    write(ws.root / "data" / "train.jsonl", '{"instruction": "new", "output": "b"}\n')
    ws.lock()
    [(kind, path, old, new)] = reasons(ws.plan(), "alpha")
    assert (kind, path) == ("dataset_changed", "datasets[0]")
    assert str(old).startswith("file:data/train.jsonl (") and old != new


def test_base_model_change(ws: Workspace) -> None:
    ws.record("alpha")
    write(ws.root / "models" / "tiny" / "config.json", '{"hidden_size": 64}\n')
    ws.lock()
    assert [r[:2] for r in reasons(ws.plan(), "alpha")] == [("base_model_changed", "base_model")]


def test_pins_change_per_package(ws: Workspace) -> None:
    write(ws.root / "lockfiles" / "requirements.txt", "torch==2.13.0\ntrl==1.16.0\n")
    ws.lock()
    ws.record("alpha")
    write(ws.root / "lockfiles" / "requirements.txt", "torch==2.14.1\npeft==0.21.2\n")
    ws.lock()
    assert reasons(ws.plan(), "alpha") == [
        ("pins_changed", "peft", None, "==0.21.2"),
        ("pins_changed", "torch", "==2.13.0", "==2.14.1"),
        ("pins_changed", "trl", "==1.16.0", None),
    ]


def test_trainer_change(ws: Workspace) -> None:
    manifest = ws.record("alpha")
    envelope = json_object(manifest.read_text())
    statement = json_object(base64.b64decode(envelope["payload"]))
    statement["predicate"]["runDetails"]["builder"]["version"]["ftctl"] = "0.0.9"
    statement["predicate"]["buildDefinition"]["internalParameters"]["fingerprint"] = (
        "sha256:" + "9" * 64
    )
    key = serialization.load_pem_private_key(
        Path(os.environ["FTCTL_SIGNING_KEY"]).read_bytes(), None
    )
    assert isinstance(key, Ed25519PrivateKey)
    manifest.write_bytes(dsse.sign(canonical_json(statement), key))
    assert ("trainer_changed", "ftctl", "0.0.9", "0.1.0") in reasons(ws.plan(), "alpha")


def test_dag_upstream_changed(ws: Workspace) -> None:
    write(ws.root / "recipes" / "beta.yaml", RECIPE.replace("./models/tiny", "recipe:alpha"))
    ws.lock()
    ws.record("alpha")
    ws.record("beta")
    assert actions(ws.plan()) == {"alpha": "no-op", "beta": "no-op"}
    write(ws.root / "recipes" / "alpha.yaml", RECIPE.replace("lora_r: 8", "lora_r: 4"))
    ws.lock()
    plan = ws.plan()
    assert list(actions(plan).items()) == [
        ("alpha", "retrain"),
        ("beta", "retrain"),
    ]  # upstream first
    [(kind, path, old, new)] = reasons(plan, "beta")
    assert (kind, path) == ("upstream_changed", "alpha") and old != new
    assert actions(ws.plan("--target", "alpha")) == {
        "alpha": "retrain",
        "beta": "retrain",
    }  # with dependants
    assert actions(ws.plan("--target", "beta")) == {"beta": "retrain"}


def test_restore_from_an_older_manifest(ws: Workspace) -> None:
    ws.record("alpha")
    write(ws.root / "recipes" / "alpha.yaml", RECIPE.replace("lora_r: 8", "lora_r: 16"))
    ws.lock()
    ws.record("alpha")
    write(ws.root / "recipes" / "alpha.yaml", RECIPE)  # back to what the first run trained
    ws.lock()
    plan = ws.plan()
    assert actions(plan) == {"alpha": "restore"}
    assert ("recipe_changed", "lora_r", 16, 8) in reasons(plan, "alpha")
    assert plan["changes"][0]["estimate"] is None  # restoring trains nothing


def test_restore_from_the_registry(ws: Workspace) -> None:
    fingerprint = ws.plan()["changes"][0]["fingerprint"]
    (ws.root / "registry" / "alpha" / str(fingerprint).removeprefix("sha256:")).mkdir(parents=True)
    assert actions(ws.plan()) == {"alpha": "restore"}


def test_republish(ws: Workspace) -> None:
    ws.record("alpha")
    write(ws.root / "recipes" / "alpha.yaml", RECIPE + "ftctl: {publish: 'hf://acme/alpha'}\n")
    ws.lock()
    plan = ws.plan()
    assert actions(plan) == {"alpha": "republish"}
    assert reasons(plan, "alpha") == [
        ("publish_changed", "ftctl.publish", "file://registry/alpha", "hf://acme/alpha")
    ]


def test_retire(ws: Workspace) -> None:
    ws.record("alpha")
    write(ws.root / "recipes" / "gamma.yaml", RECIPE)
    (ws.root / "recipes" / "alpha.yaml").unlink()
    ws.lock()
    plan = ws.plan()
    # A rename: the fingerprint does not depend on the name, so gamma restores alpha's artifact.
    assert actions(plan) == {"gamma": "restore", "alpha": "retire"}
    assert plan["summary"]["retire"] == 1


def test_a_new_recipe_identical_to_another_restores(ws: Workspace) -> None:
    ws.record("alpha")
    write(ws.root / "recipes" / "gamma.yaml", RECIPE)
    write(ws.root / "recipes" / "delta.yaml", RECIPE.replace("lora_r: 8", "lora_r: 4"))
    ws.lock()
    assert actions(ws.plan()) == {"alpha": "no-op", "gamma": "restore", "delta": "create"}


def test_replace_forces_a_retrain(ws: Workspace) -> None:
    ws.record("alpha")
    plan = ws.plan("--replace", "alpha")
    assert actions(plan) == {"alpha": "retrain"}
    assert reasons(plan, "alpha") == [("forced", None, None, None)]


def test_unknown_target(ws: Workspace) -> None:
    result = ws.ftctl("plan", "--target", "alpah")
    assert result.code == 1 and "no recipe named 'alpah'; did you mean 'alpha'?" in result.err


def test_stale_lock_is_an_error(ws: Workspace) -> None:
    write(ws.root / "recipes" / "alpha.yaml", RECIPE.replace("lora_r: 8", "lora_r: 32"))
    result = ws.ftctl("plan")
    assert result.code == 1
    assert result.err.strip() == (
        "ftctl: error: locks are not up to date: lockfiles/alpha.lock (stale); run `ftctl lock` and commit the locks"
    )


def test_tampered_manifest_ignored_with_a_warning(ws: Workspace) -> None:
    manifest = ws.record("alpha")
    manifest.write_bytes(manifest.read_bytes().replace(b'"sig":"', b'"sig":"AAAA', 1))
    plan = ws.plan()
    assert actions(plan) == {"alpha": "create"}
    assert plan["warnings"][0].startswith("manifests/alpha/")
    assert "no signature by a trusted key; ignored (treated as absent)" in plan["warnings"][0]
    shown = ws.ftctl("plan")
    assert "ftctl: warning: manifests/alpha/" in shown.err and "warning" not in shown.out


def test_plan_is_offline(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("plan used the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    ws.record("alpha")
    assert actions(ws.plan()) == {"alpha": "no-op"}


def test_saved_plan_staleness(ws: Workspace) -> None:
    from ftctl.plan.saved import load_saved, staleness
    from ftctl.workspace import discover

    out = ws.root / ".ftctl" / "plan.json"
    assert ws.ftctl("plan", "--out", str(out)).code == 0
    workspace = discover(ws.root)
    saved = load_saved(out)
    assert saved["plan"]["changes"][0]["action"] == "create"
    assert staleness(saved, workspace) == []
    ws.record("alpha")  # state appears: a plan made from empty state is stale now
    reasons_now = staleness(saved, workspace)
    assert any(r.startswith("manifests/alpha/") and r.endswith("was added") for r in reasons_now)
    assert any(r.startswith("git HEAD moved") for r in reasons_now)


def test_markdown_truncated_under_the_comment_limit() -> None:
    from ftctl.plan.planner import Change, Plan, Reason
    from ftctl.render.plan import markdown

    reasons_ = tuple(Reason("recipe_changed", f"field_{i}", i, i + 1) for i in range(30))
    plan = Plan(
        tuple(
            Change(f"recipe-{n:04d}", "retrain", reasons_, "sha256:" + "0" * 64, None, None)
            for n in range(400)
        )
    )
    text = markdown(plan)
    assert len(text) < 60_000
    assert "more change(s) not shown: the comment would exceed 60,000 characters" in text
    assert text.startswith(
        "### ftctl plan\n\n**Plan: 400 to train, 0 to restore, 0 to republish, 0 to retire.**"
    )
    assert text.count("<details>") == text.count("</details>") > 10


def test_markdown_sections(ws: Workspace) -> None:
    ws.record("alpha")
    write(ws.root / "recipes" / "alpha.yaml", RECIPE.replace("lora_r: 8", "lora_r: 16"))
    ws.lock()
    text = ws.ftctl("plan", "--markdown").out
    assert "<details><summary><code>-/+ alpha</code> retrain: lora_r: 8 -> 16</summary>" in text
    assert "| recipe_changed | `lora_r: 8 -> 16` |" in text


def test_json_golden(ws: Workspace) -> None:
    """The JSON format is a contract (docs/plan-json.md): a fixed scenario renders exactly as recorded."""
    write(ws.root / "recipes" / "beta.yaml", RECIPE.replace("./models/tiny", "recipe:alpha"))
    write(ws.root / "recipes" / "gamma.yaml", RECIPE.replace("lora_r: 8", "lora_r: 2"))
    ws.lock()
    ws.record("alpha", minute=1)
    ws.record("beta", minute=2)
    write(ws.root / "recipes" / "alpha.yaml", RECIPE.replace("lora_r: 8", "lora_r: 16"))
    ws.lock()
    plan = ws.plan()
    golden = GOLDEN / "plan-scenario.json"
    rendered = json.dumps(plan, indent=2, sort_keys=True) + "\n"
    if os.environ.get("FTCTL_UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text(), (
        "run with FTCTL_UPDATE_GOLDEN=1 after an intended format change"
    )


def test_estimate_from_safetensors_headers_and_accelerator() -> None:
    from ftctl.lock.lockfile import load_lock
    from ftctl.plan.estimate import PEAK_TFLOPS, UTILISATION, estimate, safetensors_params

    params = safetensors_params(REPO / "models" / "tiny-llama")
    assert params == 139_584  # every tensor of the tiny Llama, read from the header alone
    lock = load_lock(REPO / "lockfiles" / "tiny-alpaca.lock", "tiny-alpaca.lock")
    result = estimate(lock, {"num_epochs": 2.0}, "H100:8", params)
    tokens = 7525 // 4 * 2
    assert result.tokens == tokens
    assert result.gpu_hours == pytest.approx(
        6 * params * tokens / (PEAK_TFLOPS["H100"] * 1e12 * UTILISATION) / 3600
    )
    assert "6*N*T at 40% of H100 peak" in result.basis
    unknown = estimate(lock, {"num_epochs": 1.0}, None, None)
    assert unknown.gpu_hours is None and "parameters unknown" in unknown.basis


def test_this_repository_plans_offline(run_cli: RunCLI) -> None:
    result = run_cli("plan", "--json", cwd=REPO)
    assert result.code == 0, result.err
    plan = json_object(result.out)
    assert plan["format_version"] == 1
    assert {c["recipe"] for c in plan["changes"]} == {"tiny-alpaca", "tiny-chat"}
