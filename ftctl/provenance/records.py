"""Recorded state: every recipe's verified manifests; the newest by finishedOn is current.

A manifest that fails verification is reported with its reason and never used
as state, so a tampered record can at worst cause a retrain, never hide one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ftctl.provenance.manifest import SUFFIX, ManifestError, VerifiedManifest, verify_file


@dataclass
class RecipeState:
    name: str
    manifests: list[VerifiedManifest] = field(default_factory=list)  # oldest first
    rejected: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def current(self) -> VerifiedManifest | None:
        return self.manifests[-1] if self.manifests else None


def read_state(root: Path, trusted: dict[str, Ed25519PublicKey]) -> dict[str, RecipeState]:
    states: dict[str, RecipeState] = {}
    base = root / "manifests"
    for path in sorted(base.glob(f"*/*{SUFFIX}")):
        name = path.parent.name
        state = states.setdefault(name, RecipeState(name))
        try:
            manifest = verify_file(path, trusted)
        except ManifestError as exc:
            state.rejected.append((path, exc.problem.message))
            continue
        if manifest.statement.name != name:
            state.rejected.append(
                (
                    path,
                    f"records recipe {manifest.statement.name}, but lies under manifests/{name}/",
                )
            )
            continue
        state.manifests.append(manifest)
    for state in states.values():
        state.manifests.sort(key=lambda m: (m.statement.finished_on, m.path.name))
    return states
