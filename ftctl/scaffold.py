"""``ftctl init``: lay out a new workspace that validates as it is, inside a git repository.

An existing workspace is only completed: files that are there are kept, and the example
recipe is added only where it cannot clash with the user's recipes (see :func:`_example`).
``--ci github|gitlab`` adds the CI file that plans pull requests and applies main, pinned to
this ftctl's version; an existing one is never replaced (it is a team's own pipeline).
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from ftctl import __version__, _git
from ftctl.errors import ConfigError, FtctlError
from ftctl.files import write_atomic
from ftctl.workspace import CONFIG_NAME, Workspace, WorkspaceConfig, git_top, load_config

EXAMPLE = "recipes/example.yaml"
# (path in the workspace, template file in ftctl/templates)
FILES = (
    ("ftctl.yaml", "ftctl.yaml"),
    (EXAMPLE, "example.yaml"),
    ("lockfiles/requirements.txt", "requirements.txt"),
    ("manifests/.gitkeep", None),
    ("keys/.gitkeep", None),
    (".gitignore", "gitignore"),
)
# --ci SYSTEM: (path in the repository, template file in ftctl/templates)
CI_FILES = {
    "github": (".github/workflows/ftctl.yml", "ci/github/ftctl.yml"),
    "gitlab": (".gitlab-ci.yml", "ci/gitlab/gitlab-ci.yml"),
}
VERSION_PLACEHOLDER = "{{version}}"  # the ftctl release a CI file installs


@dataclass(frozen=True)
class Step:
    """What init did with one path."""

    path: Path
    action: Literal["created", "kept", "skipped"]
    reason: str = ""


def scaffold(root: Path, ci: str | None = None) -> Iterator[Step]:
    """Create each missing file of a workspace (and CI's, with ``ci``), then a git repository."""
    templates = resources.files("ftctl") / "templates"
    example, skip_reason = _example(root)
    for relative, template in FILES:
        if relative == EXAMPLE:
            if skip_reason is not None:
                yield Step(root / example, "skipped", skip_reason)
                continue
            relative = example
        target = root / relative
        if target.exists() or target.is_symlink():
            yield Step(target, "kept")
            continue
        _create(target, (templates / template).read_text(encoding="utf-8") if template else "")
        yield Step(target, "created")
    if ci is not None:
        yield _ci_file(root, ci)
    yield from _repository(root)


def ci_template(system: str) -> str:
    """The CI file of ``system`` (a key of :data:`CI_FILES`), installing this ftctl's version."""
    template = resources.files("ftctl") / "templates" / CI_FILES[system][1]
    return template.read_text(encoding="utf-8").replace(VERSION_PLACEHOLDER, __version__)


def _ci_file(root: Path, system: str) -> Step:
    relative = CI_FILES[system][0]
    target = root / relative
    top = git_top(root.resolve())
    if top is not None and top != root.resolve():
        # CI reads its file at the repository's top and runs there; the template's paths
        # (recipes/, manifests/, the cache key) are the workspace's, so they would be wrong.
        return Step(
            target,
            "skipped",
            f"the workspace is not the top of its git repository ({top}); "
            "copy the template there and run its steps in this directory",
        )
    if target.exists() or target.is_symlink():
        return Step(
            target,
            "skipped",
            "it exists and is kept; move it aside for ftctl's, then merge the two",
        )
    _create(target, ci_template(system))
    return Step(target, "created")


def _create(target: Path, text: str) -> None:
    try:
        write_atomic(target, text)
    except OSError as exc:
        raise FtctlError(
            f"cannot create {target}: {exc.strerror or exc}",
            hint="choose a directory you can write to",
        ) from None


def _example(root: Path) -> tuple[str, str | None]:
    """Where the example recipe goes, and why it is left out (None: it is added).

    It is added to a workspace without recipes only: next to recipes of the user's own it
    would be planned and trained with them, and a recipe named ``example`` is theirs.
    """
    config = WorkspaceConfig()
    if (root / CONFIG_NAME).is_file():
        try:
            config = load_config(root / CONFIG_NAME)
        except ConfigError:
            return EXAMPLE, f"{CONFIG_NAME} does not load (`ftctl validate` says why)"
    if glob.has_magic(config.recipes):
        return EXAMPLE, f"recipes in {CONFIG_NAME} is a glob; add a recipe of your own"
    example = f"{config.recipes.rstrip('/')}/example.yaml"
    try:
        existing = Workspace(root, config).recipe_paths()
    except FtctlError as exc:
        return example, exc.problem.message
    named = [p for p in existing if p.stem == "example"]
    if named and (root / example) not in named:
        return example, f"a recipe named example exists ({named[0].relative_to(root)})"
    if existing and (root / example) not in existing:
        count = len(existing)
        return example, (
            f"the workspace has {count} recipe{'s' if count != 1 else ''}; "
            "an example would be planned and trained with them"
        )
    return example, None


def _repository(root: Path) -> Iterator[Step]:
    if git_top(root.resolve()) is not None or _git.inside_work_tree(root):
        return
    failed = _git.init_repository(root)
    if failed is None:
        yield Step(root / ".git", "created", "a new git repository")
    else:
        yield Step(root / ".git", "skipped", f"no git repository: {failed}")
