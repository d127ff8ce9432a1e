"""``ftctl init``: lay out a new workspace that validates as it is."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from ftctl.errors import FtctlError
from ftctl.files import write_atomic

# (path in the workspace, template file in ftctl/templates)
FILES = (
    ("ftctl.yaml", "ftctl.yaml"),
    ("recipes/example.yaml", "example.yaml"),
    ("lockfiles/requirements.txt", "requirements.txt"),
    ("manifests/.gitkeep", None),
    ("keys/.gitkeep", None),
    (".gitignore", "gitignore"),
)


def scaffold(root: Path) -> Iterator[tuple[Path, bool]]:
    """Create each missing file of a new workspace; yields (path, created)."""
    templates = resources.files("ftctl") / "templates"
    for relative, template in FILES:
        target = root / relative
        if target.exists():
            yield target, False
            continue
        text = (templates / template).read_text(encoding="utf-8") if template else ""
        try:
            write_atomic(target, text)
        except OSError as exc:
            raise FtctlError(
                f"cannot create {target}: {exc.strerror or exc}",
                hint="choose a directory you can write to",
            ) from None
        yield target, True
