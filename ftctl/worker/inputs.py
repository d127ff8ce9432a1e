"""A run's inputs as its lock pinned them: fetched when missing, verified before training.

apply hands the worker the lock it planned with. Hub models and datasets are
then loaded at the locked commit (from the Hugging Face cache when it holds
them, so HF_HUB_OFFLINE=1 works on air-gapped hosts); a DVC-tracked path
missing from the workspace is fetched through DVC; and every local or DVC
input is hashed as `ftctl lock` hashed it, so training never starts on data
other than what the plan showed. Without a lock (`ftctl train`) references
resolve as written. A Hub base model that is neither cached nor reachable is
refused in seconds, in one line.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ftctl._dvc import DvcRecord
from ftctl.cache.stat import StatCache
from ftctl.errors import FtctlError
from ftctl.lock.lockfile import DvcPin, HfPin, LocalPin, Lockfile
from ftctl.recipe.model import Recipe
from ftctl.recipe.refs import COMMIT_RE
from ftctl.render.terminal import info, warn
from ftctl.runspec import TrainedRecord

if TYPE_CHECKING:
    from ftctl.workspace import Confinement


def verified_lock(lock_path: str | None, root: Path, recipe: Recipe) -> Lockfile | None:
    """The run's lock (none for an unlocked run): the recipe is the one it locked, every local
    and DVC input is the one it pinned."""
    if lock_path is None:
        return None
    from ftctl.lock.lockfile import load_lock

    lock = load_lock(Path(lock_path), lock_path)
    if lock.recipe.digest != config_digest(recipe):
        raise FtctlError(
            f"the recipe is not the one {lock_path} locked (its training config changed)",
            hint="run `ftctl lock` and train again",
        )
    verify_inputs(lock, root, lock_path)
    return lock


def config_digest(recipe: Recipe) -> str:
    """The digest of the training config this run trains (the lock's ``recipe.digest``)."""
    from ftctl.canonical import sha256_of
    from ftctl.lock.fingerprint import training_config

    return sha256_of(training_config(recipe))


def trained_record(recipe: Recipe, lock: Lockfile | None) -> TrainedRecord:
    """What this run vouches for: the lock's fingerprint and inputs, verified before training."""
    if lock is None:
        return TrainedRecord(fingerprint=None, config_digest=config_digest(recipe), inputs=None)
    return TrainedRecord(
        fingerprint=lock.fingerprint,
        config_digest=lock.recipe.digest,
        inputs=lock.input_identities(),
    )


def locked_revision(lock: Lockfile | None, ref: str, kind: str) -> str | None:
    """The commit the lock pinned for the model (``kind="model"``) or dataset written ``ref``."""
    if lock is None:
        return None
    pins = [lock.base_model, lock.lora_model_dir] if kind == "model" else list(lock.datasets)
    for pin in pins:
        if isinstance(pin, HfPin) and pin.ref == ref:
            return pin.revision
    return None


def hub_dataset(repo_id: str, revision: str | None, where: str) -> Path:
    """A Hub dataset's files at a revision, through the Hugging Face cache (offline-aware)."""
    from ftctl._hf import dataset_snapshot

    return dataset_snapshot(repo_id, revision, where)


def fetch_if_tracked(root: Path, path: Path, where: str) -> bool:
    """`dvc pull` a DVC-tracked path missing from the workspace; False if DVC does not track it."""
    from ftctl._dvc import find_record, find_repo

    repo = find_repo(root)
    if repo is None or not path.is_relative_to(repo) or find_record(repo, path) is None:
        return False
    from ftctl._dvc import pull

    info(f"ftctl: {where}: not in the workspace; fetching it with dvc pull")
    pull(repo, path, where)
    return path.exists()


def verify_inputs(lock: Lockfile, root: Path, lock_shown: str) -> None:
    """Hash every local and DVC input as the lock did; a difference names the file and stops the run."""
    from ftctl._dvc import workspace_md5
    from ftctl.hashing import tree_digest

    cache = StatCache.of(root)
    pins: list[tuple[str, object]] = [
        ("base_model", lock.base_model),
        ("lora_model_dir", lock.lora_model_dir),
    ]
    pins += [(f"datasets[{i}]", pin) for i, pin in enumerate(lock.datasets)]
    for name, pin in pins:
        if isinstance(pin, LocalPin):
            target = resolve_path(root, pin.ref, name)
            if not target.exists():
                raise FtctlError(
                    f"{name}: {pin.ref} is missing", hint=f"it is pinned by {lock_shown}"
                )
            found = tree_digest(target, pin.ref, cache).digest
            expected = pin.digest
        elif isinstance(pin, DvcPin):
            target = resolve_path(root, pin.ref, name)
            if not target.exists() and not fetch_if_tracked(root, target, name):
                raise FtctlError(
                    f"{name}: {pin.ref} is missing and DVC cannot fetch it", hint="run `dvc pull`"
                )
            record = _dvc_record(root, target)
            found = workspace_md5(target, record.legacy if record is not None else False, cache)
            expected = pin.md5
        else:
            continue
        if found != expected:
            raise FtctlError(
                f"{name}: {pin.ref} differs from what {lock_shown} pinned ({expected[:19]}..., found {found[:19]}...)",
                hint="restore it (dvc checkout, git checkout) or run `ftctl lock` and plan again",
            )
    cache.save()


def _dvc_record(root: Path, target: Path) -> DvcRecord | None:
    from ftctl._dvc import find_record, find_repo

    repo = find_repo(root)
    return find_record(repo, target) if repo is not None else None


def resolve_path(root: Path, text: str, where: str | None = None) -> Path:
    """A path from a recipe or its lock: absolute, or relative to the workspace root.

    Confined as lock confines it (the workspace and ftctl.yaml's ``allow_paths``): whoever
    started this worker, nothing outside those roots is read or trained on.
    """
    from ftctl.workspace import resolve_path as resolved

    refused = _confinement(root).refusal(text)
    if refused is not None:
        message, hint = refused
        raise FtctlError(f"{where}: {message}" if where else message, hint=hint)
    return resolved(root, text)


def data_file(root: Path, path: str, name: str, where: str, snapshot: Path | None = None) -> str:
    """One of the ``data_files`` of the dataset ``path``: a file inside it (or inside its Hub ``snapshot``)."""
    from ftctl.workspace import data_file_refusal

    refused = data_file_refusal(name)
    if refused is not None:
        raise FtctlError(f"{where}: data_files: {refused[0]}", hint=refused[1])
    if snapshot is not None:  # the Hugging Face cache: its files are links into the cache's blobs
        return str(snapshot / name)
    return str(resolve_path(root, os.path.join(path, name), where))


@lru_cache(maxsize=4)
def _confinement(root: Path) -> Confinement:
    """The allowed roots, read from the workspace's own ftctl.yaml (the run spec carries the root)."""
    from ftctl.workspace import CONFIG_NAME, Confinement, load_config

    config = root / CONFIG_NAME
    allowed = load_config(config).allow_paths if config.exists() or config.is_symlink() else []
    return Confinement(root, tuple(allowed))


class BaseSource(NamedTuple):
    """Where the base model loads from."""

    source: str  # a Hub id or a local directory, for from_pretrained
    revision: str | None
    merge: Path | None  # an upstream adapter to merge into the base first
    hub: bool  # source is a Hub id (loaded through the Hugging Face cache)
    local_only: bool = False  # load from the Hugging Face cache alone (no request to the Hub)


def checked_base(
    base_model: str, base_dir: Path | None, root: Path, lock: Lockfile | None
) -> BaseSource:
    """:func:`load_base`, checked: a local base is a model directory, a Hub one cached or reachable."""
    where = f"base_model {base_model}"
    base = load_base(base_model, base_dir, root, lock)
    if base.hub:
        return base._replace(local_only=hub_model(base.source, base.revision, where))
    check_local_model(Path(base.source), where)
    return base


def load_base(
    base_model: str, base_dir: Path | None, root: Path, lock: Lockfile | None
) -> BaseSource:
    """Where the recipe's base model loads from, and the adapter to merge into it first.

    ``recipe:<name>`` trains on the upstream's output (``base_dir``): a full model directory, or an
    adapter directory whose own base is loaded and the adapter merged into it.
    """
    from ftctl.recipe.refs import parse_model_ref

    ref = parse_model_ref(base_model)
    if ref.kind == "recipe":
        if base_dir is None:
            raise FtctlError(
                f"base_model: {base_model}: the upstream's output is not known to this run",
                hint=f"train {ref.value} first (ftctl train {ref.value}); apply passes its output",
            )
        adapter_config = base_dir / "adapter_config.json"
        if not adapter_config.is_file():
            return BaseSource(str(base_dir), None, None, hub=False)
        import json

        try:
            config = json.loads(adapter_config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FtctlError(
                f"{adapter_config}: unreadable ({exc})", hint=f"train {ref.value} again"
            ) from None
        upstream_base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
        if not isinstance(upstream_base, str):
            raise FtctlError(f"{adapter_config}: names no base model")
        upstream = load_base(upstream_base, None, root, None)
        return upstream._replace(merge=base_dir)
    if ref.kind == "local":
        return BaseSource(str(resolve_path(root, ref.value, "base_model")), None, None, hub=False)
    revision = locked_revision(lock, base_model, "model") or ref.revision
    return BaseSource(ref.value, revision, None, hub=True)


def check_local_model(path: Path, where: str) -> None:
    """A local base is a model directory: said before transformers mistakes it for a Hub id."""
    if not path.is_dir():
        raise FtctlError(
            f"{where}: {path} is not a directory",
            hint="give a transformers model directory (relative to the workspace root) or a Hub id",
        )
    if not (path / "config.json").is_file():
        raise FtctlError(
            f"{where}: {path} has no config.json, so it is not a transformers model directory",
            hint="point base_model at the directory save_pretrained wrote",
        )


def hub_model(repo_id: str, revision: str | None, where: str) -> bool:
    """Whether the Hub model must load from the Hugging Face cache alone; refuses at once one that cannot load.

    transformers retries an unreachable Hub for most of a minute and then fails with a traceback;
    the cache, HF_HUB_OFFLINE and one question to the Hub (ftctl._hf, no retries) decide here instead.
    """
    from ftctl._hf import RETRY_STATUS, HubError, RetryPolicy, default_policy, resolve_commit

    shown = f"{repo_id}@{revision or 'main'}"
    cached = _in_hub_cache(repo_id, "config.json", revision)
    offline = _hub_offline()
    if cached and (offline or _is_commit(revision)):
        return True  # a commit never changes, so the cache is as good as the Hub
    download = (
        f"download it where the Hub is reachable (hf download {repo_id}"
        + (f" --revision {revision}" if revision else "")
        + ") and copy the Hugging Face cache here"
    )
    if offline:
        raise FtctlError(
            f"{where}: {shown} is not in the Hugging Face cache, and HF_HUB_OFFLINE is set",
            hint=f"{download}, unset HF_HUB_OFFLINE, or use a local model directory",
        )
    once = RetryPolicy(attempts=1, timeout=default_policy().timeout)
    try:
        resolve_commit("model", repo_id, revision, recipe=where, policy=once)
    except HubError as exc:
        if exc.status is not None and exc.status not in RETRY_STATUS:
            # The Hub answered: no such model or revision, gated, not authorized.
            raise FtctlError(f"{where}: {shown}: {exc.reason}", hint=exc.problem.hint) from None
        cause = exc.reason.removesuffix(" after 1 attempts")
        if cached:
            warn(f"{where}: the Hub is not reachable ({cause}); loading {shown} cached")
            return True
        raise FtctlError(
            f"{where}: {shown} is not in the Hugging Face cache, and the Hub at "
            f"{_hub_endpoint()} is not reachable ({cause})",
            hint=f"{download}, point HF_ENDPOINT at a reachable mirror, or use a local model directory",
        ) from None
    return False


def _is_commit(revision: str | None) -> bool:
    return revision is not None and COMMIT_RE.match(revision.lower()) is not None


def _in_hub_cache(repo_id: str, filename: str, revision: str | None) -> bool:
    from ftctl._hf import in_cache

    return in_cache(repo_id, filename, revision)


def _hub_offline() -> bool:
    from ftctl._hf import offline

    return offline()


def _hub_endpoint() -> str:
    from ftctl._hf import endpoint

    return endpoint()
