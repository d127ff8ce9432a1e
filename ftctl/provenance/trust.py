"""Which keys a manifest must be signed by: pinned outside the change under review.

By default the trusted keys are the files matching ``trust:`` in ftctl.yaml
(``keys/*.pub``) in the working tree, which a pull request can change. With
``--trust-ref REF`` (or ``FTCTL_TRUST_REF``) both ``trust:`` and the key files
are read from REF's git tree instead (CI passes the base branch), and
``FTCTL_TRUSTED_KEYS`` (key file paths separated by ``:``, or PEM text)
overrides both. A key the change adds is then listed as a trust change and
counts for nothing, so a pull request cannot make ftctl believe a manifest
it signed itself.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ftctl.errors import FtctlError, UsageError
from ftctl.workspace import CONFIG_NAME, Workspace, trusted_key_files

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

TRUST_REF_ENV = "FTCTL_TRUST_REF"
TRUSTED_KEYS_ENV = "FTCTL_TRUSTED_KEYS"
MAX_KEY_BYTES = 64 * 1024
_PEM = re.compile(rb"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", re.DOTALL)


# NamedTuples, not frozen dataclasses: plan imports this module at every start, and a frozen
# dataclass costs ~10x as much to define.
class KeyFile(NamedTuple):
    """A trusted public key as its file holds it."""

    name: str  # the key file's path in the workspace, or where it came from
    data: bytes


class Trust(NamedTuple):
    """The trusted keys and where they were read from."""

    source: str  # "the working tree", "origin/main (3f2a9c1d04e7)", "FTCTL_TRUSTED_KEYS"
    files: tuple[KeyFile, ...]

    def keys(self) -> dict[str, Ed25519PublicKey]:
        """keyid -> public key; a file that is not an Ed25519 public key is a one-line error."""
        from ftctl.provenance.keys import keyid, parse_public_key

        keys: dict[str, Ed25519PublicKey] = {}
        for file in self.files:
            key = parse_public_key(file.data, file.name)
            keys[keyid(key)] = key
        return keys

    def digest(self) -> str:
        """sha256 over the key files' names and bytes (what a cached verification depends on)."""
        digest = hashlib.sha256(self.source.encode("utf-8", "surrogateescape") + b"\0")
        for file in self.files:
            digest.update(file.name.encode("utf-8", "surrogateescape") + b"\0")
            digest.update(hashlib.sha256(file.data).digest())
        return digest.hexdigest()


class TrustChange(NamedTuple):
    """A key file the working tree has that the pinned trust does not (or the other way)."""

    change: str  # "added", "removed", "replaced"
    file: str
    keyid: str | None  # of the working tree's key (None when removed or unreadable)


def trust_of(workspace: Workspace, ref: str | None = None) -> Trust:
    """The trust to verify manifests with: FTCTL_TRUSTED_KEYS, else REF's tree, else the working tree."""
    pinned = os.environ.get(TRUSTED_KEYS_ENV)
    if pinned:
        return _from_environment(pinned)
    ref = ref or os.environ.get(TRUST_REF_ENV) or None
    if ref:
        return _from_ref(workspace, ref)
    return working_tree_trust(workspace)


def working_tree_trust(workspace: Workspace) -> Trust:
    from ftctl.files import confined

    files = []
    for path in trusted_key_files(workspace.root, workspace.config.trust):
        if path.is_symlink() and not confined(path, workspace.root):
            # A key committed as a symlink out: ftctl would trust a file the repository lacks.
            shown = path.relative_to(workspace.root).as_posix()  # as the repository has it
            raise FtctlError(
                f"{shown}: the key file leads outside the workspace",
                hint="commit the public key itself, not a link to it",
            )
        files.append(_read(path, _shown(workspace, path)))
    return Trust("the working tree", tuple(files))


def trust_changes(workspace: Workspace, pinned: Trust) -> list[TrustChange]:
    """How the working tree's trusted keys differ from ``pinned`` (none when they are the same trust)."""
    if pinned.source == "the working tree":
        return []
    from ftctl.provenance.keys import keyid, parse_public_key

    here = {f.name: f.data for f in working_tree_trust(workspace).files}
    there = {f.name: f.data for f in pinned.files}

    def kid(name: str) -> str | None:
        try:
            return keyid(parse_public_key(here[name], name))
        except FtctlError:
            return None

    changes = [TrustChange("added", n, kid(n)) for n in sorted(set(here) - set(there))]
    changes += [TrustChange("removed", n, None) for n in sorted(set(there) - set(here))]
    changes += [
        TrustChange("replaced", n, kid(n))
        for n in sorted(set(here) & set(there))
        if here[n] != there[n]
    ]
    return sorted(changes, key=lambda c: (c.file, c.change))


def _from_environment(value: str) -> Trust:
    raw = value.encode("utf-8", "surrogateescape")
    if b"-----BEGIN" in raw:
        blocks = _PEM.findall(raw)
        if not blocks:
            raise UsageError(
                f"{TRUSTED_KEYS_ENV} holds no PEM public key", hint="give key files or PEM text"
            )
        files = tuple(KeyFile(f"{TRUSTED_KEYS_ENV}[{i}]", block) for i, block in enumerate(blocks))
        return Trust(TRUSTED_KEYS_ENV, files)
    paths = [Path(p).expanduser() for p in value.split(os.pathsep) if p]
    return Trust(TRUSTED_KEYS_ENV, tuple(_read(p, str(p)) for p in paths))


def _from_ref(workspace: Workspace, ref: str) -> Trust:
    from ftctl._git import blob_at, files_at, resolve_ref

    commit = resolve_ref(workspace.root, ref)
    if commit is None:
        raise UsageError(
            f"trust ref {ref!r} is not a commit of this repository",
            hint="fetch it first (e.g. git fetch origin main) or name a branch, tag or commit",
        )
    patterns = _trust_patterns(blob_at(workspace.root, commit, CONFIG_NAME), ref)
    names = [n for n in files_at(workspace.root, commit) if any(_matches(n, p) for p in patterns)]
    files = []
    for name in sorted(names):
        data = blob_at(workspace.root, commit, name)
        if data is not None and len(data) <= MAX_KEY_BYTES:
            files.append(KeyFile(name, data))
    return Trust(f"{ref} ({commit[:12]})", tuple(files))


def _trust_patterns(config: bytes | None, ref: str) -> list[str]:
    """``trust:`` of ftctl.yaml as REF has it (the default when REF has no ftctl.yaml)."""
    from ftctl.workspace import WorkspaceConfig
    from ftctl.yamlio import decode_text, parse_yaml

    if config is None:
        return list(WorkspaceConfig().trust)
    shown = f"{ref}:{CONFIG_NAME}"
    data = parse_yaml(decode_text(config, shown), shown).data
    trust = data.get("trust", WorkspaceConfig().trust) if isinstance(data, dict) else None
    if not isinstance(trust, list) or not all(isinstance(p, str) for p in trust):
        raise UsageError(
            f"{shown}: trust must be a list of globs", hint="fix ftctl.yaml on that branch"
        )
    return list(trust)


def _matches(name: str, pattern: str) -> bool:
    """Glob semantics of the working tree's lookup: ``*`` stays within one path segment."""
    parts, globs = name.split("/"), pattern.split("/")
    if "**" in globs:
        return fnmatch.fnmatch(name, pattern.replace("**/", "*").replace("**", "*"))
    return len(parts) == len(globs) and all(
        fnmatch.fnmatchcase(a, b) for a, b in zip(parts, globs, strict=True)
    )


def _read(path: Path, shown: str) -> KeyFile:
    from ftctl.files import read_regular

    return KeyFile(shown, read_regular(path, MAX_KEY_BYTES, shown, what="key file"))


def _shown(workspace: Workspace, path: Path) -> str:
    try:
        return path.resolve().relative_to(workspace.root.resolve()).as_posix()
    except ValueError:
        return str(path)
