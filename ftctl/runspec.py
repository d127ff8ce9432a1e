"""What the controller and the worker hand each other, as JSON.

The run spec goes in: which recipe, which lock, where to write. The trained
record comes out, in result.json: what the worker verified before it trained,
so that attest signs only what the run itself vouches for.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RunSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    recipe_path: str  # absolute path of the recipe file
    name: str
    workspace: str  # absolute path of the workspace root (relative inputs resolve against it)
    output_dir: str  # the run directory to write (docs/run-dir.md)
    lock: str | None = (
        None  # absolute path of the lock apply planned with: revisions and digests to hold to
    )
    base_model_dir: str | None = (
        None  # for base_model: recipe:<name>, the upstream's adapter or model directory
    )
    # Set by apply, never by a recipe, so none of them changes what is trained (docs/apply.md):
    resume_from: str | None = None  # a complete checkpoint of an interrupted run to resume
    checkpoint_seconds: float | None = None  # save one this often if the recipe saves none
    progress: str | None = None  # a JSON-lines file to append one event per logged step to


class TrainedRecord(BaseModel):
    """``trained`` in result.json: what the worker verified, then trained."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fingerprint: str | None = Field(
        description="the lock's fingerprint; null when trained without a fresh lock (unlocked)"
    )
    config_digest: str = Field(description="sha256 of the training config the worker trained")
    inputs: dict[str, Any] | None = Field(
        description="the lock's identity of every input, each verified before training"
    )
