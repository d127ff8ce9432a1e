"""`ftctl audit`: check every manifest of the workspace, not just that it is signed.

For each manifest: signature and trust, the statement's shape, that the recipe
bytes at the recorded git commit have the recorded digest, and that the lock
at that commit is the recorded one. A manifest attested from uncommitted
files cannot be audited and fails.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ftctl._git import file_at
from ftctl.provenance.manifest import VerifiedManifest
from ftctl.provenance.records import read_records


@dataclass(frozen=True)
class AuditRow:
    path: Path
    recipe: str
    fingerprint: str | None
    finished_on: str | None
    ok: bool
    reason: str
    external: bool = False  # attested with --external: its inputs were not verified by ftctl


def audit(root: Path, trusted: dict[str, Ed25519PublicKey]) -> list[AuditRow]:
    """One row per manifest, in path order: rejected ones with the reason records gives."""
    rows: list[AuditRow] = []
    for name, state in read_records(root, lambda: trusted).items():
        rows.extend(AuditRow(r.path, name, None, None, False, r.reason) for r in state.rejected)
        for record in state.records:
            reason = (
                _check_sources(root, record.manifest)
                if record.manifest is not None
                else "not verified"
            )
            rows.append(
                AuditRow(
                    record.path,
                    name,
                    record.fingerprint,
                    record.finished_on,
                    reason is None,
                    reason or "ok",
                    record.summary.external,
                )
            )
    return sorted(rows, key=lambda row: row.path)


def _check_sources(root: Path, manifest: VerifiedManifest) -> str | None:
    definition = manifest.statement.predicate.buildDefinition
    commits = [
        d.digest["gitCommit"]
        for d in definition.resolvedDependencies
        if d.name == "recipe_repository" and d.digest and "gitCommit" in d.digest
    ]
    if not commits:
        return "no git commit recorded: the recipe cannot be checked"
    if not definition.internalParameters.committed:
        return "attested from uncommitted recipe or lock files"
    commit = commits[0]
    for label, ref in (
        ("recipe", definition.externalParameters.recipe),
        ("lock", definition.internalParameters.lock),
    ):
        data = file_at(root, commit, ref.path)
        if data is None:
            return f"{ref.path} is not in git at {commit[:12]}"
        if hashlib.sha256(data).hexdigest() != ref.digest.get("sha256"):
            return f"the {label} bytes at {commit[:12]} differ from the recorded digest"
    return None
