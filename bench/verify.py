"""Verification benchmarks, each next to its baseline measured in the same run.

    python bench/verify.py [--manifests 1000] [--gib 1] [--runs 3]

(a) Verify N signed manifests as `ftctl` reads state (signature by a trusted
    key, strict JSON, statement shape): next to securesystemslib's DSSE
    verifier checking the same envelopes' signatures only. Target: N=1000 under 1 s.
(b) Verify a --gib GiB adapter directory against its manifest (every subject's
    sha256, nothing missing or extra): next to `sha256sum` over the same files
    (page cache warm, stat cache off). Target: at least 0.8x its throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def statement(i: int, subjects: dict[str, str]) -> dict[str, object]:
    fp = f"{i:064x}"
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": n, "digest": {"sha256": d}} for n, d in sorted(subjects.items())],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://ftctl.dev/buildtypes/fine-tune/v1",
                "externalParameters": {
                    "name": f"r{i:04d}",
                    "recipe": {"path": f"recipes/r{i:04d}.yaml", "digest": {"sha256": fp}},
                    "base_model": "org/model",
                    "datasets": ["data/train.jsonl"],
                    "seed": "42",
                },
                "internalParameters": {
                    "fingerprint": f"sha256:{fp}",
                    "config": {"lora_r": 8},
                    "lock": {"path": f"lockfiles/r{i:04d}.lock", "digest": {"sha256": fp}},
                    "determinism": {},
                    "platform": {"python": "3.11"},
                    "committed": True,
                },
                "resolvedDependencies": [
                    {
                        "name": "base_model",
                        "uri": f"pkg:huggingface/org/model@{'a' * 40}",
                        "digest": {"gitCommit": "a" * 40},
                    },
                    {
                        "name": "datasets[0]",
                        "uri": "dvc:data/train.jsonl",
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
                    "invocationId": str(i),
                    "startedOn": "2026-11-24T22:00:00Z",
                    "finishedOn": "2026-11-24T22:01:00Z",
                },
                "byproducts": [],
            },
        },
    }


def bench_manifests(tmp: Path, n: int, runs: int) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    from ftctl.canonical import canonical_json
    from ftctl.provenance import dsse
    from ftctl.provenance.keys import keyid
    from ftctl.provenance.records import read_records

    key = Ed25519PrivateKey.generate()
    trusted = {keyid(key.public_key()): key.public_key()}
    subjects = {"adapter_model.safetensors": "c" * 64, "adapter_config.json": "d" * 64}
    envelopes = []
    for i in range(n):
        envelope = dsse.sign(canonical_json(statement(i, subjects)), key)
        path = tmp / "manifests" / f"r{i:04d}" / f"20261124T220100Z-{i:012x}.intoto.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(envelope)
        envelopes.append(envelope)
    ours, theirs = [], []
    oracle_key = SSlibKey.from_crypto(key.public_key(), keyid=keyid(key.public_key()))
    for _ in range(runs):
        start = time.perf_counter()
        state = read_records(tmp, lambda: trusted)
        ours.append(time.perf_counter() - start)
        assert sum(len(s.records) for s in state.values()) == n
        start = time.perf_counter()
        for data in envelopes:
            Envelope.from_dict(json.loads(data)).verify([oracle_key], 1)
        theirs.append(time.perf_counter() - start)
    mine, base = min(ours), min(theirs)
    print(f"(a) verify {n} manifests (best of {runs})")
    print(f"    securesystemslib, signatures only (baseline)  {base * 1000:8.1f} ms")
    print(
        f"    ftctl read_records: read, verify, parse, shape  {mine * 1000:8.1f} ms  {base / mine:5.2f}x baseline  "
        f"target < 1000 ms: {'met' if mine < 1 else 'MISSED'}"
    )


def bench_artifacts(tmp: Path, gib: float, runs: int) -> None:
    from ftctl.provenance.manifest import VerifiedManifest, verify_artifacts
    from ftctl.provenance.statement import Statement

    adapter = tmp / "adapter"
    adapter.mkdir()
    block = os.urandom(16 * 1024 * 1024)
    files = 4
    per_file = int(gib * 64 / files)
    for i in range(files):
        with (adapter / f"shard-{i}.safetensors").open("wb") as handle:
            for _ in range(per_file):
                handle.write(block)
    sums = subprocess.run(
        ["sha256sum", *sorted(str(p) for p in adapter.iterdir())],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    digests = {Path(line.split()[1]).name: line.split()[0] for line in sums.splitlines()}
    manifest = VerifiedManifest(
        tmp / "m.json", Statement.model_validate(statement(0, digests)), (), b""
    )
    ours, theirs = [], []
    for _ in range(runs):
        start = time.perf_counter()
        verify_artifacts(manifest, adapter)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run(
            ["sha256sum", *sorted(str(p) for p in adapter.iterdir())],
            capture_output=True,
            check=True,
        )
        theirs.append(time.perf_counter() - start)
    size = sum(p.stat().st_size for p in adapter.iterdir())
    mine, base = size / min(ours) / 2**20, size / min(theirs) / 2**20
    print(f"(b) verify a {size / 2**30:.2f} GiB adapter directory ({files} files, best of {runs})")
    print(f"    sha256sum (baseline)   {base:8.0f} MiB/s")
    print(
        f"    ftctl verify_artifacts {mine:8.0f} MiB/s  {mine / base:5.2f}x  target >= 0.8x: {'met' if mine / base >= 0.8 else 'MISSED'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--manifests", type=int, default=1000)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ftctl-bench-") as name:
        bench_manifests(Path(name), args.manifests, args.runs)
    with tempfile.TemporaryDirectory(prefix="ftctl-bench-") as name:
        bench_artifacts(Path(name), args.gib, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
