"""`ftctl bundle`: everything one recorded run needs to be trained again with no network.

A bundle is a small workspace (the recipe and lock at the bytes the manifest
records, the pins file, the trusted keys, the local and DVC inputs the lock
pins, the Hub inputs as a Hugging Face cache) plus the verified manifest, the
original adapter when it is at hand, and ``index.json``: every file's sha256
and size. Each input is checked against what the manifest and lock recorded
while it is copied, so a bundle never holds what the run did not train on.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict

from ftctl.canonical import canonical_json, sha256_of
from ftctl.errors import FtctlError, UsageError
from ftctl.files import read_small
from ftctl.lock.lockfile import DvcPin, HfPin, LocalPin, Lockfile, RecipePin, load_lock
from ftctl.provenance.manifest import (
    SUFFIX,
    ManifestError,
    VerifiedManifest,
    read_manifest_bytes,
    verify_artifacts,
    verify_bytes,
)
from ftctl.provenance.statement import check_subject_name
from ftctl.provenance.trust import Trust
from ftctl.replay.sink import Sink, sink_for
from ftctl.workspace import CONFIG_NAME, Workspace, resolve_path

INDEX = "index.json"
MANIFEST = "manifest.intoto.json"
ORIGINAL = "original"  # the recorded adapter, for comparing tensors when the bytes differ
KEYS = "keys"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndexEntry(_Strict):
    path: str
    sha256: str
    size: int


class BundleIndex(_Strict):
    """``index.json``: what the bundle holds and where replay finds each part."""

    version: Literal[1] = 1
    name: str
    manifest: str
    recipe: str
    lock: str
    dvc: bool  # a DVC-tracked input is in it: replay marks the workspace as a DVC repository
    hf_cache: bool  # Hub inputs are in it, as a Hugging Face cache under hf-cache/
    original: bool  # the recorded adapter is under original/
    files: list[IndexEntry]


@dataclass
class Bundled:
    out: Path
    index: BundleIndex
    sizes: dict[str, int] = field(default_factory=dict)  # by part: inputs, base model, ...
    notes: list[str] = field(default_factory=list)


def find_manifest(
    root: Path, target: str, trusted: dict[str, Ed25519PublicKey]
) -> VerifiedManifest:
    """NAME (its newest verified manifest) or a manifest file, verified with the trusted keys."""
    path = Path(target)
    if not target.endswith(SUFFIX) and "/" not in target:
        folder = root / "manifests" / target
        found = sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
        if not found:
            raise UsageError(
                f"no manifest for recipe '{target}' under manifests/{target}/",
                hint="apply it first, or name a manifest file",
            )
        path = found[-1]  # names begin with the UTC finish time: the newest sorts last
    return verify_bytes(read_manifest_bytes(path), trusted, path)


def make_bundle(
    workspace: Workspace,
    manifest: VerifiedManifest,
    trust: Trust,
    out: Path,
    artifacts: Path | None = None,
) -> Bundled:
    """Write the bundle of ``manifest`` to ``out`` (a directory, ``.tar`` or ``.tar.zst``)."""
    sink = sink_for(out)
    try:
        bundled = _fill(workspace, manifest, trust, sink, out, artifacts)
        sink.close()
    except BaseException:
        sink.abort()
        raise
    return bundled


class _Writer:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.entries: dict[str, IndexEntry] = {}
        self.sizes: dict[str, int] = {}

    def file(self, rel: str, source: Path, part: str) -> tuple[str, str]:
        copied = self.sink.add_file(rel, source)
        self._note(rel, copied.sha256, copied.size, part)
        return copied.sha256, copied.md5

    def data(self, rel: str, data: bytes, part: str) -> None:
        copied = self.sink.add_bytes(rel, data)
        self._note(rel, copied.sha256, copied.size, part)

    def _note(self, rel: str, sha256: str, size: int, part: str) -> None:
        if rel in self.entries:
            return  # the same file named twice (a dataset listed twice): copied once is enough
        self.entries[rel] = IndexEntry(path=rel, sha256=sha256, size=size)
        self.sizes[part] = self.sizes.get(part, 0) + size


def _fill(
    workspace: Workspace,
    manifest: VerifiedManifest,
    trust: Trust,
    sink: Sink,
    out: Path,
    artifacts: Path | None,
) -> Bundled:
    root = workspace.root
    statement = manifest.statement
    definition = statement.predicate.buildDefinition
    recipe_ref = definition.externalParameters.recipe
    lock_ref = definition.internalParameters.lock
    commit = next(
        (
            (d.digest or {}).get("gitCommit")
            for d in definition.resolvedDependencies
            if d.name == "recipe_repository"
        ),
        None,
    )
    writer = _Writer(sink)
    recipe_bytes = recorded_bytes(
        root, recipe_ref.path, recipe_ref.digest["sha256"], commit, "recipe"
    )
    lock_bytes = recorded_bytes(root, lock_ref.path, lock_ref.digest["sha256"], commit, "lock")
    writer.data(MANIFEST, read_manifest_bytes(manifest.path), "manifest, recipe, lock, keys")
    writer.data(recipe_ref.path, recipe_bytes, "manifest, recipe, lock, keys")
    writer.data(lock_ref.path, lock_bytes, "manifest, recipe, lock, keys")
    lock = _parse_lock(lock_bytes, lock_ref.path)
    if lock.fingerprint != statement.fingerprint:
        raise FtctlError(f"{lock_ref.path} locks another fingerprint than {manifest.path} records")
    if workspace.config_path is not None and workspace.config_path.is_file():
        writer.data(CONFIG_NAME, read_small(workspace.config_path), "manifest, recipe, lock, keys")
    for i, key in enumerate(trust.files):
        base = Path(key.name).name
        name = base if re.fullmatch(r"[A-Za-z0-9._-]+\.pub", base) else f"trusted-{i}.pub"
        writer.data(f"{KEYS}/{name}", key.data, "manifest, recipe, lock, keys")
    _pins(root, lock, writer)
    dvc = False
    hf = False
    pins: list[tuple[str, object, str]] = [("base_model", lock.base_model, "model")]
    if lock.lora_model_dir is not None:
        pins.append(("lora_model_dir", lock.lora_model_dir, "model"))
    pins += [(f"datasets[{i}]", pin, "dataset") for i, pin in enumerate(lock.datasets)]
    for name, pin, kind in pins:
        part = (
            "base model" if name == "base_model" else "datasets" if kind == "dataset" else "adapter"
        )
        if isinstance(pin, LocalPin):
            _local(root, name, pin, writer, part)
        elif isinstance(pin, DvcPin):
            _dvc(root, name, pin, writer, part)
            dvc = True
        elif isinstance(pin, HfPin):
            _hub(name, pin, kind, writer, part)
            hf = True
        elif isinstance(pin, RecipePin):
            raise FtctlError(
                f"{name}: {pin.ref} is another recipe's output; bundling a chained recipe is "
                "not supported",
                hint="bundle a recipe whose base model is a Hub model or a local directory",
            )
    notes: list[str] = []
    original = _original(root, manifest, writer, artifacts, notes)
    index = BundleIndex(
        name=statement.name,
        manifest=MANIFEST,
        recipe=recipe_ref.path,
        lock=lock_ref.path,
        dvc=dvc,
        hf_cache=hf,
        original=original,
        files=sorted(writer.entries.values(), key=lambda e: e.path),
    )
    sink.add_bytes(INDEX, canonical_json(index.model_dump(mode="json")) + b"\n")
    return Bundled(out, index, writer.sizes, notes)


def recorded_bytes(root: Path, rel: str, digest: str, commit: str | None, what: str) -> bytes:
    """The file's bytes as the manifest recorded them: the working tree's, else git's at the
    recorded commit; a file whose bytes are neither is refused, named."""
    try:
        check_subject_name(rel)
    except ValueError:
        raise FtctlError(
            f"the manifest's {what} path {rel!r} is not a path in the workspace"
        ) from None
    path = root / rel
    if path.is_file() and not path.is_symlink():
        data = read_small(path)
        if hashlib.sha256(data).hexdigest() == digest:
            return data
    if commit is not None:
        from ftctl._git import file_at

        data_at = file_at(root, commit, rel)
        if data_at is not None and hashlib.sha256(data_at).hexdigest() == digest:
            return data_at
    raise FtctlError(
        f"{rel}: its bytes differ from the {what} the manifest records (sha256 {digest[:12]}...), "
        f"in the working tree and at the recorded commit",
        hint=f"restore the recorded {what} (git checkout), or bundle the manifest that records it",
    )


def _parse_lock(data: bytes, shown: str) -> Lockfile:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "recorded.lock"
        path.write_bytes(data)
        return load_lock(path, shown)


def _pins(root: Path, lock: Lockfile, writer: _Writer) -> None:
    from ftctl.lock.pins import read_pins

    rel = lock.pins.path
    path = _inside(root, rel, "pins")
    if not path.exists():
        if lock.pins.packages:
            raise FtctlError(f"{rel} is missing", hint="restore the pins file the lock records")
        return
    if read_pins(path, rel).digest != lock.pins.digest:
        raise FtctlError(
            f"{rel} differs from the pins the lock records",
            hint="restore the pins file (git checkout), or bundle the manifest that records it",
        )
    writer.file(_rel(root, path), path, "manifest, recipe, lock, keys")


def _inside(root: Path, ref: str, name: str) -> Path:
    path = resolve_path(root, ref)
    real = path.resolve()
    if not real.is_relative_to(root.resolve()):
        raise FtctlError(
            f"{name}: {ref} is outside the workspace; bundling such an input is not supported",
            hint="move it into the workspace and lock again",
        )
    return real


def _rel(root: Path, path: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def _local(root: Path, name: str, pin: LocalPin, writer: _Writer, part: str) -> None:
    from ftctl.hashing import walk_files

    path = _inside(root, pin.ref, name)
    rel = _rel(root, path)
    if path.is_file():
        sha, _ = writer.file(rel, path, part)
        found = f"sha256:{sha}"
    elif path.is_dir():
        entries = [
            (sub, writer.file(f"{rel}/{sub}", file, part)[0])
            for sub, file in walk_files(path, pin.ref)
        ]
        found = sha256_of(entries)
    else:
        raise FtctlError(f"{name}: {pin.ref} is missing", hint="restore it; the lock pins it")
    if found != pin.digest:
        raise FtctlError(
            f"{name}: {pin.ref} differs from what the lock pinned ({pin.digest[:19]}..., "
            f"found {found[:19]}...)",
            hint="restore the recorded file (dvc checkout, git checkout) and bundle again",
        )


def _dvc(root: Path, name: str, pin: DvcPin, writer: _Writer, part: str) -> None:
    from ftctl._dvc import find_record, find_repo, workspace_md5
    from ftctl.cache.stat import StatCache
    from ftctl.hashing import walk_files

    path = _inside(root, pin.ref, name)
    repo = find_repo(root)
    record = find_record(repo, path) if repo is not None else None
    if not path.exists():
        raise FtctlError(f"{name}: {pin.ref} is missing", hint="run `dvc pull` first")
    legacy = record.legacy if record is not None else False
    found = workspace_md5(path, legacy, StatCache.of(root))
    rel = _rel(root, path)
    if path.is_file():
        _, md5 = writer.file(rel, path, part)
        if not legacy and md5 != found:
            found = md5  # it changed while it was copied
    else:
        for sub, file in walk_files(path, pin.ref):
            writer.file(f"{rel}/{sub}", file, part)
    if found != pin.md5:
        raise FtctlError(
            f"{name}: {pin.ref} differs from what the lock pinned (md5 {pin.md5[:12]}..., found "
            f"{found[:12]}...)",
            hint="restore it (dvc checkout) and bundle again",
        )
    if record is not None and repo is not None:
        source = repo / record.source
        writer.file(_rel(root, source), source, "manifest, recipe, lock, keys")


def _hub(name: str, pin: HfPin, kind: str, writer: _Writer, part: str) -> None:
    from ftctl.replay.hubcache import snapshot_files

    repo = pin.ref.partition("@")[0]
    try:
        files = list(snapshot_files(repo, kind, pin.revision))
    except FtctlError as exc:
        raise FtctlError(f"{name}: {exc.problem.message}", hint=exc.problem.hint) from None
    for rel, source, promised in files:
        sha, _ = writer.file(rel, source, part)
        if promised is not None and sha != promised:
            raise FtctlError(
                f"{name}: {repo}@{pin.revision}: {rel.rsplit('/', 1)[-1]} in the Hugging Face "
                "cache differs from its recorded sha256",
                hint="remove it from the cache and download it again",
            )


def _original(
    root: Path,
    manifest: VerifiedManifest,
    writer: _Writer,
    artifacts: Path | None,
    notes: list[str],
) -> bool:
    """The recorded adapter, when a local copy of it verifies against the manifest."""
    from ftctl.apply.rundirs import run_dir

    directory = artifacts or run_dir(root, manifest.statement.fingerprint) / "adapter"
    try:
        verify_artifacts(manifest, directory)
    except ManifestError as exc:
        if artifacts is not None:
            raise
        notes.append(
            f"the recorded adapter is not included ({exc.reason}): replay can tell bitwise from "
            "diverged, not tensor-exact or within tolerance; pass --artifacts DIR"
        )
        return False
    for subject in manifest.statement.subject:
        sha, _ = writer.file(
            f"{ORIGINAL}/{subject.name}", directory / subject.name, "original adapter"
        )
        if sha != subject.digest["sha256"]:
            raise FtctlError(f"{directory / subject.name} changed while it was bundled")
    return True
