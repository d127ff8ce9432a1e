"""Manifests: signed run records in ``manifests/<name>/<UTC>-<fp12>.intoto.json``.

Reading a manifest verifies it: the DSSE signature by a trusted key, then the
statement's shape (parsed from the exact signed bytes). Verifying artifacts
checks every subject file's digest, that none is missing and nothing else is
there, and that no symlink leaves the directory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from ftctl.canonical import JSONError, canonical_json, strict_loads
from ftctl.errors import FtctlError
from ftctl.files import UnreadableInput, read_regular, read_small, write_atomic
from ftctl.provenance import dsse
from ftctl.provenance.rundir import PROVENANCE_DIR, artifact_digests
from ftctl.provenance.statement import Statement
from ftctl.yamlio import display_path

SUFFIX = ".intoto.json"
# A registry's model card: written by the registry (it names the manifest, so it cannot be a
# subject); an artifact may hold it beside its subjects.
MODEL_CARD = "README.md"


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
    """``<UTC finish>-<fingerprint 12>-<run id 12>.intoto.json``: one name per run."""
    stamp = statement.finished_on.replace("-", "").replace(":", "").split(".")[0].rstrip("Z") + "Z"
    run = _run_tag(statement)
    return f"{stamp}-{statement.fingerprint.removeprefix('sha256:')[:12]}-{run}{SUFFIX}"


def _run_tag(statement: Statement) -> str:
    return run_tag(statement.predicate.runDetails.metadata.invocationId)


def run_tag(invocation: str) -> str:
    """The part of a manifest's file name that names its run."""
    return hashlib.sha256(invocation.encode("utf-8")).hexdigest()[:12]


class AlreadyRecorded(FtctlError):
    """The run has a manifest already: records are append-only."""


def write_manifest(root: Path, statement: Statement, envelope: bytes) -> tuple[Path, bool]:
    """Write the run's manifest once; (path, written). Records are append-only.

    Attesting the same run again is a no-op when the bytes are identical, refused otherwise:
    a manifest is never replaced.
    """
    folder = root / "manifests" / statement.name
    path = folder / manifest_name(statement)
    data = envelope + b"\n"
    earlier = sorted(folder.glob(f"*-{_run_tag(statement)}{SUFFIX}")) if folder.is_dir() else []
    for existing in earlier:
        if existing == path and read_small(existing) == data:
            return path, False
        raise AlreadyRecorded(
            f"this run is already recorded in {display_path(existing, root)}",
            hint="a manifest is never replaced; train again for a new record",
        )
    write_atomic(path, data)
    return path, True


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
    return verify_bytes(read_manifest_bytes(path), trusted, path, threshold)


MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # a manifest is a few KiB; subjects are names, not files


def read_manifest_bytes(path: Path) -> bytes:
    """A manifest file's bytes: a regular file, bounded, never blocking; else ManifestError."""
    try:
        return read_regular(path, MAX_MANIFEST_BYTES, str(path), what="manifest")
    except UnreadableInput as exc:
        raise ManifestError(path, exc.problem.message) from None


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
        f"{name} is not in the manifest"
        for name in sorted(set(actual) - set(expected) - {MODEL_CARD})
    )
    copy = directory / PROVENANCE_DIR / "provenance.intoto.json"
    if copy.is_file():
        problem = _embedded_copy_problem(copy, manifest.payload)
        if problem is not None:
            problems.append(f"{PROVENANCE_DIR}/provenance.intoto.json {problem}")
    if problems:
        raise ManifestError(directory, "; ".join(problems))


def _embedded_copy_problem(copy: Path, payload: bytes) -> str | None:
    """Why an artifact's own provenance copy does not record these files, or None.

    The copy a registry holds is signed before the publication is recorded (the Hub commit
    it lands in cannot be inside it), and a restored artifact keeps the copy of the run
    that trained it: so it must record the same fingerprint and subjects, not the same bytes.
    """
    try:
        embedded = dsse.parse(read_regular(copy, MAX_MANIFEST_BYTES, str(copy), what="manifest"))
    except UnreadableInput as exc:
        return exc.problem.message
    except dsse.EnvelopeError as exc:
        return f"is not a manifest: {exc.reason}"
    if embedded.payload == payload:
        return None
    try:
        theirs, ours = strict_loads(embedded.payload), strict_loads(payload)
    except JSONError:
        return "is not a manifest: its statement is not valid JSON"
    if not isinstance(theirs, dict) or _artifact_identity(theirs) != _artifact_identity(ours):
        return "records another artifact"
    return None


def _artifact_identity(body: dict[str, Any]) -> tuple[object, object]:
    """(fingerprint, subjects) of a statement's JSON: what makes two records of one artifact."""
    predicate = body.get("predicate")
    definition = predicate.get("buildDefinition") if isinstance(predicate, dict) else None
    internal = definition.get("internalParameters") if isinstance(definition, dict) else None
    fingerprint = internal.get("fingerprint") if isinstance(internal, dict) else None
    subjects = body.get("subject")
    key = (
        sorted(json.dumps(s, sort_keys=True) for s in subjects)
        if isinstance(subjects, list)
        else None
    )
    return fingerprint, key
