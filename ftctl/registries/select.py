"""The registry for a publish target or a recorded artifact's address: file:// or hf://."""

from __future__ import annotations

from pathlib import Path

from ftctl.errors import FtctlError
from ftctl.registries.base import Registry


def open_registry(target: str, root: Path) -> Registry:
    """``file://PATH/NAME`` (relative to the workspace ``root``) or ``hf://ORG/REPO``."""
    if target.startswith("file://"):
        from ftctl.registries.file import FileRegistry

        return FileRegistry(target, root)
    if target.startswith("hf://"):
        from ftctl.registries.hf import HubRegistry

        return HubRegistry(target)
    raise FtctlError(
        f"publish target {target!r} is neither file:// nor hf://",
        hint="set ftctl.publish (or registry: in ftctl.yaml) to file://PATH or hf://ORG/REPO",
    )


def artifact_registry(uri: str, root: Path) -> Registry:
    """The registry holding a recorded artifact: ``file://PATH/NAME/FP`` or ``hf://ORG/REPO@COMMIT``."""
    if uri.startswith("file://"):
        return open_registry(uri.rsplit("/", 1)[0], root)
    return open_registry(uri.split("@", 1)[0], root)
