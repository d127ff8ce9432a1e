"""Retirement records: a signed statement that a recipe was deleted, so plan stops proposing "retire".

``manifests/<name>/<UTC>-retired-<id12>.retired.json``: a DSSE envelope of an
in-toto Statement whose predicate names the recipe, when it was retired and
the record that was current then (its subject, by digest). Nothing is ever
deleted from a registry. A retirement newer than a recipe's newest manifest
makes the recipe absent from recorded state; its fingerprints stay known, so
a recipe that comes back restores instead of training.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ftctl import __version__
from ftctl.canonical import JSONError, canonical_json, strict_loads
from ftctl.files import SMALL_FILE, UnreadableInput, read_regular, write_atomic
from ftctl.provenance import dsse
from ftctl.provenance.statement import Subject, Timestamp

SUFFIX = ".retired.json"
PREDICATE = "https://ftctl.dev/retirement/v1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Retirement(_Strict):
    recipe: str
    retiredOn: Timestamp
    fingerprint: str  # the fingerprint of the record that was current
    reason: str
    ftctl: str


class RetirementStatement(_Strict):
    type_: Literal["https://in-toto.io/Statement/v1"] = Field(alias="_type")
    subject: list[Subject]
    predicateType: Literal["https://ftctl.dev/retirement/v1"]
    predicate: Retirement


def retire_record(
    root: Path, name: str, last: Path, fingerprint: str, key: Ed25519PrivateKey
) -> Path:
    """Sign and write the retirement of recipe ``name``, whose current record is ``last``."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {
                "name": last.relative_to(root).as_posix(),
                "digest": {
                    "sha256": hashlib.sha256(read_regular(last, SMALL_FILE, str(last))).hexdigest()
                },
            }
        ],
        "predicateType": PREDICATE,
        "predicate": {
            "recipe": name,
            "retiredOn": now,
            "fingerprint": fingerprint,
            "reason": "the recipe was deleted",
            "ftctl": __version__,
        },
    }
    envelope = dsse.sign(canonical_json(body), key)
    stamp = now.replace("-", "").replace(":", "")
    path = root / "manifests" / name / f"{stamp}-retired-{uuid.uuid4().hex[:12]}{SUFFIX}"
    write_atomic(path, envelope + b"\n")
    return path


def verified_retirement(path: Path, trusted: dict[str, Ed25519PublicKey], name: str) -> str | None:
    """When the retirement at ``path`` retired recipe ``name``; None unless it verifies and names it."""
    try:
        verified = dsse.verify(
            read_regular(path, SMALL_FILE, str(path), what="retirement"), trusted
        )
        body = strict_loads(verified.payload)
        if not isinstance(body, dict):
            return None
        statement = RetirementStatement.model_validate(body)
    except (UnreadableInput, dsse.EnvelopeError, JSONError, ValidationError):
        return None
    if statement.predicate.recipe != name:
        return None
    return statement.predicate.retiredOn
