"""The run spec: what `ftctl train` (and apply) hand the worker, as JSON."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RunSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    recipe_path: str  # absolute path of the recipe file
    name: str
    workspace: str  # absolute path of the workspace root (relative inputs resolve against it)
    output_dir: str  # the run directory to write (docs/run-dir.md)
    fingerprint: str | None = None  # the lock's, when apply runs it; recorded in result.json
    lock: str | None = (
        None  # absolute path of the lock apply planned with: revisions and digests to hold to
    )
    base_model_dir: str | None = (
        None  # for base_model: recipe:<name>, the upstream's adapter or model directory
    )
