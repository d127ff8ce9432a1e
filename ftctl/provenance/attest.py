"""Build and sign the manifest of a finished run: `ftctl attest`, and apply after training.

The statement records what was asked (the recipe's bytes and references), what
it resolved to (the lock: commits, DVC records, digests, pins), what came out
(every adapter file's sha256) and how (executor, host, timings, the train log,
environment and metrics as byproducts). Only a short allow-listed platform
summary is copied from environment.json, so no environment variable or secret
can travel into a manifest.
"""

from __future__ import annotations

import hashlib
import platform as host_platform
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ftctl import __version__
from ftctl._git import file_at, head_commit, remote_url
from ftctl.errors import FtctlError
from ftctl.lock.fingerprint import training_config
from ftctl.lock.lockfile import Lockfile, pin_descriptor
from ftctl.provenance.manifest import sign_statement, write_manifest
from ftctl.provenance.rundir import BYPRODUCTS, RunDir, artifact_digests
from ftctl.provenance.statement import BUILD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, Statement
from ftctl.recipe.load import LoadedRecipe
from ftctl.workspace import Workspace

PLATFORM_KEYS = (
    "python",
    "platform",
    "torch",
    "cuda",
    "device",
    "gpu",
    "transformers",
    "peft",
    "trl",
)


@dataclass(frozen=True)
class GitState:
    commit: str | None
    remote: str | None
    committed: bool  # recipe and lock bytes equal their versions at ``commit``


def git_state(
    root: Path, recipe_rel: str, recipe_bytes: bytes, lock_rel: str, lock_bytes: bytes
) -> GitState:
    commit = head_commit(root)
    if commit is None:
        return GitState(None, None, False)
    committed = (
        file_at(root, commit, recipe_rel) == recipe_bytes
        and file_at(root, commit, lock_rel) == lock_bytes
    )
    return GitState(commit, remote_url(root), committed)


def utc(stamp: str, what: str) -> str:
    """An ISO-8601 time as UTC with a Z, to the second."""
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        raise FtctlError(f"{what} {stamp!r} is not an ISO-8601 time") from None
    if parsed.tzinfo is None:
        raise FtctlError(
            f"{what} {stamp!r} has no time zone", hint="write it in UTC, e.g. 2026-11-24T22:00:00Z"
        )
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_statement(
    workspace: Workspace,
    loaded: LoadedRecipe,
    lock: Lockfile,
    lock_rel: str,
    lock_bytes: bytes,
    run: RunDir,
    *,
    executor: str = "local",
    published: dict[str, str] | None = None,
) -> Statement:
    recipe = loaded.recipe
    recipe_rel = loaded.path.resolve().relative_to(workspace.root.resolve()).as_posix()
    recipe_bytes = loaded.path.read_bytes()
    git = git_state(workspace.root, recipe_rel, recipe_bytes, lock_rel, lock_bytes)
    subjects = artifact_digests(run.adapter)
    if not subjects:
        raise FtctlError(f"{run.adapter}: no files to attest")
    claimed = run.result.get("fingerprint")
    if claimed is not None and claimed != lock.fingerprint:
        raise FtctlError(
            f"{run.root}: the run trained fingerprint {claimed}, but recipe {loaded.name} is locked at "
            f"{lock.fingerprint}",
            hint="attest the run with the recipe and lock it was trained from",
        )
    dependencies = [pin_descriptor("base_model", lock.base_model)]
    if lock.lora_model_dir is not None:
        dependencies.append(pin_descriptor("lora_model_dir", lock.lora_model_dir))
    dependencies += [
        pin_descriptor(f"datasets[{i}]", pin, "dataset") for i, pin in enumerate(lock.datasets)
    ]
    dependencies.append(
        {
            "name": "pins",
            "uri": f"file:{lock.pins.path}",
            "digest": {"sha256": lock.pins.digest.removeprefix("sha256:")},
            "annotations": {"packages": dict(lock.pins.packages)},
        }
    )
    if git.commit is not None:
        dependencies.append(
            {
                "name": "recipe_repository",
                "uri": f"git+{git.remote or 'file:.'}@{git.commit}",
                "digest": {"gitCommit": git.commit},
            }
        )
    dependencies.append({"name": "ftctl", "uri": f"pkg:pypi/ftctl@{__version__}"})
    byproducts: list[dict[str, Any]] = []
    for name in BYPRODUCTS:
        entry: dict[str, Any] = {
            "name": name,
            "digest": {"sha256": hashlib.sha256((run.root / name).read_bytes()).hexdigest()},
        }
        if name == "result.json" and isinstance(run.result.get("metrics"), dict):
            entry["annotations"] = {
                "metrics": {
                    k: v
                    for k, v in run.result["metrics"].items()
                    if isinstance(v, (int, float, str))
                }
            }
        byproducts.append(entry)
    if published:
        byproducts.append({"name": "published", **published})
    platform_summary = {k: run.environment[k] for k in PLATFORM_KEYS if k in run.environment}
    platform_summary["host"] = str(run.result.get("host") or host_platform.node())
    body = {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": name, "digest": {"sha256": digest}}
            for name, digest in sorted(subjects.items())
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "name": loaded.name,
                    "recipe": {
                        "path": recipe_rel,
                        "digest": {"sha256": hashlib.sha256(recipe_bytes).hexdigest()},
                    },
                    "base_model": recipe.base_model,
                    "datasets": [entry.path for entry in (recipe.datasets or [])],
                    "seed": str(recipe.seed),
                    "publish": workspace.publish_target(loaded.name, recipe.ftctl.publish),
                },
                "internalParameters": {
                    "fingerprint": lock.fingerprint,
                    "config": training_config(recipe),
                    "lock": {
                        "path": lock_rel,
                        "digest": {"sha256": hashlib.sha256(lock_bytes).hexdigest()},
                    },
                    "determinism": run.result.get("determinism")
                    if isinstance(run.result.get("determinism"), dict)
                    else {},
                    "platform": platform_summary,
                    "committed": git.committed,
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {
                    "id": f"https://ftctl.dev/builders/{executor}",
                    "version": {"ftctl": __version__},
                },
                "metadata": {
                    "invocationId": str(run.result.get("run_id") or uuid.uuid4()),
                    "startedOn": utc(str(run.result["started_at"]), "result.json started_at"),
                    "finishedOn": utc(str(run.result["finished_at"]), "result.json finished_at"),
                },
                "byproducts": byproducts,
            },
        },
    }
    return Statement.model_validate(body)


def attest(
    workspace: Workspace,
    loaded: LoadedRecipe,
    lock: Lockfile,
    lock_path: Path,
    run: RunDir,
    key: Ed25519PrivateKey,
) -> tuple[Path, Statement]:
    lock_bytes = lock_path.read_bytes()
    lock_rel = lock_path.resolve().relative_to(workspace.root.resolve()).as_posix()
    statement = build_statement(workspace, loaded, lock, lock_rel, lock_bytes, run)
    envelope = sign_statement(statement, key)
    return write_manifest(workspace.root, statement, envelope), statement
