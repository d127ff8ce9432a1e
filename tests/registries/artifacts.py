"""Signed adapters to publish, built by hand: files, a statement naming them, its envelope."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ftctl.provenance.keys import keyid
from ftctl.provenance.manifest import sign_statement
from ftctl.provenance.statement import Statement

BASE_COMMIT = "a" * 40
DATA_COMMIT = "d" * 40


def statement_body(
    subjects: Mapping[str, bytes | str],
    *,
    name: str = "support-bot",
    fingerprint: str = "sha256:" + "f" * 64,
    invocation: str = "run-1",
    base_model: str = "org/base",
    publish: str | None = "hf://acme/support-bot",
    metrics: dict[str, Any] | None = None,
    license: str | None = None,
) -> dict[str, Any]:
    """An ftctl statement of a run whose adapter is ``subjects`` (name -> bytes, or the sha256
    hex of a file too large to hold)."""
    hub_base = not base_model.startswith(("./", "/", "recipe:"))
    base_dep: dict[str, Any] = (
        {"name": "base_model", "uri": f"pkg:huggingface/{base_model}@{BASE_COMMIT}",
         "digest": {"gitCommit": BASE_COMMIT}}
        if hub_base
        else {"name": "base_model", "uri": f"file:{base_model}", "digest": {"sha256": "c" * 64}}
    )  # fmt: skip
    if license is not None:
        base_dep["annotations"] = {"license": license}
    result: dict[str, Any] = {"name": "result.json", "digest": {"sha256": "e" * 64}}
    result["annotations"] = {"metrics": metrics if metrics is not None else {"train_loss": 1.25}}
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {
                "name": n,
                "digest": {"sha256": d if isinstance(d, str) else hashlib.sha256(d).hexdigest()},
            }
            for n, d in sorted(subjects.items())
        ],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://ftctl.dev/buildtypes/fine-tune/v1",
                "externalParameters": {
                    "name": name,
                    "recipe": {"path": f"recipes/{name}.yaml", "digest": {"sha256": "1" * 64}},
                    "base_model": base_model,
                    "datasets": ["org/chats@v2", "data/local.jsonl"],
                    "seed": "42",
                    "publish": publish,
                },
                "internalParameters": {
                    "fingerprint": fingerprint,
                    "config": {"lora_r": 8},
                    "lock": {"path": f"lockfiles/{name}.lock", "digest": {"sha256": "2" * 64}},
                    "determinism": {},
                    "platform": {"python": "3.11"},
                    "committed": True,
                },
                "resolvedDependencies": [
                    base_dep,
                    {
                        "name": "datasets[0]",
                        "uri": f"pkg:huggingface/datasets/org/chats@{DATA_COMMIT}",
                        "digest": {"gitCommit": DATA_COMMIT},
                    },
                    {
                        "name": "datasets[1]",
                        "uri": "dvc:data/local.jsonl",
                        "digest": {"md5": "b" * 32},
                    },
                ],
            },
            "runDetails": {
                "builder": {
                    "id": "https://ftctl.dev/builders/local",
                    "version": {"ftctl": "0.1.0"},
                },
                "metadata": {
                    "invocationId": invocation,
                    "startedOn": "2026-11-24T22:00:00Z",
                    "finishedOn": "2026-11-24T22:01:00Z",
                },
                "byproducts": [result],
            },
        },
    }


@dataclass(frozen=True)
class Adapter:
    """An adapter directory and the signed manifest that vouches for it."""

    files: Path
    statement: Statement
    provenance: bytes
    key: Ed25519PrivateKey

    @property
    def name(self) -> str:
        return self.statement.name

    @property
    def fingerprint(self) -> str:
        return self.statement.fingerprint

    @property
    def trusted(self) -> dict[str, Ed25519PublicKey]:
        public = self.key.public_key()
        return {keyid(public): public}

    def contents(self) -> dict[str, bytes]:
        return {
            p.relative_to(self.files).as_posix(): p.read_bytes()
            for p in sorted(self.files.rglob("*"))
            if p.is_file()
        }


def make_adapter(
    directory: Path,
    files: dict[str, bytes],
    key: Ed25519PrivateKey | None = None,
    **statement: Any,
) -> Adapter:
    """Write ``files`` into ``directory`` and sign a statement naming them."""
    for name, data in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    key = key or Ed25519PrivateKey.generate()
    parsed = Statement.model_validate(statement_body(files, **statement))
    return Adapter(directory, parsed, sign_statement(parsed, key), key)
