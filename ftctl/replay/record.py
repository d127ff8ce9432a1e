"""The signed replay record: an in-toto statement about a manifest, and what its replay showed.

``manifests/<name>/replays/<UTC>-<id12>.replay.json``: a DSSE envelope (as
manifests are) of a statement whose one subject is the original manifest file
by sha256, and whose predicate is the verdict, a summary of the per-tensor
figures, the environment differences and the tolerance. The suffix is not a
manifest's, so plan and audit never read a replay record as a run.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ftctl import __version__
from ftctl.canonical import JSONError, canonical_json, strict_loads
from ftctl.files import write_atomic
from ftctl.provenance import dsse
from ftctl.provenance.manifest import ManifestError, manifest_name, read_manifest_bytes
from ftctl.provenance.statement import STATEMENT_TYPE, Subject, Timestamp
from ftctl.replay.replay import Replayed

REPLAY_PREDICATE = "https://ftctl.dev/replay/v1"
SUFFIX = ".replay.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ReplayPredicate(_Strict):
    verdict: Literal["bitwise", "tensor-exact", "within-tolerance", "diverged"]
    fingerprint: str
    tolerance: dict[str, float]
    files: list[dict[str, str]]
    tensors: dict[str, Any]  # count, and the worst absolute and relative difference
    environment: list[dict[str, Any]]
    replayedOn: Timestamp
    bundle_index: str | None = None  # sha256 of the bundle's index.json
    ftctl: str


class ReplayStatement(_Strict):
    type_: Literal["https://in-toto.io/Statement/v1"] = Field(alias="_type")
    subject: list[Subject] = Field(min_length=1, max_length=1)
    predicateType: Literal["https://ftctl.dev/replay/v1"]
    predicate: ReplayPredicate


def replay_statement(
    replayed: Replayed, manifest_rel: str, now: datetime | None = None
) -> ReplayStatement:
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": manifest_rel, "digest": {"sha256": replayed.manifest_sha256}}],
        "predicateType": REPLAY_PREDICATE,
        "predicate": {
            "verdict": replayed.verdict,
            "fingerprint": replayed.manifest.statement.fingerprint,
            "tolerance": {"abs": replayed.tolerance.abs, "rel": replayed.tolerance.rel},
            "files": [
                {"name": f.name, "verdict": f.verdict, **({"detail": f.detail} if f.detail else {})}
                for f in replayed.files
            ],
            "tensors": {
                "count": len(replayed.tensors),
                "worst_abs": replayed.worst("max_abs"),
                "worst_rel": replayed.worst("max_rel"),
            },
            "environment": replayed.environment,
            "replayedOn": stamp,
            "bundle_index": replayed.index_sha256 or None,
            "ftctl": __version__,
        },
    }
    return ReplayStatement.model_validate(body)


def write_record(root: Path, replayed: Replayed, key: Ed25519PrivateKey) -> Path:
    """Sign and write the record atomically; never over an existing one (a fresh id each time)."""
    name = replayed.manifest.statement.name
    manifest_rel = f"manifests/{name}/{manifest_name(replayed.manifest.statement)}"
    statement = replay_statement(replayed, manifest_rel)
    envelope = dsse.sign(canonical_json(statement.model_dump(mode="json", by_alias=True)), key)
    stamp = statement.predicate.replayedOn.replace("-", "").replace(":", "")
    path = root / "manifests" / name / "replays" / f"{stamp}-{uuid.uuid4().hex[:12]}{SUFFIX}"
    write_atomic(path, envelope + b"\n")
    return path


def verify_record(path: Path, trusted: dict[str, Ed25519PublicKey]) -> ReplayStatement:
    """A replay record's signature by a trusted key, and its shape; else ManifestError."""
    data = read_manifest_bytes(path)
    try:
        verified = dsse.verify(data.strip(), trusted)
        return ReplayStatement.model_validate(strict_loads(verified.payload))
    except dsse.EnvelopeError as exc:
        raise ManifestError(path, exc.reason) from None
    except JSONError as exc:
        raise ManifestError(
            path, f"the signed statement is not valid JSON ({exc.reason})"
        ) from None
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ManifestError(path, f"not a replay record: {where}: {first['msg']}") from None
