"""Validate recipes and workspace files, collecting every problem in every file.

Per-file checks live in :mod:`ftctl.recipe`; this module adds what needs the
whole workspace: ``recipe:`` references and their cycles, executor names and
duplicate recipe names.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ftctl.cache.parse import ParseCache
from ftctl.errors import ConfigError, Location, Problem
from ftctl.recipe.dag import find_cycle
from ftctl.recipe.load import LoadedRecipe, load_recipe
from ftctl.recipe.messages import did_you_mean
from ftctl.recipe.refs import upstream_of
from ftctl.workspace import (
    CONFIG_NAME,
    RECIPE_SUFFIXES,
    Workspace,
    WorkspaceConfig,
    discover,
    find_root,
)
from ftctl.yamlio import display_path


@dataclass
class CheckReport:
    """What ``ftctl validate`` found."""

    checked: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    recipes: list[LoadedRecipe] = field(default_factory=list)
    # Valid recipes that will not lock as they are: a dataset file that is not there but has a
    # near namesake in the workspace (lock reports every missing file; validate the likely typos).
    warnings: list[Problem] = field(default_factory=list)

    @property
    def failed_files(self) -> int:
        return len({p.location.file for p in self.problems if p.location is not None})


def expand_paths(paths: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """Files named directly, and the recipe files inside named directories."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(
                p
                for p in path.iterdir()
                if p.suffix in RECIPE_SUFFIXES and p.is_file() and p.name != CONFIG_NAME
            )
            if not inside:
                problems.append(
                    Problem("no recipes (*.yaml) in this directory", Location(display_path(path)))
                )
            files.extend(inside)
        elif path.exists():
            files.append(path)
        else:
            problems.append(Problem("no such file or directory", Location(display_path(path))))
    return files, problems


def check_paths(paths: list[Path], cwd: Path, cache: ParseCache | None = None) -> CheckReport:
    """Check the given recipe files/directories, or the whole workspace at ``cwd``."""
    report = CheckReport()
    if paths:
        files, problems = expand_paths(paths)
        report.problems.extend(problems)
        groups: dict[Path, tuple[Workspace, list[Path]]] = {}
        for file in files:
            workspace = _workspace_of(file.resolve().parent, report)
            if workspace is None:
                continue
            groups.setdefault(workspace.root, (workspace, []))[1].append(file)
        for workspace, group in groups.values():
            _check_group(workspace, group, report, cache)
        return report
    workspace = _workspace_of(cwd, report)
    if workspace is not None:
        _check_group(workspace, workspace.recipe_paths(), report, cache)
    return report


def _workspace_of(start: Path, report: CheckReport) -> Workspace | None:
    try:
        workspace = discover(start)
    except ConfigError as exc:
        # Report ftctl.yaml's problems, and still check the recipes against the defaults.
        report.problems.extend(exc.problems)
        root = find_root(start.resolve())
        if root is None:
            return None
        workspace = Workspace(root, WorkspaceConfig(), root / CONFIG_NAME, config_valid=False)
    if workspace.config_path is not None:
        shown = display_path(workspace.config_path)
        if shown not in report.checked:
            report.checked.append(shown)
    return workspace


def _check_group(
    workspace: Workspace, files: list[Path], report: CheckReport, cache: ParseCache | None
) -> None:
    loaded: list[LoadedRecipe] = []
    stems: dict[str, str] = {}
    for file in files:
        shown = display_path(file)
        report.checked.append(shown)
        if file.stem in stems:
            report.problems.append(
                Problem(
                    f"recipe name '{file.stem}' is also used by {stems[file.stem]}",
                    Location(shown, 1, 1),
                    hint="rename one file; a recipe's name is its file name without .yaml",
                )
            )
            continue
        stems[file.stem] = shown
        try:
            loaded.append(load_recipe(file, shown, cache))
        except ConfigError as exc:
            report.problems.extend(exc.problems)
    # Names a recipe may build on: the workspace's recipes plus the files checked now.
    known = {p.stem for p in workspace.recipe_paths()} | set(stems)
    report.problems.extend(_workspace_problems(workspace, loaded, known))
    # Paths that leave the allowed roots or cannot name a file: lock refuses them too.
    report.problems.extend(p for item in loaded for p in workspace.path_problems(item))
    report.warnings.extend(w for item in loaded for w in item.warnings)
    report.warnings.extend(_missing_data(workspace, loaded))
    report.recipes.extend(loaded)


def _missing_data(workspace: Workspace, loaded: list[LoadedRecipe]) -> Iterable[Problem]:
    """Dataset paths that name no file, cannot be a Hub id and look like a typo of a file there."""
    for item in loaded:
        for list_name in ("datasets", "test_datasets"):
            for i, entry in enumerate(getattr(item.recipe, list_name) or ()):
                if "\x00" in entry.path or os.path.lexists(workspace.resolve(entry.path)):
                    continue  # there (one stat, the common case), or reported where it is read
                from ftctl.recipe.paths import missing_dataset

                found = missing_dataset(workspace.root, entry.path)
                if found is not None and found.suggestion is not None:
                    path = (list_name, i, "path")
                    yield Problem(found.message, item.document.location(path), path, found.hint)


def _workspace_problems(
    workspace: Workspace, loaded: list[LoadedRecipe], known: set[str]
) -> Iterable[Problem]:
    edges: dict[str, str | None] = {}
    for item in loaded:
        doc, recipe = item.document, item.recipe
        upstream = edges[item.name] = upstream_of(recipe.base_model)
        if upstream == item.name:
            yield Problem(
                "a recipe cannot build on itself",
                doc.location(("base_model",)),
                ("base_model",),
                "name another recipe or a model",
            )
        elif upstream is not None and upstream not in known:
            hint = did_you_mean(upstream, sorted(known - {item.name}))
            yield Problem(
                f"no recipe named '{upstream}' in this workspace",
                doc.location(("base_model",)),
                ("base_model",),
                hint or f"add recipes/{upstream}.yaml or fix the name",
            )
        executor = recipe.ftctl.executor
        if workspace.config_valid and executor not in workspace.executor_names:
            configured = sorted(workspace.executor_names)
            yield Problem(
                f"no executor named '{executor}'",
                doc.location(("ftctl", "executor")),
                ("ftctl", "executor"),
                did_you_mean(executor, configured)
                or f"define it under executors: in ftctl.yaml (defined: {', '.join(configured)})",
            )
    cycle = find_cycle({k: v for k, v in edges.items() if v is None or v != k})
    if cycle:
        by_name = {item.name: item for item in loaded}
        first = by_name[cycle[0]]
        yield Problem(
            f"recipes build on each other in a cycle: {' -> '.join(cycle)}",
            first.document.location(("base_model",)),
            ("base_model",),
            "break the cycle; one of them must start from a model",
        )
