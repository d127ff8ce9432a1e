"""A memo of what plan computed, so an unchanged workspace is planned from stat calls.

``.ftctl/plan-memo.json`` holds, for every recipe whose lock was fresh, what
plan needs of it (fingerprint, publish target, upstream, executor) and the
signature of every path the lock computation read (``LockOutcome.deps``):
(device, inode, size, mtime_ns, ctime_ns) for a file, a digest of the listing for a directory,
null for an absent path. An entry is used only while every one of them is
unchanged, so using it gives the answer recomputing would. Manifests that
verified are memoised by their signature under the digest of the trusted
keys' bytes; a changed manifest (or key set) is read and verified again.

Like the stat cache it is an optimisation only: a miss recomputes, an
unreadable or foreign memo is discarded, and a path modified less than
``RACY_NS`` before plan started is not recorded (as git does with its index:
a second change within the filesystem's timestamp granularity could keep the
same mtime).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from ftctl import __version__
from ftctl.cache import base, paths
from ftctl.canonical import sha256_of
from ftctl.files import (
    SMALL_FILE,
    UnreadableInput,
    UnsafeTarget,
    read_regular_stat,
    read_small,
    write_atomic,
)
from ftctl.hashing import IGNORED_DIRS
from ftctl.provenance.records import Summary

MEMO_VERSION = 2
RACY_NS = 2_000_000_000

T = TypeVar("T")
Signature = Any  # [dev, ino, size, mtime_ns, ctime_ns] | "tree:<sha256>" | None (absent)


class RecipeMemo(NamedTuple):  # not a frozen dataclass: ~10x cheaper to define at each start
    fingerprint: str
    publish: str
    upstream: str | None
    upstream_fingerprint: str | None  # the upstream's, as this recipe's lock pinned it
    executor: str
    accelerator: str | None  # declared for the estimate
    deps: dict[str, Signature]  # path (relative to the root where inside it) -> signature
    dvc_locks: bool  # the lock consulted the repository's dvc.lock files
    lock_sha256: str  # the lock file's bytes, whose fingerprint must be the entry's


class PlanMemo:
    def __init__(self, path: Path | None, root: Path, env: dict[str, Any], keys: str) -> None:
        self.path = path
        self.root = root
        self._root_text = os.fspath(root)
        self.started = time.time_ns()
        self._env = env
        self._keys = keys
        self._recipes: dict[str, dict[str, Any]] = {}
        self._manifests: dict[str, dict[str, Any]] = {}
        self._dvc_locks: dict[str, Signature] | None = None
        self._dvc_locks_valid: bool | None = None
        self._new_recipes: dict[str, dict[str, Any]] = {}
        self._new_manifests: dict[str, dict[str, Any]] = {}
        self._reasons: dict[str, list[Any]] = {}
        self._new_reasons: dict[str, list[Any]] = {}
        self._run_sigs: dict[
            Path, tuple[Signature, bool]
        ] = {}  # taken before the manifest was read
        self._seen: dict[str, Signature] = {}  # recipes share models, data and pins: stat each once
        self._dirty = False
        body = base.load(path, MEMO_VERSION)
        if body.get("env") == env:
            self._recipes = _dict(body.get("recipes"))
            locks = body.get("dvc_locks")
            self._dvc_locks = locks if isinstance(locks, dict) else None
        if body.get("keys") == keys:
            self._manifests = _dict(body.get("manifests"))
            if body.get("env") == env:
                reasons = body.get("reasons")
                self._reasons = (
                    {k: v for k, v in reasons.items() if isinstance(v, list)}
                    if isinstance(reasons, dict)
                    else {}
                )

    @classmethod
    def of(cls, root: Path, env: dict[str, Any], keys: str) -> PlanMemo:
        """The workspace's plan memo."""
        return cls(paths.plan_memo(root), root, env, keys)

    @classmethod
    def disabled(cls, root: Path) -> PlanMemo:
        return cls(None, root, {}, "")

    # Recipes

    def recipe(
        self, name: str, dvc_repo: Path | None, recipe_file: Path, lock_file: str | Path
    ) -> RecipeMemo | None:
        """The memo of ``name`` while every path it depends on is unchanged, else None.

        Stat data alone does not vouch for an entry: the lock's bytes must have the digest it
        records and record its fingerprint; and the memo file carries a MAC under a key kept
        outside the workspace, so a memo written by someone else can cost time, never truth.
        """
        raw = self._recipes.get(name)
        memo = _typed(RecipeMemo, raw, _RECIPE_TYPES)
        if memo is None:
            return None
        lock_stat = _content_matches(memo, lock_file)
        if lock_stat is None:
            return None
        # The lock is one of the paths: its signature is that of the file just read, not a second stat.
        self._seen[self._shown(lock_file)] = _identity(lock_stat)
        for shown, recorded in memo.deps.items():
            if shown not in self._seen:
                self._seen[shown] = signature(os.path.join(self.root, shown), self.started)[0]
            if self._seen[shown] != recorded:
                return None
        if memo.dvc_locks and not self._dvc_locks_unchanged(dvc_repo):
            return None
        self._new_recipes[name] = raw  # type: ignore[assignment]
        return memo

    def put_recipe(
        self,
        name: str,
        summary: dict[str, Any],
        deps: list[Path],
        dvc_repo: Path | None,
        files: tuple[Path, Path],
    ) -> None:
        """Record a fresh lock's result (``files``: the recipe and the lock), unless a path is too recent."""
        lock_digest = _sha256_of_file(files[1])
        if lock_digest is None:
            return
        memo_without_deps = {**summary, "lock_sha256": lock_digest}
        sigs: dict[str, Signature] = {}
        for path in deps:
            sig, stable = signature(path, self.started)
            if not stable:
                return
            sigs[self._shown(path)] = sig
        if memo_without_deps.get("dvc_locks") and not self._record_dvc_locks(dvc_repo):
            return
        entry = {**memo_without_deps, "deps": sigs}
        RecipeMemo(**entry)  # the same shape it will be read back in
        self._new_recipes[name] = entry
        self._dirty = True

    # Training configs, by the digest the lock records (``recipe.digest``), to explain a retrain
    # without loading the recipe. Content-addressed: a file whose content does not match is ignored.

    def config(self, digest: str) -> dict[str, Any] | None:
        if self.path is None:
            return None
        try:
            config = json.loads(read_small(self._config_path(digest)))
        except (OSError, ValueError, RecursionError, UnreadableInput):
            return None
        return config if isinstance(config, dict) and sha256_of(config) == digest else None

    def put_config(self, digest: str, config: dict[str, Any]) -> None:
        if self.path is None or self._config_path(digest).exists():
            return
        try:  # key order kept: plan lists changed fields in the recipe's order
            write_atomic(self._config_path(digest), json.dumps(config, separators=(",", ":")))
        except (OSError, UnsafeTarget):
            return

    def _config_path(self, digest: str) -> Path:
        return paths.configs_dir(self.root) / f"{digest.removeprefix('sha256:')}.json"

    # Manifests

    def recall_run(self, path: Path) -> Summary | None:
        """The summary of a manifest that verified, while its signature (device, inode, size, mtime, ctime) is unchanged."""
        sig, stable = signature(path, self.started)
        self._run_sigs[path] = (sig, stable)
        shown = self._shown(path)
        raw = self._manifests.get(shown)
        if not isinstance(raw, dict) or sig is None or raw.get("sig") != sig:
            return None
        run = _typed(Summary, {k: v for k, v in raw.items() if k != "sig"}, _RUN_TYPES)
        if run is not None:
            self._new_manifests[shown] = raw
        return run

    def remember_run(self, path: Path, summary: Summary) -> None:
        """Keep a verified manifest's summary, unless the file changed too recently to trust its signature."""
        sig, stable = (
            self._run_sigs.pop(path) if path in self._run_sigs else signature(path, self.started)
        )
        if stable and sig is not None:
            self._new_manifests[self._shown(path)] = {**summary._asdict(), "sig": sig}
            self._dirty = True

    # Why a recipe retrains: a pure function of the current manifest's bytes and the fresh lock's bytes
    # (the lock fixes the training config by its digest), so it is keyed by both.

    def reasons(
        self, manifest_digest: str, lock_digest: str
    ) -> list[tuple[str, str | None, Any, Any]] | None:
        key = f"{manifest_digest}:{lock_digest}"
        raw = self._reasons.get(key)
        if raw is None or not all(
            isinstance(r, list)
            and len(r) == 4
            and isinstance(r[0], str)
            and (r[1] is None or isinstance(r[1], str))
            for r in raw
        ):
            return None
        self._new_reasons[key] = raw
        return [(r[0], r[1], r[2], r[3]) for r in raw]

    def put_reasons(
        self,
        manifest_digest: str,
        lock_digest: str,
        reasons: list[tuple[str, str | None, Any, Any]],
    ) -> None:
        self._new_reasons[f"{manifest_digest}:{lock_digest}"] = [list(r) for r in reasons]
        self._dirty = True

    def save(self) -> None:
        """Keep what this plan used or computed (so the memo does not grow), atomically."""
        if self.path is None:
            return
        if (
            not self._dirty
            and self._new_recipes.keys() == self._recipes.keys()
            and self._new_manifests.keys() == self._manifests.keys()
            and self._new_reasons.keys() == self._reasons.keys()
        ):
            return
        body = {
            "env": self._env,
            "keys": self._keys,
            "dvc_locks": self._dvc_locks,
            "recipes": self._new_recipes,
            "manifests": self._new_manifests,
            "reasons": self._new_reasons,
        }
        if base.save(self.path, MEMO_VERSION, body):
            self._dirty = False

    # The dvc.lock files: one set for the whole workspace, checked at most once per plan.

    def _dvc_locks_unchanged(self, dvc_repo: Path | None) -> bool:
        if self._dvc_locks_valid is None:
            current = self._scan_dvc_locks(dvc_repo)
            self._dvc_locks_valid = current is not None and current[0] == self._dvc_locks
        return self._dvc_locks_valid

    def _record_dvc_locks(self, dvc_repo: Path | None) -> bool:
        current = self._scan_dvc_locks(dvc_repo)
        if current is None or not current[1]:
            return False
        if self._dvc_locks != current[0]:
            self._dvc_locks = current[0]
            self._new_recipes = {
                k: v for k, v in self._new_recipes.items() if not v.get("dvc_locks")
            }
        self._dvc_locks_valid = True
        return True

    def _scan_dvc_locks(self, dvc_repo: Path | None) -> tuple[dict[str, Signature], bool] | None:
        if dvc_repo is None:
            return None
        from ftctl._dvc import find_dvc_locks

        found: dict[str, Signature] = {}
        stable = True
        for lock in find_dvc_locks(dvc_repo):
            sig, ok = signature(lock, self.started)
            found[self._shown(lock)] = sig
            stable = stable and ok
        return found, stable

    def _shown(self, path: str | Path) -> str:
        # String work, not pathlib: plan asks this for thousands of paths.
        text = os.fspath(path)
        if not os.path.isabs(text):
            text = os.path.join(self._root_text, text)
        prefix = self._root_text.rstrip(os.sep) + os.sep
        return text[len(prefix) :].replace(os.sep, "/") if text.startswith(prefix) else text


_FINGERPRINT_LINE = b'fingerprint: "sha256:'  # then 64 lowercase hex digits and '"'
_HEX_DIGITS = b"0123456789abcdef"


def lock_fingerprints(data: bytes) -> list[bytes]:
    """The value of every line ``fingerprint: "sha256:<64 hex>"`` of a lock, in order.

    What ``re.findall(rb'^fingerprint: "(sha256:[0-9a-f]{64})"$', data, re.MULTILINE)``
    finds, at a third of its cost (plan asks it of every lock): that pattern, starting
    with ``^``, is tried at every byte.
    """
    return [
        line[14:85]  # sha256:<hex>
        for line in data.split(b"\n")
        if len(line) == 86
        and line.startswith(_FINGERPRINT_LINE)
        and line.endswith(b'"')
        and not line[21:85].translate(None, _HEX_DIGITS)
    ]


def _sha256_of_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(read_small(path)).hexdigest()
    except (OSError, UnreadableInput):
        return None


def _content_matches(memo: RecipeMemo, lock_file: str | Path) -> os.stat_result | None:
    """The lock's stat when its bytes are the ones the entry was made from and record the entry's fingerprint.

    What plan compares with the recorded runs (the fingerprint) is so read from the lock
    itself; the rest of the entry (publish target, upstream, executor) stands on the stat
    identity of the recipe (ctime included) and on the memo's MAC (cache/base.py).
    """
    try:
        lock_bytes, st = read_regular_stat(lock_file, SMALL_FILE, str(lock_file))
    except (OSError, UnreadableInput):
        return None
    if hashlib.sha256(lock_bytes).hexdigest() != memo.lock_sha256:
        return None
    if lock_fingerprints(lock_bytes) != [memo.fingerprint.encode("ascii", "replace")]:
        return None
    return st


def signature(path: str | Path, started: int) -> tuple[Signature, bool]:
    """(signature, stable): stable when nothing in it changed within RACY_NS of ``started``."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None, True
    if not stat.S_ISDIR(st.st_mode):
        return _identity(st), st.st_mtime_ns < started - RACY_NS
    return _tree_signature(path, started)


def _identity(st: os.stat_result) -> list[int]:
    """A file's signature. ctime too: an in-place edit that restores size and mtime still moves it (only the kernel sets it)."""
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _tree_signature(root: str | Path, started: int) -> tuple[str, bool]:
    digest = hashlib.sha256()
    newest = 0
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        for name in (".", *sorted(filenames), *dirnames):
            path = os.path.join(directory, name)
            try:
                st = os.stat(path)  # through symlinks: what the tree digest hashes
            except OSError:
                st = os.lstat(path)
            newest = max(newest, st.st_mtime_ns)
            rel = os.path.relpath(path, root)
            digest.update(
                f"{rel}\0{st.st_mode}\0{st.st_dev}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\0"
                f"{st.st_ctime_ns}\n".encode("utf-8", "surrogateescape")
            )
    return f"tree:{digest.hexdigest()}", newest < started - RACY_NS


def environment(root: Path, config_path: Path | None, dvc_repo: Path | None) -> dict[str, Any]:
    """What every recipe memo depends on: ftctl itself, ftctl.yaml and where the DVC repository is."""
    config = None
    if config_path is not None:
        try:
            config = hashlib.sha256(read_small(config_path)).hexdigest()
        except (OSError, UnreadableInput):
            config = None
    return {
        "version": MEMO_VERSION,
        "ftctl": __version__,
        "code": _code_signature(),
        "config": config,
        "dvc_repo": str(dvc_repo) if dvc_repo is not None else None,
    }


def _code_signature() -> str:
    """ftctl's own source files: a development checkout that changes them drops the memo."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for directory, dirnames, filenames in os.walk(package):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(".py"):
                st = os.stat(os.path.join(directory, name))
                digest.update(f"{directory}/{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


_OPT_STR = (str, type(None))
_RECIPE_TYPES: dict[str, Any] = {
    "fingerprint": str,
    "publish": str,
    "upstream": _OPT_STR,
    "upstream_fingerprint": _OPT_STR,
    "executor": str,
    "accelerator": _OPT_STR,
    "deps": dict,
    "dvc_locks": bool,
    "lock_sha256": str,
}
_RUN_TYPES: dict[str, Any] = {
    "name": str,
    "fingerprint": str,
    "finished_on": str,
    "publish": _OPT_STR,
    "digest": str,
    "external": bool,
}


def _typed(kind: type[T], raw: Any, types: dict[str, Any]) -> T | None:
    """``kind(**raw)`` when ``raw`` has exactly the fields of the right types (the memo is never trusted)."""
    if not isinstance(raw, dict) or raw.keys() != types.keys():
        return None
    for key, expected in types.items():  # a loop, not all(...): plan checks 2,000 entries
        if not isinstance(raw[key], expected):
            return None
    return kind(**raw)


def _dict(value: Any) -> dict[str, dict[str, Any]]:
    return (
        {k: v for k, v in value.items() if isinstance(v, dict)} if isinstance(value, dict) else {}
    )
