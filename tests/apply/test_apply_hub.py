"""apply publishing to hf://ORG/REPO on the Hub test server (the real huggingface_hub client):
one commit with the adapter, ftctl's card and the provenance, a tag, the commit in the manifest;
a Hub failure keeps the run and the next apply publishes it without training; restore by tag."""

from __future__ import annotations

import json
from pathlib import Path

from tests.apply.test_apply import fingerprint, manifests, trained
from tests.conftest import PLAN_RECIPE, write
from tests.conftest import ScenarioWorkspace as Workspace
from tests.hubserver import HubServer
from tests.registries.conftest import hubenv  # noqa: F401  (the fixture)

HUB_RECIPE = PLAN_RECIPE + "ftctl: {publish: 'hf://acme/alpha'}\n"


def hub_workspace(ws: Workspace) -> None:
    write(ws.root / "recipes" / "alpha.yaml", HUB_RECIPE)
    ws.lock()


def published(manifest: Path) -> dict[str, object]:
    import base64

    statement = json.loads(base64.b64decode(json.loads(manifest.read_text())["payload"]))
    [entry] = [
        b for b in statement["predicate"]["runDetails"]["byproducts"] if b["name"] == "published"
    ]
    return dict(entry)


def test_apply_publishes_one_commit_and_a_tag(ws: Workspace, hubenv: HubServer) -> None:  # noqa: F811
    hub_workspace(ws)
    trained(ws, "alpha")
    result = ws.ftctl("apply", "--auto-approve")
    assert result.code == 0, result.err
    [manifest] = manifests(ws, "alpha")
    entry = published(manifest)
    commit = entry["digest"]["gitCommit"]  # type: ignore[index]
    assert entry["uri"] == f"hf://acme/alpha@{commit}"
    commits = [c for c in hubenv.state.calls if c[0] == "POST" and "/commit/" in c[1]]
    assert len(commits) == 1
    fp12 = fingerprint(ws, "alpha").removeprefix("sha256:")[:12]
    assert any("/tag/" in path for _, path in hubenv.state.calls)
    verified = ws.ftctl("verify", f"hf://acme/alpha@ftctl-{fp12}")
    assert verified.code == 0, verified.out + verified.err
    ws.commit()
    assert [c["action"] for c in ws.plan()["changes"]] == ["no-op"]


def test_a_hub_outage_keeps_the_run_for_the_next_apply(ws: Workspace, hubenv: HubServer) -> None:  # noqa: F811
    hub_workspace(ws)
    run = trained(ws, "alpha")
    hubenv.state.faults["commit"] = [500] * 10
    failed = ws.ftctl("apply", "--auto-approve")
    assert failed.code == 1
    assert "alpha: failed:" in failed.err and "acme/alpha" in failed.err
    assert not (ws.root / "manifests").exists() and (run / "result.json").is_file()
    hubenv.state.faults.clear()
    result = ws.ftctl("apply", "--auto-approve")
    assert result.code == 0, result.err
    assert len(manifests(ws, "alpha")) == 1


def test_a_rename_restores_from_the_hub(ws: Workspace, hubenv: HubServer) -> None:  # noqa: F811
    hub_workspace(ws)
    trained(ws, "alpha")
    assert ws.ftctl("apply", "--auto-approve").code == 0
    ws.commit()
    (ws.root / "recipes" / "alpha.yaml").rename(ws.root / "recipes" / "gamma.yaml")
    write(ws.root / "recipes" / "gamma.yaml", PLAN_RECIPE + "ftctl: {publish: 'hf://acme/gamma'}\n")
    (ws.root / "lockfiles" / "alpha.lock").unlink()
    ws.lock()
    assert {c["recipe"]: c["action"] for c in ws.plan()["changes"]} == {
        "gamma": "restore",
        "alpha": "retire",
    }
    result = ws.ftctl("apply", "--auto-approve")
    assert result.code == 0, result.err
    [manifest] = manifests(ws, "gamma")
    assert str(published(manifest)["uri"]).startswith("hf://acme/gamma@")
    assert ws.ftctl("verify", "hf://acme/gamma").code == 0
