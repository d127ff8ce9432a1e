"""``verify hf://ORG/REPO[@REV]``: the embedded manifest by the trusted keys, then every file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ftctl.provenance.keys import keyid, public_pem
from ftctl.provenance.manifest import ManifestError
from ftctl.registries.hf import tag_of, verify_published
from tests.conftest import RunCLI
from tests.hubserver import HubServer
from tests.registries.artifacts import Adapter
from tests.registries.test_hf import REPO, TARGET, publish


def test_a_publication_verifies(hubenv: HubServer, adapter: Adapter) -> None:
    _, commit = publish(adapter)
    for target in (
        TARGET,
        f"{TARGET}@main",
        f"{TARGET}@{tag_of(adapter.fingerprint)}",
        f"{TARGET}@{commit}",
    ):
        checked = verify_published(target, adapter.trusted)
        assert checked.label == f"{TARGET}@{commit}" and checked.files == 3
        assert checked.manifest.statement == adapter.statement


@pytest.mark.parametrize(
    ("path", "data", "problem"),
    [
        ("adapter_config.json", b"{}\n", "adapter_config.json differs from the recorded digest"),
        ("extra/config.json", b"{}\n", "extra/config.json is not in the manifest"),
    ],
)
def test_a_file_changed_on_the_hub_fails_by_name(
    hubenv: HubServer, adapter: Adapter, path: str, data: bytes, problem: str
) -> None:
    publish(adapter)
    changed = hubenv.state.put_file(REPO, path, data)
    with pytest.raises(ManifestError) as info:
        verify_published(TARGET, adapter.trusted)
    assert str(info.value) == f"{TARGET}@{changed}: {problem}"


def test_an_untrusted_manifest_downloads_nothing_more(hubenv: HubServer, adapter: Adapter) -> None:
    _, commit = publish(adapter)
    other = Ed25519PrivateKey.generate().public_key()
    calls = len(hubenv.state.calls)
    with pytest.raises(ManifestError) as info:
        verify_published(TARGET, {keyid(other): other})
    assert str(info.value) == f"{TARGET}@{commit}: no signature by a trusted key"
    downloads = [p for _, p in hubenv.state.calls[calls:] if "/resolve/" in p]
    assert downloads == [f"/{REPO}/resolve/{commit}/.ftctl/provenance.intoto.json"]


def test_a_commit_without_provenance(hubenv: HubServer, adapter: Adapter) -> None:
    publish(adapter)
    initial = next(iter(hubenv.state.models[REPO].commits))  # create_repo's, .gitattributes only
    with pytest.raises(ManifestError) as info:
        verify_published(f"{TARGET}@{initial}", adapter.trusted)
    assert str(info.value) == (
        f"{TARGET}@{initial}: no .ftctl/provenance.intoto.json at that commit: "
        "not an ftctl publication"
    )


def test_the_cli_verifies_a_publication(
    hubenv: HubServer,
    adapter: Adapter,
    run_cli: RunCLI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, commit = publish(adapter)
    monkeypatch.setenv("FTCTL_TRUSTED_KEYS", public_pem(adapter.key.public_key()).decode())
    (tmp_path / "ws").mkdir()
    kid = next(iter(adapter.trusted))[:12]
    ok = run_cli("verify", TARGET, cwd=tmp_path / "ws")
    assert ok.code == 0, ok.err
    assert ok.out == (
        f"OK {TARGET}@{commit}: recipe support-bot, fingerprint ffffffffffff, signed by {kid}; "
        "3 files at that commit match\n"
    )
    body = json.loads(run_cli("verify", TARGET, "--json", cwd=tmp_path / "ws").out)
    assert body["ok"] is True and body["manifest"] == body["artifacts"] == f"{TARGET}@{commit}"
    assert set(body["subjects"]) == set(adapter.contents())
    changed = hubenv.state.put_file(REPO, "adapter_config.json", b"{}\n")
    failed = run_cli("verify", TARGET, cwd=tmp_path / "ws")
    assert failed.code == 1 and failed.out == ""
    assert failed.err == (
        f"FAILED {TARGET}@{changed}: adapter_config.json differs from the recorded digest\n"
    )
    as_json = json.loads(run_cli("verify", TARGET, "--json", cwd=tmp_path / "ws").out)
    assert as_json == {"ok": False, "manifest": TARGET, "reason": failed.err[7:-1]}
    usage = run_cli("verify", TARGET, "--artifacts", str(tmp_path), cwd=tmp_path / "ws")
    assert usage.code != 0 and "drop --artifacts" in usage.err
