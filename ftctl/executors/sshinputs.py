"""What the ssh executor copies to the host for one run, file by file, each with its sha256.

The host gets the workspace as far as the worker reads it, laid out under the run's ``ws/``
at the same relative paths: the recipe, its lock, the pins file, and every local or
DVC-tracked input the lock pins (a Hub model or dataset is not copied: the worker fetches it
on the host at the locked commit). An input named by an absolute path is not copied either:
the host must hold it at that path (a shared or pre-staged disk), and the worker checks it
against the lock as it checks everything. A relative path leading out of the workspace has no
place on the host and is refused. The upstream's artifact of ``base_model: recipe:<name>``
goes to ``upstream/``, and a checkpoint apply resumes from to ``out/checkpoints/``.

Digests come from the workspace's stat cache (``ftctl lock`` filled it), and a local input's
tree is checked against its pin before anything is copied.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ftctl.cache.stat import StatCache
from ftctl.canonical import sha256_of
from ftctl.errors import FtctlError
from ftctl.hashing import file_digest, walk_files
from ftctl.lock.lockfile import DvcPin, LocalPin, Lockfile, load_lock
from ftctl.runspec import RunSpec

WS = "ws"  # the workspace the worker sees, in the host's run directory
UPSTREAM = "upstream"
CHECKPOINTS = "out/checkpoints"


@dataclass(frozen=True)
class Blob:
    sha: str
    size: int
    source: Path  # the local file


@dataclass
class Payload:
    """Every file the host's run directory gets, by (path in it, sha256), and where each comes from."""

    lock: Lockfile
    recipe_rel: str
    lock_rel: str
    files: list[tuple[str, str]] = field(default_factory=list)
    resume_files: list[tuple[str, str]] = field(default_factory=list)  # used if the host has none
    blobs: dict[str, Blob] = field(default_factory=dict)
    on_host: list[str] = field(default_factory=list)  # absolute inputs the host must hold
    upstream: bool = False

    @property
    def size(self) -> int:
        return sum(blob.size for blob in self.blobs.values())


def gather(spec: RunSpec, executor: str) -> Payload:
    """Everything ``spec`` needs on the host (raises one line for an input it cannot copy)."""
    root = Path(spec.workspace)
    cache = StatCache.of(root)
    if spec.lock is None:
        raise FtctlError(f"executor {executor}: the ssh executor runs locked recipes only (apply)")
    recipe_rel = _inside(root, Path(spec.recipe_path), executor, "the recipe")
    lock_rel = _inside(root, Path(spec.lock), executor, "the lock")
    lock = load_lock(Path(spec.lock), lock_rel)
    payload = Payload(lock, recipe_rel, lock_rel)
    _add_file(payload, f"{WS}/{recipe_rel}", Path(spec.recipe_path), cache)
    _add_file(payload, f"{WS}/{lock_rel}", Path(spec.lock), cache)
    pins = _relative(lock.pins.path)
    if pins is not None and (root / pins).is_file():
        _add_file(payload, f"{WS}/{pins}", root / pins, cache)
    pinned: list[tuple[str, object]] = [("base_model", lock.base_model)]
    pinned.append(("lora_model_dir", lock.lora_model_dir))
    pinned += [(f"datasets[{i}]", pin) for i, pin in enumerate(lock.datasets)]
    for name, pin in pinned:
        if isinstance(pin, LocalPin | DvcPin):  # a Hub pin is fetched there, a recipe's is upstream
            _add_input(payload, root, name, pin, cache, executor)
    _add_deepspeed(payload, root, Path(spec.recipe_path), cache, executor)
    if spec.base_model_dir is not None:
        _add_tree(payload, UPSTREAM, Path(spec.base_model_dir), cache, "base_model")
        payload.upstream = True
    if spec.resume_from is not None:
        checkpoint = Path(spec.resume_from)
        before = len(payload.files)
        _add_tree(payload, f"{CHECKPOINTS}/{checkpoint.name}", checkpoint, cache, "checkpoint")
        payload.resume_files = payload.files[before:]
        del payload.files[before:]
    cache.save()
    return payload


def _add_input(
    payload: Payload,
    root: Path,
    name: str,
    pin: LocalPin | DvcPin,
    cache: StatCache,
    executor: str,
) -> None:
    if Path(os.path.expanduser(pin.ref)).is_absolute():
        payload.on_host.append(os.path.expanduser(pin.ref))
        return
    rel = _relative(pin.ref)
    if rel is None:
        raise FtctlError(
            f"executor {executor}: {name}: {pin.ref} lies outside the workspace, so it has no "
            "place on the host",
            hint="move it into the workspace, or name it by an absolute path the host also has",
        )
    path = root / rel
    if not path.exists():
        hint = (
            "run `dvc pull`" if isinstance(pin, DvcPin) else f"it is pinned by {payload.lock_rel}"
        )
        raise FtctlError(f"executor {executor}: {name}: {pin.ref} is missing", hint=hint)
    entries = _add_tree(payload, f"{WS}/{rel}", path, cache, name, dvc=isinstance(pin, DvcPin))
    if isinstance(pin, LocalPin):
        found = entries[0][1] if path.is_file() else sha256_of(entries)
        found = found if found.startswith("sha256:") else f"sha256:{found}"
        if found != pin.digest:
            raise FtctlError(
                f"executor {executor}: {name}: {pin.ref} differs from what {payload.lock_rel} pinned",
                hint="restore it, or run `ftctl lock` and plan again",
            )


def _add_deepspeed(
    payload: Payload, root: Path, recipe_path: Path, cache: StatCache, executor: str
) -> None:
    from ftctl.recipe.load import load_recipe

    deepspeed = load_recipe(recipe_path).recipe.deepspeed
    if deepspeed is None:
        return
    if Path(os.path.expanduser(deepspeed)).is_absolute():
        payload.on_host.append(os.path.expanduser(deepspeed))
        return
    rel = _relative(deepspeed)
    if rel is not None and (root / rel).is_file():
        _add_file(payload, f"{WS}/{rel}", root / rel, cache)
    elif rel is None:
        raise FtctlError(
            f"executor {executor}: deepspeed: {deepspeed} lies outside the workspace",
            hint="move it into the workspace",
        )


def _add_tree(
    payload: Payload, dest: str, path: Path, cache: StatCache, shown: str, *, dvc: bool = False
) -> list[tuple[str, str]]:
    """Add a file, or every file of a directory as its digest walks it; (rel, sha256) sorted."""
    if path.is_file():
        sha = _add_file(payload, dest, path, cache)
        return [("", sha)]
    if dvc:  # DVC hashes every file, hidden ones included
        found = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*") if p.is_file())
    else:
        found = list(walk_files(path, shown))
    entries = []
    for rel, file in found:
        entries.append((rel, _add_file(payload, f"{dest}/{rel}", file, cache)))
    return entries


def _add_file(payload: Payload, dest: str, path: Path, cache: StatCache) -> str:
    sha = file_digest(path, "sha256", cache)
    payload.files.append((dest, sha))
    if sha not in payload.blobs:
        payload.blobs[sha] = Blob(sha, path.stat().st_size, path)
    return sha


def _relative(text: str) -> str | None:
    """``text`` as a normal path inside the workspace (``./a/../b`` -> ``b``), or None if it leaves."""
    normal = os.path.normpath(text)
    if os.path.isabs(normal) or normal == ".." or normal.startswith("../"):
        return None
    return Path(normal).as_posix()


def _inside(root: Path, path: Path, executor: str, what: str) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise FtctlError(
            f"executor {executor}: {what} {path} lies outside the workspace {root}"
        ) from None
