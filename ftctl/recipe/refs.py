"""References a recipe makes to things outside it: base models and datasets.

``base_model`` takes three forms, told apart by syntax alone so that a recipe
means the same thing on every machine:

- ``recipe:<name>``: the output of another recipe in the same workspace;
- a local path, written starting with ``./``, ``../``, ``/`` or ``~/``;
- otherwise a Hugging Face Hub id, ``name`` or ``org/name``, with an optional
  ``@revision`` (branch, tag or commit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ftctl.errors import FtctlError

RECIPE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
HF_ID_RE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
REVISION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")
COMMIT_PATTERN = (
    r"^[0-9a-f]{40}$"  # a full git commit id, lowercase (Hub revisions, recipe repositories)
)
COMMIT_RE = re.compile(COMMIT_PATTERN)
LOCAL_PREFIXES = ("./", "../", "/", "~/")
RECIPE_PREFIX = "recipe:"

RefKind = Literal["hf", "local", "recipe"]


class RefError(FtctlError):
    """A reference that cannot be parsed."""


@dataclass(frozen=True)
class ModelRef:
    """A parsed ``base_model`` value."""

    kind: RefKind
    value: str  # the HF repo id, the local path or the recipe name
    revision: str | None = None

    def __str__(self) -> str:
        if self.kind == "recipe":
            return f"{RECIPE_PREFIX}{self.value}"
        if self.revision:
            return f"{self.value}@{self.revision}"
        return self.value


def is_local_path(text: str) -> bool:
    return text.startswith(LOCAL_PREFIXES) or text in (".", "..")


def check_hf_id(repo_id: str) -> str | None:
    """Why ``repo_id`` is not a valid Hub repository id, or None if it is."""
    if not HF_ID_RE.match(repo_id):
        return "is not a Hugging Face id ('name' or 'org/name': letters, digits, '.', '_', '-')"
    if "--" in repo_id or ".." in repo_id:
        return "is not a Hugging Face id ('--' and '..' are not allowed)"
    if repo_id.endswith((".", "-")):
        return "is not a Hugging Face id (it may not end with '.' or '-')"
    return None


def check_revision(revision: str) -> str | None:
    """Why ``revision`` cannot name a git branch, tag or commit, or None."""
    if not REVISION_RE.match(revision) or ".." in revision or revision.endswith((".lock", "/")):
        return f"revision '{revision}' is not a valid branch, tag or commit"
    return None


def split_revision(text: str) -> tuple[str, str | None]:
    """``org/name@rev`` -> (``org/name``, ``rev``); no ``@`` -> (text, None)."""
    if "@" not in text:
        return text, None
    name, _, revision = text.partition("@")
    return name, revision


def parse_model_ref(text: str) -> ModelRef:
    """Parse a ``base_model`` value; a malformed one raises :class:`RefError` with the reason."""
    parsed = _parse(text)
    if isinstance(parsed, str):
        raise RefError(f"base_model {text!r}: {parsed}")
    return parsed


def model_ref_problem(text: str) -> str | None:
    """Why ``text`` is not a valid ``base_model`` value, or None (for validators)."""
    parsed = _parse(text)
    return parsed if isinstance(parsed, str) else None


def upstream_of(base_model: str) -> str | None:
    """The recipe a ``base_model: recipe:<name>`` builds on, or None."""
    ref = parse_model_ref(base_model)
    return ref.value if ref.kind == "recipe" else None


def _parse(text: str) -> ModelRef | str:
    """The parsed reference, or why it is malformed."""
    text = text.strip()
    if not text:
        return "must not be empty"
    if text.startswith(RECIPE_PREFIX):
        name = text[len(RECIPE_PREFIX) :]
        if not RECIPE_NAME_RE.match(name):
            return (
                f"'{name}' is not a recipe name (lowercase letters, digits, '.', '_', '-'; "
                "at most 64)"
            )
        return ModelRef("recipe", name)
    if is_local_path(text):
        return ModelRef("local", text)
    repo_id, revision = split_revision(text)
    reason = check_hf_id(repo_id)
    if reason:
        if "/" in text and not text.startswith("http"):
            return f"'{repo_id}' {reason}; write a local directory as './{text}'"
        return f"'{repo_id}' {reason}"
    if revision is not None:
        if not revision:
            return "nothing after '@': give a branch, tag or commit, or drop the '@'"
        reason = check_revision(revision)
        if reason:
            return reason
    return ModelRef("hf", repo_id, revision)
