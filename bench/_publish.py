"""Publishing to the Hub: HubRegistry.publish next to a bare ``HfApi().create_commit``.

    measure_publish(size_bytes=1 << 30) -> {"ftctl_s": ..., "bare_s": ..., "ratio": ...}

Both run against tests/hubserver.py on 127.0.0.1 through the real huggingface_hub client
(the LFS path, HF_HUB_DISABLE_XET=1), with the same files: an adapter of one big
safetensors-like file of random bytes and two small ones, the model card and the
provenance. ftctl's side is the whole publish (create_repo, the refs and head reads,
the commit, the tag and its check); the bare side is the commit alone, to a repository
made before the clock starts. Each repository is fresh, so every run uploads the
weights; runs alternate between the two, and each side reports its best. Target:
ratio <= 1.10.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CHUNK = 64 * 1024 * 1024


def measure_publish(size_bytes: int = 1 << 30, runs: int = 3) -> dict[str, float]:
    """Best-of-``runs`` seconds for ftctl's publish and for a bare create_commit, and their ratio."""
    from tests.hubserver import serve

    with tempfile.TemporaryDirectory(prefix="ftctl-bench-publish-") as tmp:
        root = Path(tmp)
        adapter = _adapter(root / "adapter", size_bytes)
        for server in serve():
            with _client_on(server.url, root / "hf-home"):
                ftctl, bare = [], []
                for i in range(runs):
                    ftctl.append(_publish_once(server, adapter, i))
                    bare.append(_bare_once(server, adapter, i))
    best_ftctl, best_bare = min(ftctl), min(bare)
    return {"ftctl_s": best_ftctl, "bare_s": best_bare, "ratio": best_ftctl / best_bare}


def _adapter(directory: Path, size: int) -> dict[str, Any]:
    """The adapter files (weights written in chunks, hashed as written) and their digests."""
    directory.mkdir(parents=True)
    digest = hashlib.sha256()
    with open(directory / "adapter_model.safetensors", "wb") as handle:
        left = size
        while left > 0:
            chunk = os.urandom(min(CHUNK, left))
            digest.update(chunk)
            handle.write(chunk)
            left -= len(chunk)
    small = {
        "adapter_config.json": b'{"r": 16, "lora_alpha": 32, "target_modules": ["q_proj"]}\n',
        "tokenizer_config.json": b'{"model_max_length": 2048}\n',
    }
    for name, data in small.items():
        (directory / name).write_bytes(data)
    subjects: dict[str, bytes | str] = {"adapter_model.safetensors": digest.hexdigest(), **small}
    return {"dir": directory, "subjects": subjects}


def _signed(adapter: dict[str, Any], i: int) -> tuple[str, bytes]:
    """A fresh fingerprint per run (a fingerprint already published is a no-op) and its manifest."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ftctl.provenance.manifest import sign_statement
    from ftctl.provenance.statement import Statement
    from tests.registries.artifacts import statement_body

    fingerprint = "sha256:" + hashlib.sha256(f"bench-{i}".encode()).hexdigest()
    body = statement_body(adapter["subjects"], fingerprint=fingerprint, invocation=f"bench-{i}")
    statement = Statement.model_validate(body)
    return fingerprint, sign_statement(statement, Ed25519PrivateKey.generate())


def _publish_once(server: Any, adapter: dict[str, Any], i: int) -> float:
    from ftctl.registries.hf import HubRegistry

    fingerprint, provenance = _signed(adapter, i)
    registry = HubRegistry(f"hf://bench/ftctl-{i}")
    start = time.perf_counter()
    registry.publish("support-bot", fingerprint, adapter["dir"], provenance, None)
    elapsed = time.perf_counter() - start
    _forget(server, f"bench/ftctl-{i}")
    return elapsed


def _bare_once(server: Any, adapter: dict[str, Any], i: int) -> float:
    from huggingface_hub import CommitOperationAdd, HfApi

    from ftctl.registries.card import model_card
    from ftctl.registries.hubreplies import statement_of

    _, provenance = _signed(adapter, i)
    card = model_card(statement_of(provenance), "sha256:" + "0" * 64).encode()
    repo_id = f"bench/bare-{i}"
    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    operations = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=adapter["dir"] / name)
        for name in sorted(adapter["subjects"])
    ]
    operations += [
        CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card),
        CommitOperationAdd(
            path_in_repo=".ftctl/provenance.intoto.json", path_or_fileobj=provenance
        ),
    ]
    start = time.perf_counter()
    api.create_commit(repo_id, operations, commit_message="bare")
    elapsed = time.perf_counter() - start
    _forget(server, repo_id)
    return elapsed


def _forget(server: Any, repo_id: str) -> None:
    """Drop a measured repository and its LFS objects: the next run uploads again, on free disk."""
    repo = server.state.models.pop(repo_id)
    for path in repo.lfs.values():
        path.unlink(missing_ok=True)


@contextmanager
def _client_on(url: str, home: Path) -> Iterator[None]:
    """huggingface_hub pointed at the test server (the LFS path, no stored token), then restored."""
    import huggingface_hub.constants as constants

    env = {"HF_ENDPOINT": url, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(home)}
    consts = {
        "ENDPOINT": url,
        "HF_HUB_DISABLE_XET": True,
        "HF_HOME": str(home),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
    }
    saved_env = {k: os.environ.get(k) for k in [*env, "HF_TOKEN"]}
    saved = {k: getattr(constants, k) for k in consts}
    os.environ.update(env)
    os.environ.pop("HF_TOKEN", None)
    for key, value in consts.items():
        setattr(constants, key, value)
    try:
        yield
    finally:
        for key, old in saved.items():
            setattr(constants, key, old)
        for key, was in saved_env.items():
            if was is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = was
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    import json

    size = int(float(sys.argv[1]) * (1 << 30)) if len(sys.argv) > 1 else 1 << 30
    print(json.dumps(measure_publish(size), indent=2))
