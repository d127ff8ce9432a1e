"""Gather what plan compares: desired state (recipes + fresh locks) and recorded state (manifests).

Reads files only: no network (locks are computed offline, and a stale or
missing lock is an error), no training stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ftctl.dag import topological_order
from ftctl.errors import FtctlError
from ftctl.estimate import base_params, estimate
from ftctl.fingerprint import training_config
from ftctl.hashing import file_digest
from ftctl.keys import trusted_keys
from ftctl.lock import compute_locks, load_workspace_recipes
from ftctl.parsecache import ParseCache
from ftctl.plan import Desired, Recorded
from ftctl.refs import parse_model_ref
from ftctl.statcache import StatCache
from ftctl.state import read_state
from ftctl.workspace import Workspace
from ftctl.yamlio import display_path


@dataclass(frozen=True)
class PlanInputs:
    desired: dict[str, Desired]
    recorded: dict[str, Recorded]
    registry_root: Path | None  # a file:// registry, or None (hf:// is not consulted offline)
    digests: dict[str, dict[str, str]]  # kind -> path -> sha256 of every file plan read

    def in_registry(self, name: str, fingerprint: str) -> bool:
        if self.registry_root is None:
            return False
        return (self.registry_root / name / fingerprint.removeprefix("sha256:")).is_dir()


def gather(workspace: Workspace) -> PlanInputs:
    root = workspace.root
    parsed = ParseCache(root / ".ftctl" / "parsed.json")
    stat = StatCache(root / ".ftctl" / "statcache.json")
    recipes = load_workspace_recipes(workspace, parsed)
    report = compute_locks(workspace, recipes, network=False, cache=stat, parse_cache=parsed)
    stat.save()
    parsed.save()
    stale = [o for o in report.outcomes if o.status != "fresh"]
    if stale:
        names = ", ".join(f"{o.shown} ({o.status})" for o in stale)
        raise FtctlError(f"locks are not up to date: {names}", hint="run `ftctl lock` and commit the locks")
    locks = {o.name: o.new for o in report.outcomes if o.new is not None}
    edges = {name: _upstream(item.recipe.base_model) for name, item in recipes.items()}
    desired: dict[str, Desired] = {}
    params: dict[str, int | None] = {}
    for name in topological_order(edges):
        item, lock = recipes[name], locks[name]
        config = training_config(item.recipe)
        upstream = edges[name]
        params[name] = base_params(lock, root, params.get(upstream) if upstream else None)
        desired[name] = Desired(
            name=name,
            lock=lock,
            config=config,
            publish=item.recipe.ftctl.publish or f"{workspace.config.registry.rstrip('/')}/{name}",
            upstream=upstream,
            estimate=estimate(lock, config, _accelerator(workspace, item.recipe.ftctl), params[name]),
        )
    trusted = trusted_keys(root, workspace.config.trust)
    recorded = {}
    for name, state in read_state(root, trusted).items():
        current = state.current
        recorded[name] = Recorded(
            name,
            current.statement if current else None,
            display_path(current.path) if current else None,
            frozenset(m.statement.fingerprint for m in state.manifests),
            tuple((display_path(p), reason) for p, reason in state.rejected),
        )
    registry = workspace.config.registry
    registry_root = (root / registry[len("file://") :]) if registry.startswith("file://") else None
    digests = input_digests(workspace, stat)
    stat.save()
    return PlanInputs(desired, recorded, registry_root, digests)


def input_digests(workspace: Workspace, cache: StatCache | None = None) -> dict[str, dict[str, str]]:
    """sha256 of every file a plan depends on (recipes, locks, pins, manifests, trusted keys)."""
    root = workspace.root
    stat = cache or StatCache.disabled()

    def rel(path: Path) -> str:
        return path.relative_to(root).as_posix()

    files = {
        "recipes": workspace.recipe_paths(),
        "locks": sorted((root / "lockfiles").glob("*.lock")),
        "pins": sorted(p for p in (root / "lockfiles").glob("*.txt")),
        "manifests": sorted((root / "manifests").glob("*/*.intoto.json")),
        "keys": sorted((root / "keys").glob("*.pub")),
    }
    return {kind: {rel(p): file_digest(p, "sha256", stat) for p in paths if p.is_file()} for kind, paths in files.items()}


def _upstream(base_model: str) -> str | None:
    ref = parse_model_ref(base_model)
    return ref.value if ref.kind == "recipe" else None


def _accelerator(workspace: Workspace, block: object) -> str | None:
    resources = getattr(block, "resources", None)
    declared = getattr(resources, "accelerators", None)
    if declared:
        return str(declared)
    executor = workspace.config.executors.get(getattr(block, "executor", "local"))
    return getattr(executor, "accelerators", None)
