"""The workspace: a directory of recipes, locks and manifests, configured by ftctl.yaml.

Discovery (documented in docs/workspace.md): starting at the working
directory (or ``-C DIR``), the nearest ancestor holding ``ftctl.yaml`` is the
root, searching no higher than the enclosing git repository. Without an
``ftctl.yaml`` the repository's top level is the root (the starting directory
outside git) and every setting takes its default.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ftctl.cache.paths import STATE_DIR
from ftctl.errors import Problem, UsageError, ValidationFailed, excerpt
from ftctl.files import confined
from ftctl.recipe.messages import describe_errors
from ftctl.recipe.refs import check_hf_id, is_local_path
from ftctl.recipe.types import ExecutorNameStr
from ftctl.yamlio import load_yaml_file

if TYPE_CHECKING:
    from ftctl.recipe.load import LoadedRecipe

CONFIG_NAME = "ftctl.yaml"
RECIPE_SUFFIXES = (".yaml", ".yml")
# Kernel pseudo-filesystems: no input lives there, and reading one may block or leak the environment.
SYSTEM_TREES = ("/proc", "/sys", "/dev")
DATA_LISTS = ("datasets", "test_datasets", "pretraining_dataset")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalExecutor(_Strict):
    type: Literal["local"]


class SSHExecutor(_Strict):
    type: Literal["ssh"]
    host: Annotated[str, Field(min_length=1)]
    user: str | None = None
    port: Annotated[int, Field(gt=0, lt=65536)] = 22
    workdir: Annotated[str, Field(min_length=1)] = "~/.cache/ftctl/work"
    identity_file: str | None = None
    python: Annotated[str, Field(min_length=1)] = "python3"
    setup: list[str] = Field(
        default_factory=list,
        description="shell commands run on the host before the worker, in the same shell "
        "(e.g. activating a virtual environment); ftctl installs nothing by itself",
    )
    known_hosts: str | None = Field(
        None, description="known_hosts file to check the host's key against (default: ssh's own)"
    )


class SkyPilotExecutor(_Strict):
    type: Literal["skypilot"]
    accelerators: str | None = None
    use_spot: bool = False
    cloud: str | None = None
    region: str | None = None
    managed: bool = True


ExecutorConfig = Annotated[
    LocalExecutor | SSHExecutor | SkyPilotExecutor, Field(discriminator="type")
]


class WorkspaceConfig(_Strict):
    """``ftctl.yaml``; every key is optional."""

    recipes: Annotated[str, Field(min_length=1)] = Field(
        "recipes", description="folder of recipes, or a glob such as 'teams/*/recipes/*.yaml'"
    )
    registry: str = Field("file://registry", description="file://PATH or hf://ORG")
    pins: Annotated[str, Field(min_length=1)] = "lockfiles/requirements.txt"
    trust: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=lambda: ["keys/*.pub"])
    executors: dict[ExecutorNameStr, ExecutorConfig] = Field(default_factory=dict)
    allow_paths: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="files or directories outside the workspace that recipes may name (models, "
        "datasets, deepspeed configs, output_dir): absolute, or relative to the workspace root",
    )

    @field_validator("allow_paths")
    @classmethod
    def _allowed_form(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not entry.isprintable():
                raise ValueError(f"{excerpt(entry)} holds a control character")
            path = Path(entry).expanduser()
            if path.is_absolute() and _in_system_tree(os.path.normpath(path)):
                raise ValueError(f"{excerpt(entry)}: ftctl never reads /proc, /sys or /dev")
        return value

    @field_validator("registry")
    @classmethod
    def _registry_form(cls, value: str) -> str:
        if value.startswith("file://") and len(value) > len("file://"):
            return value
        if value.startswith("hf://") and check_hf_id(value[5:]) is None and "/" not in value[5:]:
            return value
        raise ValueError("must be file://PATH or hf://ORG")

    @field_validator("executors")
    @classmethod
    def _local_is_local(cls, value: dict[str, ExecutorConfig]) -> dict[str, ExecutorConfig]:
        local = value.get("local")
        if local is not None and local.type != "local":
            raise ValueError("the name 'local' is reserved for the local executor")
        return value


@dataclass(frozen=True)
class Workspace:
    root: Path
    config: WorkspaceConfig
    config_path: Path | None = None
    config_valid: bool = True  # False when ftctl.yaml failed to load and defaults stand in

    @property
    def executor_names(self) -> set[str]:
        return {"local", *self.config.executors}

    @property
    def exists(self) -> bool:
        """Whether this is a workspace at all: ftctl.yaml, or the recipes folder, is there."""
        pattern = self.config.recipes
        return (
            self.config_path is not None
            or glob.has_magic(pattern)
            or (self.root / pattern).is_dir()
        )

    def publish_target(self, name: str, publish: str | None) -> str:
        """Where recipe ``name`` publishes: its ``ftctl.publish``, else ``<registry>/<name>``."""
        return publish or f"{self.config.registry.rstrip('/')}/{name}"

    def resolve(self, text: str) -> Path:
        """A path written in a recipe or ftctl.yaml: absolute (``~`` expanded), or relative to the root."""
        return resolve_path(self.root, text)

    @cached_property
    def confinement(self) -> Confinement:
        """Where paths written in recipes may lead: the workspace and ``allow_paths``."""
        return Confinement(self.root, tuple(self.config.allow_paths))

    def path_problems(self, item: LoadedRecipe) -> list[Problem]:
        """Every path the recipe names that leaves the allowed roots or cannot name a file, located."""
        problems = []
        for key_path, text, data_file in named_paths(item):
            refused = data_file_refusal(data_file) if data_file is not None else None
            refused = refused or self.confinement.refusal(text)
            if refused is not None:
                message, hint = refused
                problems.append(Problem(message, item.document.location(key_path), key_path, hint))
        return problems

    def recipe_paths(self) -> list[Path]:
        """Every recipe file of the workspace, sorted.

        Anything named like a recipe but a directory is listed (a FIFO or a device too), so
        that loading it reports what it is instead of skipping it without a word.
        """
        pattern = self.config.recipes
        if glob.has_magic(pattern):
            found = [Path(p) for p in glob.glob(str(self.root / pattern), recursive=True)]
            recipes = sorted(p for p in found if p.suffix in RECIPE_SUFFIXES and not p.is_dir())
            self._refuse_outside(recipes)  # a glob can lead anywhere: resolve each
            return recipes
        folder = self.root / pattern
        if not folder.is_dir():
            return []
        # scandir's entries know their type: no stat per recipe (a monorepo has thousands).
        with os.scandir(folder) as entries:
            listed = [
                (entry.name, entry.is_symlink())
                for entry in entries
                if entry.name.endswith(RECIPE_SUFFIXES) and not _is_dir(entry)
            ]
        recipes = sorted(folder / name for name, _ in listed)
        # Resolving every path costs ~0.1 ms each; only a symlink can lead outside.
        links = {name for name, link in listed if link}
        suspects = recipes if folder.is_symlink() else [p for p in recipes if p.name in links]
        self._refuse_outside(suspects)
        return recipes

    def _refuse_outside(self, recipes: list[Path]) -> None:
        """A recipe reached through a symlink or a glob that leaves the workspace is refused."""
        real_root = self.root.resolve()
        for path in recipes:
            shown = path.relative_to(self.root) if path.is_relative_to(self.root) else path
            try:
                inside = path.resolve(strict=True).is_relative_to(real_root)
            except FileNotFoundError:  # dangling: loading it says so
                inside = confined(path, self.root)
            except (OSError, RuntimeError):
                raise UsageError(
                    f"{shown}: a symlink loop", hint="remove the link or point it at the recipe"
                ) from None
            if not inside:
                raise UsageError(
                    f"{shown}: the recipe lies outside the workspace",
                    hint="keep recipes in the repository (and the recipes glob of ftctl.yaml in it)",
                )


@dataclass
class Confinement:
    """Paths a recipe may name: inside the workspace, or inside a root ``allow_paths`` lists.

    Checked on the path with every symlink resolved, so neither ``../..``, an absolute path,
    ``~`` nor a committed symlink leads out. The Hugging Face and DVC caches are reached
    through their libraries, never through a path a recipe writes, so they need no entry.
    """

    root: Path
    allowed: tuple[str, ...] = ()
    _seen: dict[str, bool] = field(default_factory=dict, init=False, repr=False)

    @cached_property
    def _roots(self) -> tuple[str, ...]:
        entries = [str(self.root), *(str(resolve_path(self.root, a)) for a in self.allowed)]
        return tuple(_real(entry) for entry in entries)

    def allows(self, text: str) -> bool:
        """Whether the path ``text`` (printable: see :meth:`refusal`) lies inside an allowed root."""
        found = self._seen.get(text)
        if found is None:
            # One realpath per distinct path: a thousand recipes share a few models and datasets.
            real = _real(str(resolve_path(self.root, text)))
            found = self._seen[text] = any(_within(real, root) for root in self._roots)
        return found

    def refusal(self, text: str) -> tuple[str, str] | None:
        """Why the path ``text`` may not be used, with what to do (message, hint), or None."""
        unusable = text_refusal(text)
        if unusable is not None or self.allows(text):
            return unusable
        shown = repr(text) if len(text) <= 200 else "DIR"
        return (
            f"{excerpt(text)} lies outside the workspace",
            f"move it into the repository, or allow it in {CONFIG_NAME}: allow_paths: [{shown}]",
        )


def text_refusal(text: str) -> tuple[str, str] | None:
    """Why ``text`` cannot be a path at all (a NUL byte, a control character), or None."""
    if "\x00" in text:  # the OS cannot take it: every call on such a path raises ValueError
        return f"{excerpt(text)} holds a NUL byte", "remove it from the path"
    if not text.isprintable():  # a newline or an escape sequence, never part of a real path
        return f"{excerpt(text)} holds a control character", "remove it from the path"
    return None


def data_file_refusal(name: str) -> tuple[str, str] | None:
    """Why ``name`` (an entry of a dataset's ``data_files``) does not stay inside the dataset."""
    unusable = text_refusal(name)
    if unusable is not None:
        return unusable
    normal = os.path.normpath(name)
    if name.startswith(("/", "~")) or normal == ".." or normal.startswith("../"):
        return (
            f"{excerpt(name)} leads outside the dataset's path",
            "name files inside the dataset's path, relative to it",
        )
    return None


def named_paths(item: LoadedRecipe) -> list[tuple[tuple[str | int, ...], str, str | None]]:
    """(key path, path as written, data file or None) for every local path the recipe names.

    A data file comes joined to its dataset's path, with its own name as the third item.
    """
    recipe = item.recipe
    out: list[tuple[tuple[str | int, ...], str, str | None]] = []
    base = recipe.base_model.strip()  # as parse_model_ref reads it
    if is_local_path(base):
        out.append((("base_model",), base, None))
    if recipe.lora_model_dir is not None:  # the worker tries even a Hub id as a local path first
        out.append((("lora_model_dir",), recipe.lora_model_dir, None))
    for list_name in DATA_LISTS:
        for index, entry in enumerate(getattr(recipe, list_name) or ()):
            out.append(((list_name, index, "path"), entry.path, None))
            for number, name in enumerate(getattr(entry, "data_files", None) or ()):
                key = (list_name, index, "data_files", number)
                out.append((key, os.path.join(entry.path, name), name))
    if recipe.deepspeed is not None:
        out.append((("deepspeed",), recipe.deepspeed, None))
    if "output_dir" in recipe.model_fields_set:  # where `ftctl train` writes
        out.append((("output_dir",), recipe.output_dir, None))
    return out


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop: listed, so that it is reported
        return False


def _real(path: str) -> str:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):  # unreadable on the way: judged as written
        return os.path.abspath(path)


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root if root.endswith("/") else root + "/")


def _in_system_tree(path: str) -> bool:
    return any(_within(path, tree) for tree in SYSTEM_TREES)


def trusted_key_files(root: Path, patterns: list[str]) -> list[Path]:
    """The key files matching the workspace's ``trust`` globs, in the order keys are loaded."""
    return [Path(name) for pattern in patterns for name in sorted(glob.glob(str(root / pattern)))]


def resolve_path(root: Path, text: str) -> Path:
    """A path written in a recipe: absolute (``~`` expanded), or relative to the workspace ``root``."""
    if "\x00" in text:  # the OS cannot take it: every call on such a path raises ValueError
        raise UsageError(f"path {excerpt(text)} holds a NUL byte", hint="remove it from the path")
    # os.path's expanduser leaves an unknown ~user as written; Path's raises RuntimeError.
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else root / path


def find_root(start: Path) -> Path | None:
    """The nearest directory from ``start`` up holding ftctl.yaml, within the git repository."""
    for directory in (start, *start.parents):
        # Anything by that name counts (a FIFO, a dangling symlink): loading it says what is wrong,
        # where skipping it would quietly fall back to the defaults.
        if os.path.lexists(directory / CONFIG_NAME):
            return directory
        if (directory / ".git").exists():
            return None
    return None


def git_top(start: Path) -> Path | None:
    """The nearest directory from ``start`` up that holds ``.git``."""
    return next((d for d in (start, *start.parents) if (d / ".git").exists()), None)


def discover(start: Path) -> Workspace:
    """The workspace that ``start`` (a directory) belongs to."""
    start = start.resolve()
    root = find_root(start)
    if root is None:
        # No ftctl.yaml: the repository's top level, as DVC and git find theirs.
        root = git_top(start) or start
        _refuse_state_outside(root)
        return Workspace(root, WorkspaceConfig())
    _refuse_state_outside(root)
    config_path = root / CONFIG_NAME
    if config_path.is_symlink() and not confined(config_path, root):
        raise UsageError(
            f"{CONFIG_NAME} is a symlink leaving the workspace",
            hint=f"commit {CONFIG_NAME} itself; ftctl reads no settings from outside the repository",
        )
    return Workspace(root, load_config(config_path), config_path)


def _refuse_state_outside(root: Path) -> None:
    """``.ftctl/`` must not be a symlink out of the workspace: caches would be written there."""
    state = root / STATE_DIR
    if state.is_symlink() and not confined(state, root):
        raise UsageError(
            f"{STATE_DIR} is a symlink leaving the workspace ({os.readlink(state)})",
            hint=f"remove it; ftctl makes its own {STATE_DIR}/ in the workspace",
        )


def discover_existing(start: Path) -> Workspace:
    """Like :func:`discover`, for commands that need a workspace: none is a one-line error.

    A CI job started in the wrong directory must fail, not report "No changes".
    """
    workspace = discover(start)
    if not workspace.exists:
        raise UsageError(
            f"{workspace.root} is not an ftctl workspace (no {CONFIG_NAME}, no "
            f"{workspace.config.recipes}/)",
            hint="run ftctl in a workspace (or -C DIR), or create one with `ftctl init`",
        )
    return workspace


def load_config(path: Path, shown: str | None = None) -> WorkspaceConfig:
    """Load and validate ftctl.yaml; raises ValidationFailed with every problem."""
    document = load_yaml_file(path, shown)
    if document.data is None:
        return WorkspaceConfig()
    if not isinstance(document.data, dict):
        raise ValidationFailed(
            [Problem("ftctl.yaml must be a mapping of keys to values", document.location(()))]
        )
    try:
        return WorkspaceConfig.model_validate(document.data)
    except ValidationError as exc:
        raise ValidationFailed(describe_errors(exc, document, WorkspaceConfig)) from None
