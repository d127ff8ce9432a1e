"""Manifests: signed run records in ``manifests/<name>/<UTC>-<fp12>.intoto.json``.

Reading a manifest verifies it: the DSSE signature by a trusted key, then the
statement's shape (parsed from the exact signed bytes). Verifying artifacts
checks every subject file's digest, that none is missing and nothing else is
there, and that no symlink leaves the directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from ftctl.canonical import JSONError, canonical_json, strict_loads
from ftctl.errors import FtctlError
from ftctl.files import write_atomic
from ftctl.provenance import dsse
from ftctl.provenance.rundir import PROVENANCE_DIR, artifact_digests
from ftctl.provenance.statement import Statement

SUFFIX = ".intoto.json"


class ManifestError(FtctlError):
    """A manifest (or run directory) that must not be trusted: ``path`` and ``reason``.

    The message is ``f"{path}: {reason}"``; callers that show the path their own
    way use ``reason``.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


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


def sign_statement(statement: Statement, key: Ed25519PrivateKey) -> bytes:
    return dsse.sign(canonical_json(statement.to_json()), key)


def verify_bytes(
    data: bytes, trusted: dict[str, Ed25519PublicKey], path: Path, threshold: int = 1
) -> VerifiedManifest:
    """Signature, trust and statement shape; raises ManifestError with the reason."""
    try:
        verified = dsse.verify(data, trusted, threshold=threshold)
    except dsse.EnvelopeError as exc:
        raise ManifestError(path, exc.reason) from None
    try:
        body = strict_loads(verified.payload)
    except JSONError as exc:
        reason = f"the signed statement is not valid JSON ({exc.reason})"
        raise ManifestError(path, reason) from None
    try:
        statement = Statement.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ManifestError(path, f"not an ftctl statement: {where}: {first['msg']}") from None
    return VerifiedManifest(path, statement, verified.keyids, verified.payload)


def verify_file(
    path: Path, trusted: dict[str, Ed25519PublicKey], threshold: int = 1
) -> VerifiedManifest:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(path, f"cannot be read ({exc.strerror})") from None
    return verify_bytes(data, trusted, path, threshold)


def verify_artifacts(manifest: VerifiedManifest, directory: Path) -> None:
    """Every subject present with its digest, nothing else, no symlink out; else ManifestError."""
    if not directory.is_dir():
        raise ManifestError(directory, "no such directory")
    try:
        actual = artifact_digests(directory)
    except FtctlError as exc:
        raise ManifestError(directory, exc.problem.render()) from None
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
        problem = _embedded_copy_problem(copy, manifest.payload)
        if problem is not None:
            problems.append(f"{PROVENANCE_DIR}/provenance.intoto.json {problem}")
    if problems:
        raise ManifestError(directory, "; ".join(problems))


def _embedded_copy_problem(copy: Path, payload: bytes) -> str | None:
    """Why the run directory's own copy of its manifest is not this manifest, or None."""
    try:
        embedded = dsse.parse(copy.read_bytes())
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    except dsse.EnvelopeError as exc:
        return f"is not a manifest: {exc.reason}"
    return None if embedded.payload == payload else "records another run"
