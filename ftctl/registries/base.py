"""What apply asks of a registry: find an artifact by fingerprint, fetch it, publish one.

A publish target is ``file://PATH/<name>`` or ``hf://ORG/REPO`` (workspace.publish_target).
An artifact is a directory of adapter files plus ``.ftctl/provenance.intoto.json``, the
signed manifest of the run that made it (before its publication was recorded: see
``docs/registries.md``). Registries never hold secrets and never delete anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

PROVENANCE_FILE = ".ftctl/provenance.intoto.json"  # inside an artifact; not a manifest subject


@dataclass(frozen=True)
class Found:
    """An artifact a registry holds for a fingerprint."""

    uri: str  # file:///abs/registry/NAME/FP or hf://ORG/REPO@COMMIT
    name: str  # the recipe name it was published under
    commit: str | None = None  # the Hub commit the tag points at; None for file://


@dataclass(frozen=True)
class Published:
    """Where publish put an artifact: recorded in the manifest's ``published`` byproduct."""

    uri: str
    commit: str | None = None

    def record(self) -> dict[str, object]:
        """The manifest byproduct: ``{"uri": ..., "digest": {"gitCommit": ...}}`` (digest only on the Hub)."""
        entry: dict[str, object] = {"uri": self.uri}
        if self.commit is not None:
            entry["digest"] = {"gitCommit": self.commit}
        return entry


class Registry(Protocol):
    """One publish target. Every method raises ``FtctlError`` (one line) on failure."""

    target: str  # as written: file://registry/NAME or hf://ORG/REPO

    def find(self, fingerprint: str) -> Found | None:
        """The artifact recorded for ``fingerprint`` (any recipe name: the fingerprint index or tag)."""

    def fetch(self, found: Found, dest: Path) -> None:
        """Copy the artifact's files (adapter files and PROVENANCE_FILE) into ``dest`` (absent; made here)."""

    def fetch_digests(self, found: Found, dest: Path) -> dict[str, str]:
        """:meth:`fetch`, returning every fetched file's sha256 hex by relative path (computed
        while copying where the registry can, so a large artifact is read once)."""

    def publish(
        self, name: str, fingerprint: str, files: Path, provenance: bytes, card: str | None
    ) -> Published:
        """Publish every file under ``files`` (the adapter directory) with ``provenance`` at
        PROVENANCE_FILE and ``card`` as README.md when given, atomically: all or nothing.
        Publishing the same fingerprint twice is a no-op returning the first publication."""
