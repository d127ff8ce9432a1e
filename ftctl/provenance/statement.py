"""The manifest's statement: in-toto Statement v1 with an SLSA Provenance v1 predicate.

Training maps onto a build: the adapter files are the subjects, the base
model, datasets, pins and recipe repository are resolved dependencies, the
recipe is the external parameter. The models are strict (unknown keys
refused), so a verifier rejects any statement ftctl did not write, including
unexpected externalParameters (SLSA's advice). The JSON Schema is in
docs/provenance.schema.json (`tests/test_provenance.py` keeps it current).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ftctl.recipe.refs import COMMIT_RE

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://ftctl.dev/buildtypes/fine-tune/v1"

HEX64 = re.compile(r"^[0-9a-f]{64}$")
Timestamp = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def check_subject_name(name: str) -> str:
    """A relative POSIX path inside the artifact directory, or ValueError."""
    if not name or "\x00" in name or "\\" in name:
        raise ValueError(f"subject name {name!r} is empty or holds NUL or a backslash")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ValueError(f"subject name {name!r} is absolute")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise ValueError(f"subject name {name!r} has an empty, '.' or '..' segment")
    return name


class Subject(_Strict):
    name: str
    digest: dict[str, str]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_subject_name(value)

    @field_validator("digest")
    @classmethod
    def _sha256_only(cls, value: dict[str, str]) -> dict[str, str]:
        if set(value) != {"sha256"} or not HEX64.match(value["sha256"]):
            raise ValueError("a subject digest must be exactly {sha256: <64 hex>}")
        return value


class ResourceDescriptor(_Strict):
    name: str | None = None
    uri: str | None = None
    digest: dict[str, str] | None = None
    annotations: dict[str, Any] | None = None

    @field_validator("digest")
    @classmethod
    def _commits_are_full(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and "gitCommit" in value and not COMMIT_RE.match(value["gitCommit"]):
            raise ValueError(f"gitCommit {value['gitCommit']!r} is not a full 40-hex commit")
        return value


class DigestRef(_Strict):
    path: str
    digest: dict[str, str]


class ExternalParameters(_Strict):
    """What the user asked for: the recipe (by path and bytes) and what it names."""

    name: str
    recipe: DigestRef
    base_model: str
    datasets: list[str]
    seed: str  # big integers and seeds as strings
    publish: str | None = None


class InternalParameters(_Strict):
    fingerprint: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
    config: dict[str, Any]  # the training config the fingerprint hashed (docs/fingerprint.md)
    lock: DigestRef
    determinism: dict[str, Any]
    platform: dict[str, Any]
    committed: bool  # the recipe and lock were committed at the recorded git commit


class BuildDefinition(_Strict):
    buildType: Literal["https://ftctl.dev/buildtypes/fine-tune/v1"]
    externalParameters: ExternalParameters
    internalParameters: InternalParameters
    resolvedDependencies: list[ResourceDescriptor]

    @field_validator("resolvedDependencies")
    @classmethod
    def _hub_models_at_commits(cls, value: list[ResourceDescriptor]) -> list[ResourceDescriptor]:
        for dep in value:
            if (dep.uri or "").startswith("pkg:huggingface/") and not (dep.digest or {}).get(
                "gitCommit"
            ):
                raise ValueError(f"{dep.name}: a Hub dependency needs a full gitCommit digest")
        return value


class Builder(_Strict):
    id: str
    version: dict[str, str]


class RunMetadata(_Strict):
    invocationId: str
    startedOn: Timestamp
    finishedOn: Timestamp


class RunDetails(_Strict):
    builder: Builder
    metadata: RunMetadata
    byproducts: list[ResourceDescriptor] = Field(default_factory=list)


class Provenance(_Strict):
    buildDefinition: BuildDefinition
    runDetails: RunDetails


class Statement(_Strict):
    type_: Literal["https://in-toto.io/Statement/v1"] = Field(alias="_type")
    subject: list[Subject] = Field(min_length=1)
    predicateType: Literal["https://slsa.dev/provenance/v1"]
    predicate: Provenance

    @field_validator("subject")
    @classmethod
    def _unique(cls, value: list[Subject]) -> list[Subject]:
        names = [s.name for s in value]
        if len(names) != len(set(names)):
            raise ValueError("subject names repeat")
        return value

    @property
    def name(self) -> str:
        return self.predicate.buildDefinition.externalParameters.name

    @property
    def fingerprint(self) -> str:
        return self.predicate.buildDefinition.internalParameters.fingerprint

    @property
    def finished_on(self) -> str:
        return self.predicate.runDetails.metadata.finishedOn

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
