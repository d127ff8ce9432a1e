"""Recorded state: every recipe's manifests, verified; the newest by finishedOn is current.

The one reader of ``manifests/<name>/*.intoto.json`` that plan, log and audit
share. A manifest that fails verification, or that lies under another
recipe's folder than the one it records, is rejected with its reason (worded
the same everywhere) and never used as state, so a tampered record can at
worst cause a retrain, never hide one. Plan passes its memo, which recalls
manifests that verified before while their bytes' signature is unchanged.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from ftctl.yamlio import display_path

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from ftctl.provenance.manifest import VerifiedManifest

MANIFEST_SUFFIX = ".intoto.json"
RETIRED_SUFFIX = ".retired.json"  # a signed retirement record (ftctl.provenance.retirement)
EXTERNAL_BUILDER = "https://ftctl.dev/builders/external"  # the builder of a run ftctl did not train
MANIFESTS_DIR = "manifests"

TrustedKeys = Callable[[], "dict[str, Ed25519PublicKey]"]


# NamedTuples, not frozen dataclasses: plan imports this module at every start, and a frozen
# dataclass costs ~10x as much to define.
class Summary(NamedTuple):
    """What plan needs of a manifest that verified (all a memo keeps)."""

    name: str
    fingerprint: str
    finished_on: str
    publish: str | None
    digest: str  # sha256 of the envelope's bytes
    external: bool  # attested with --external: its inputs were not verified by ftctl


class Record(NamedTuple):
    """A manifest that verified."""

    path: Path
    shown: str
    summary: Summary
    manifest: VerifiedManifest | None = None  # None when recalled from a memo

    @property
    def fingerprint(self) -> str:
        return self.summary.fingerprint

    @property
    def finished_on(self) -> str:
        return self.summary.finished_on


class Rejected(NamedTuple):
    """A manifest that must not be trusted, and why."""

    path: Path
    shown: str
    reason: str


@dataclass
class RecipeRecords:
    name: str
    records: list[Record] = field(default_factory=list)  # oldest first
    rejected: list[Rejected] = field(default_factory=list)

    retired_on: str | None = None  # the newest trusted retirement's time

    @property
    def current(self) -> Record | None:
        """The newest record, unless a retirement came after it (the recipe was deleted)."""
        newest = self.records[-1] if self.records else None
        retired = self.retired_on
        if newest is not None and retired is not None and retired >= newest.finished_on:
            return None
        return newest


class Memo(Protocol):
    """Recalls what verifying a manifest gave, while the file is unchanged."""

    def recall_run(self, path: Path) -> Summary | None: ...

    def remember_run(self, path: Path, summary: Summary) -> None: ...


def manifest_files(root: Path) -> list[tuple[str, Path]]:
    """(recipe folder, path) of every ``manifests/<name>/*.intoto.json``, sorted (scandir: 1,000s of them)."""
    base = root / MANIFESTS_DIR
    found: list[tuple[str, Path]] = []
    try:
        with os.scandir(base) as entries:
            folders = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []
    for name in folders:
        folder = base / name
        try:
            with os.scandir(folder) as entries:
                files = sorted(
                    e.name
                    for e in entries
                    if e.name.endswith((MANIFEST_SUFFIX, RETIRED_SUFFIX))
                    and not e.name.startswith(".")
                    and not e.is_dir()
                )
        except OSError:
            continue
        found.extend((name, folder / file) for file in files)
    return found


def read_records(
    root: Path, trusted: TrustedKeys, *, memo: Memo | None = None
) -> dict[str, RecipeRecords]:
    """Every recipe folder's records, oldest first by (finishedOn, file name); ``trusted`` loads keys on demand.

    Without a memo every record carries its verified manifest; with one, recalled
    records carry only their summary.
    """
    states: dict[str, RecipeRecords] = {}
    keys: dict[str, Ed25519PublicKey] | None = None
    shown_base = display_path(root / MANIFESTS_DIR)
    for name, path in manifest_files(root):
        state = states.setdefault(name, RecipeRecords(name))
        if path.name.endswith(RETIRED_SUFFIX):
            if keys is None:
                keys = trusted()
            _note_retirement(state, path, keys)
            continue
        shown = os.path.normpath(os.path.join(shown_base, name, path.name))
        summary = memo.recall_run(path) if memo is not None else None
        manifest = None
        if summary is None:
            if keys is None:
                keys = trusted()
            outcome = _verify(path, keys)
            if isinstance(outcome, str):
                state.rejected.append(Rejected(path, shown, outcome))
                continue
            manifest, summary = outcome
            if memo is not None:
                memo.remember_run(path, summary)
        if summary.name != name:
            reason = f"records recipe {summary.name}, but lies under {MANIFESTS_DIR}/{name}/"
            state.rejected.append(Rejected(path, shown, reason))
            continue
        state.records.append(Record(path, shown, summary, manifest))
    for state in states.values():
        state.records.sort(key=lambda r: (r.finished_on, r.path.name))
    return states


def _verify(
    path: Path, trusted: dict[str, Ed25519PublicKey]
) -> tuple[VerifiedManifest, Summary] | str:
    """The verified manifest and its summary, or why it is rejected."""
    from ftctl.files import SMALL_FILE, UnreadableInput, confined, read_regular
    from ftctl.provenance.manifest import ManifestError, verify_bytes

    if _through_symlink(path) and not confined(path, path.parent.parent.parent):
        return "is a symlink leaving the workspace"  # manifests/<name>/<file> resolves elsewhere
    try:
        data = read_regular(path, SMALL_FILE, str(path), what="manifest")
    except UnreadableInput as exc:
        return exc.problem.message
    try:
        manifest = verify_bytes(data, trusted, path)
    except ManifestError as exc:
        return rejection_reason(exc)
    statement = manifest.statement
    summary = Summary(
        statement.name,
        statement.fingerprint,
        statement.finished_on,
        statement.predicate.buildDefinition.externalParameters.publish,
        hashlib.sha256(data).hexdigest(),
        statement.predicate.runDetails.builder.id == EXTERNAL_BUILDER,
    )
    return manifest, summary


def _through_symlink(path: Path) -> bool:
    """Whether the file, its recipe folder or manifests/ is a symlink (resolving every path is slow)."""
    file = os.fspath(path)  # strings, not Path.parent: read_records asks it of every manifest
    folder = os.path.dirname(file)
    return os.path.islink(file) or os.path.islink(folder) or os.path.islink(os.path.dirname(folder))


def rejection_reason(exc: Exception) -> str:
    """Why a manifest was rejected, without the path the error names."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str):
        return reason
    problem = getattr(exc, "problem", None)
    message = str(getattr(problem, "message", exc))
    return message.split(": ", 1)[-1]


def _note_retirement(state: RecipeRecords, path: Path, keys: dict[str, Ed25519PublicKey]) -> None:
    """Keep the newest trusted retirement's time; an untrusted or damaged one retires nothing."""
    from ftctl.provenance.retirement import verified_retirement

    retired = verified_retirement(path, keys, state.name)
    if retired is not None and (state.retired_on is None or retired > state.retired_on):
        state.retired_on = retired
