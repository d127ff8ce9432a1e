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
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from ftctl import __version__
from ftctl._git import file_at, head_commit, remote_url
from ftctl.canonical import strict_loads
from ftctl.errors import FtctlError
from ftctl.files import read_regular, read_small
from ftctl.lock.fingerprint import training_config
from ftctl.lock.lockfile import Lockfile, pin_descriptor
from ftctl.provenance.manifest import sign_statement, write_manifest
from ftctl.provenance.records import EXTERNAL_BUILDER
from ftctl.provenance.rundir import BYPRODUCTS, RunDir, artifact_digests
from ftctl.provenance.statement import BUILD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, Statement
from ftctl.recipe.load import LoadedRecipe
from ftctl.runspec import TrainedRecord
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


BUILDER_PREFIX = "https://ftctl.dev/builders/"
BYPRODUCT_LIMIT = 256 * 1024 * 1024  # a train log of millions of steps fits
# A run trained outside ftctl's worker (EXTERNAL_BUILDER): ftctl did not verify its inputs, and
# plan, log and audit say so.


def run_id(run: RunDir) -> str:
    """The run's id: the worker's, or (a run trained elsewhere) a digest of its result.json."""
    given = run.result.get("run_id")
    if isinstance(given, str) and re.fullmatch(r"[0-9a-f]{8,64}", given):
        return given
    return hashlib.sha256(read_small(run.root / "result.json")).hexdigest()[:32]


def check_run(run: RunDir, loaded: LoadedRecipe, lock: Lockfile, *, external: bool) -> None:
    """Refuse a run that does not vouch for what the manifest would say it trained."""
    check_adapter(run, loaded)
    raw = run.result.get("trained")
    shown = f"{run.root}/result.json"
    if raw is None:
        if not external:
            raise FtctlError(
                f"{shown} records no inputs that ftctl verified (a run trained outside ftctl?)",
                hint="attest it with --external: the manifest then says its inputs were not verified",
            )
        return
    try:
        record = TrainedRecord.model_validate(raw)
    except ValidationError:
        raise FtctlError(f"{shown}: 'trained' is malformed", hint="train the run again") from None
    if record.config_digest != lock.recipe.digest:
        raise FtctlError(
            f"{run.root} trained another training config than recipe {loaded.name} locks",
            hint=f"attest it with the recipe it trained, or train {loaded.name} again",
        )
    if record.fingerprint is None:
        if not external:
            raise FtctlError(
                f"{run.root} was trained without a fresh lock, so its inputs were not verified",
                hint=f"run `ftctl lock {loaded.name}` and train again, or attest it with --external",
            )
        return
    if external:
        raise FtctlError(
            f"{run.root} was trained by ftctl from a lock; it is not external",
            hint="attest it without --external",
        )
    if record.fingerprint != lock.fingerprint:
        raise FtctlError(
            f"{run.root} trained fingerprint {record.fingerprint[7:19]}, but recipe {loaded.name} "
            f"is locked at {lock.fingerprint[7:19]}",
            hint="attest the run with the recipe and lock it was trained from",
        )
    expected = lock.input_identities()
    differs = sorted(
        k
        for k in set(expected) | set(record.inputs or {})
        if expected.get(k) != (record.inputs or {}).get(k)
    )
    if differs:
        raise FtctlError(
            f"{run.root} trained other inputs than the lock pins: {', '.join(differs)}",
            hint="train the run again from the current lock",
        )


def check_adapter(run: RunDir, loaded: LoadedRecipe) -> None:
    """What the adapter says about itself must be what the recipe asks for."""
    recipe = loaded.recipe
    config_path = run.adapter / "adapter_config.json"
    if recipe.adapter is None:
        if config_path.exists():
            raise FtctlError(
                f"{config_path}: the run trained an adapter, but recipe {loaded.name} is a full fine-tune",
                hint="attest the run with the recipe it trained",
            )
        return
    try:
        config = strict_loads(read_regular(config_path, 1 << 20, str(config_path)))
    except FtctlError as exc:
        raise FtctlError(
            f"{config_path}: {exc.problem.message}",
            hint="a LoRA run's adapter has adapter_config.json",
        ) from None
    if not isinstance(config, dict):
        raise FtctlError(f"{config_path}: not a JSON object")
    wanted: dict[str, Any] = {
        "r": recipe.lora_r,
        "lora_alpha": recipe.lora_alpha,
        "base_model_name_or_path": recipe.base_model,
    }
    if isinstance(recipe.lora_target_modules, list) and not recipe.lora_target_linear:
        wanted["target_modules"] = sorted(recipe.lora_target_modules)
    found = {k: config.get(k) for k in wanted}
    modules = found.get("target_modules")
    if isinstance(modules, list):
        found["target_modules"] = sorted(str(m) for m in modules)
    differs = [
        f"{k}: {found[k]!r} (recipe: {wanted[k]!r})" for k in wanted if found[k] != wanted[k]
    ]
    if differs:
        raise FtctlError(
            f"{config_path} does not match recipe {loaded.name}: {'; '.join(differs)}",
            hint="attest the run with the recipe it trained, or train it again",
        )


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


def resolved_dependencies(lock: Lockfile, git: GitState) -> list[dict[str, Any]]:
    """The lock's pinned inputs, the recipe repository's commit and ftctl, as resource descriptors."""
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
    return dependencies


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
    external: bool = False,
) -> Statement:
    recipe = loaded.recipe
    recipe_rel = loaded.path.resolve().relative_to(workspace.root.resolve()).as_posix()
    recipe_bytes = read_small(loaded.path)
    git = git_state(workspace.root, recipe_rel, recipe_bytes, lock_rel, lock_bytes)
    subjects = artifact_digests(run.adapter)
    if not subjects:
        raise FtctlError(f"{run.adapter}: no files to attest")
    check_run(run, loaded, lock, external=external)
    dependencies = resolved_dependencies(lock, git)
    byproducts: list[dict[str, Any]] = []
    for name in BYPRODUCTS:
        entry: dict[str, Any] = {
            "name": name,
            "digest": {
                "sha256": hashlib.sha256(read_small(run.root / name, BYPRODUCT_LIMIT)).hexdigest()
            },
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
                    "id": EXTERNAL_BUILDER if external else f"{BUILDER_PREFIX}{executor}",
                    "version": {"ftctl": __version__},
                },
                "metadata": {
                    "invocationId": run_id(run),
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
    *,
    external: bool = False,
) -> tuple[Path, Statement]:
    lock_bytes = read_small(lock_path)
    lock_rel = lock_path.resolve().relative_to(workspace.root.resolve()).as_posix()
    statement = build_statement(
        workspace, loaded, lock, lock_rel, lock_bytes, run, external=external
    )
    envelope = sign_statement(statement, key)
    path, _ = write_manifest(workspace.root, statement, envelope)
    return path, statement
