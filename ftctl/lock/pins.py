"""Dependency pins: a pip requirements file, normalized to a set whose digest enters the fingerprint.

Each line is parsed with `packaging` (pip's own grammar): names are
canonicalized (``Torch`` = ``torch``, ``flash_attn`` = ``flash-attn``),
specifiers and ``--hash`` options sorted, comments and blank lines dropped,
``--index-url``-style options ignored (they choose where from, not what). So
reordering or reformatting the file never changes the digest; any change of
what gets installed does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ftctl.canonical import sha256_of
from ftctl.errors import ConfigError, Location, excerpt
from ftctl.files import UnreadableInput, read_regular

# Options that say where packages come from, not which: no effect on the pin set.
_SOURCE_OPTIONS = (
    "--index-url",
    "-i",
    "--extra-index-url",
    "--find-links",
    "-f",
    "--trusted-host",
    "--no-index",
    "--prefer-binary",
    "--pre",
)
_HASH_RE = re.compile(r"^[a-z0-9]+:[0-9a-fA-F]+$")  # pip's --hash=ALGORITHM:HEXDIGEST
MAX_PINS_BYTES = 4 * 1024 * 1024  # a pip-compile output with hashes for hundreds of packages
# Training packages whose installed versions `lock --pins-from-env` records.
TRAINING_PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "accelerate",
    "datasets",
    "safetensors",
    "tokenizers",
    "bitsandbytes",
    "flash-attn",
    "deepspeed",
    "ftctl",
)


@dataclass(frozen=True)
class Pins:
    """A normalized pin set: package name -> requirement text (specifier, extras, markers, hashes)."""

    path: str
    packages: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha256_of(self.packages)


def read_pins(path: Path, shown: str) -> Pins:
    """Parse a requirements file; a missing file is an empty pin set.

    Nothing of the file's content is echoed in an error beyond a short excerpt of the
    offending token: a pins file is input, and may hold what it should not.
    """
    if not path.exists() and not path.is_symlink():
        return Pins(shown)
    try:
        raw = read_regular(
            path, MAX_PINS_BYTES, shown, what="pins file", hint="pins are a requirements file"
        )
        text = raw.decode("utf-8")
    except UnreadableInput as exc:
        raise ConfigError(
            exc.problem.message, location=exc.problem.location, hint=exc.problem.hint
        ) from None
    except UnicodeDecodeError:
        raise ConfigError("pins file is not UTF-8 text", location=Location(shown)) from None
    return parse_pins(text, shown)


def parse_pins(text: str, shown: str) -> Pins:
    packages: dict[str, str] = {}
    for lineno, content in _logical_lines(text):
        if not content or content.startswith(_SOURCE_OPTIONS):
            continue
        where = Location(shown, lineno)
        if not content.replace("\t", " ").isprintable():  # an escape sequence is no requirement
            raise ConfigError(
                f"{excerpt(content)} holds a control character",
                location=where,
                hint="write one requirement per line, e.g. torch==2.13.0",
            )
        if content.startswith("-"):
            raise ConfigError(
                f"{excerpt(content.split()[0])} is not supported in pins",
                location=where,
                hint="list every package with its version (pip-compile / pip freeze output)",
            )
        spec, *hash_parts = content.split("--hash")
        hashes = sorted(h.strip(" =") for h in hash_parts)
        for value in hashes:
            if not _HASH_RE.match(value):
                raise ConfigError(
                    f"not a hash: {excerpt(value)}",
                    location=where,
                    hint="write --hash=sha256:<hex digest>, as pip-compile does",
                )
        try:
            requirement = Requirement(spec.strip())
        except InvalidRequirement:
            raise ConfigError(
                f"not a requirement: {excerpt(spec.strip())}",
                location=where,
                hint="write e.g. torch==2.13.0",
            ) from None
        if requirement.url:
            raise ConfigError("URL requirements cannot be pinned by version", location=where)
        name = canonicalize_name(requirement.name)
        if name in packages:
            raise ConfigError(f"{name} is pinned twice", location=where, hint="keep one line")
        text_parts = []
        if requirement.extras:
            text_parts.append("[" + ",".join(sorted(requirement.extras)) + "]")
        text_parts.append(",".join(sorted(str(s) for s in requirement.specifier)))
        if requirement.marker:
            text_parts.append(f"; {requirement.marker}")
        text_parts.extend(f" --hash={h}" for h in hashes)
        packages[name] = "".join(text_parts)
    return Pins(shown, dict(sorted(packages.items())))


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, content) with comments stripped and backslash continuations joined."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0] if not raw.lstrip().startswith("#") else ""
        if not pending:
            start = lineno
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((start, (pending + line).strip()))
        pending = ""
    if pending:
        out.append((start, pending.strip()))
    return out


def pins_from_environment() -> str:
    """A requirements file pinning the training packages installed in this environment."""
    lines = ["# Written by `ftctl lock --pins-from-env`: the training environment's versions."]
    for name in TRAINING_PACKAGES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"
