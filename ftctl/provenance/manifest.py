"""Manifests: signed run records in ``manifests/<name>/<UTC>-<fp12>.intoto.json``.

Reading a manifest verifies it: the DSSE signature by a trusted key, then the
statement's shape (parsed from the exact signed bytes). Verifying artifacts
checks every subject file's digest, that none is missing and nothing else is
there, and that no symlink leaves the directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from ftctl.canonical import JSONError, canonical_json, strict_loads
from ftctl.errors import FtctlError
from ftctl.files import write_atomic
from ftctl.provenance import dsse
from ftctl.provenance.rundir import PROVENANCE_DIR, artifact_digests
from ftctl.provenance.statement import Statement

SUFFIX = ".intoto.json"


class ManifestError(FtctlError):
    """A manifest that must not be trusted, with the reason."""


@dataclass(frozen=True)
class VerifiedManifest:
    path: Path
    statement: Statement
    keyids: tuple[str, ...]
    payload: bytes


def manifest_name(statement: Statement) -> str:
    stamp = statement.finished_on.replace("-", "").replace(":", "").split(".")[0].rstrip("Z") + "Z"
    return f"{stamp}-{statement.fingerprint.removeprefix('sha256:')[:12]}{SUFFIX}"


def write_manifest(root: Path, statement: Statement, envelope: bytes) -> Path:
    path = root / "manifests" / statement.name / manifest_name(statement)
    write_atomic(path, envelope + b"\n")
    return path


def sign_statement(statement: Statement, key: object) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    assert isinstance(key, Ed25519PrivateKey)
    return dsse.sign(canonical_json(statement.to_json()), key)


def verify_bytes(
    data: bytes, trusted: dict[str, Ed25519PublicKey], path: Path, threshold: int = 1
) -> VerifiedManifest:
    """Signature, trust and statement shape; raises ManifestError with the reason."""
    try:
        verified = dsse.verify(data, trusted, threshold=threshold)
    except dsse.EnvelopeError as exc:
        raise ManifestError(f"{path}: {exc}") from None
    try:
        body = strict_loads(verified.payload)
    except JSONError as exc:
        raise ManifestError(f"{path}: the signed statement is not valid JSON ({exc})") from None
    try:
        statement = Statement.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ManifestError(f"{path}: not an ftctl statement: {where}: {first['msg']}") from None
    return VerifiedManifest(path, statement, verified.keyids, verified.payload)


def verify_file(
    path: Path, trusted: dict[str, Ed25519PublicKey], threshold: int = 1
) -> VerifiedManifest:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot be read ({exc.strerror})") from None
    return verify_bytes(data, trusted, path, threshold)


def verify_artifacts(manifest: VerifiedManifest, directory: Path) -> None:
    """Every subject present with its digest, nothing else, no symlink out; else ManifestError."""
    if not directory.is_dir():
        raise ManifestError(f"{directory}: no such directory")
    try:
        actual = artifact_digests(directory)
    except FtctlError as exc:
        raise ManifestError(str(exc)) from None
    expected = {s.name: s.digest["sha256"] for s in manifest.statement.subject}
    problems = []
    for name, digest in sorted(expected.items()):
        if name not in actual:
            problems.append(f"{name} is missing")
        elif actual[name] != digest:
            problems.append(f"{name} differs from the recorded digest")
    problems.extend(
        f"{name} is not in the manifest" for name in sorted(set(actual) - set(expected))
    )
    copy = directory / PROVENANCE_DIR / "provenance.intoto.json"
    if copy.is_file():
        try:
            embedded = strict_loads(copy.read_bytes())
            payload = embedded.get("payload") if isinstance(embedded, dict) else None
        except (OSError, JSONError):
            payload = None
        import base64

        if payload is None or base64.b64decode(payload) != manifest.payload:
            problems.append(f"{PROVENANCE_DIR}/provenance.intoto.json records another run")
    if problems:
        raise ManifestError(f"{directory}: " + "; ".join(problems))
