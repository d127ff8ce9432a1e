"""Gather what plan compares: desired state (recipes + fresh locks) and recorded state (manifests).

Reads files only: no network (locks are computed offline, and a stale or
missing lock is an error), no training stack. What an earlier plan computed
is reused through ``ftctl.cache.planmemo`` while the files it came from are
unchanged; everything else is computed as ``ftctl lock --check`` and
``ftctl verify`` would.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftctl._dvc import find_repo
from ftctl.cache.planmemo import PlanMemo, RecipeMemo, environment
from ftctl.errors import FtctlError
from ftctl.files import read_small
from ftctl.lock.paths import lock_path, locks_dir
from ftctl.plan.planner import Desired, Estimate, Plan, Reason, Recorded, Run
from ftctl.provenance.records import Record, manifest_files, read_records
from ftctl.provenance.trust import Trust, TrustChange, trust_changes, trust_of
from ftctl.recipe.dag import find_cycle
from ftctl.recipe.refs import upstream_of
from ftctl.workspace import Workspace, trusted_key_files
from ftctl.yamlio import display_path

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from ftctl.cache.stat import StatCache
    from ftctl.lock.lockfile import Lockfile
    from ftctl.recipe.load import LoadedRecipe


@dataclass
class PlanInputs:
    desired: dict[str, Desired]
    recorded: dict[str, Recorded]
    registry_root: Path | None  # a file:// registry, or None (hf:// is not consulted offline)
    details: PlanDetails
    trust: Trust  # the keys manifests were verified with, and where they came from
    trust_changes: list[TrustChange] = field(default_factory=list)  # working tree vs pinned keys

    def save_memo(self) -> None:
        """Keep what explaining the plan computed (call after make_plan)."""
        self.details.store.save()

    def in_registry(self, name: str, fingerprint: str) -> bool:
        if self.registry_root is None:
            return False
        hexpart = fingerprint.removeprefix("sha256:")
        # Under this name, or under any (the registry's fingerprint index): apply checks the
        # artifact against its provenance before restoring it.
        return (self.registry_root / name / hexpart).is_dir() or (
            self.registry_root / ".index" / f"{hexpart}.json"
        ).is_file()


def gather(workspace: Workspace, *, memo: bool = True, trust: Trust | None = None) -> PlanInputs:
    """Desired and recorded state; call ``save_memo()`` once the plan is made (it keeps what was computed).

    ``trust``: the keys to verify manifests with (default: :func:`trust_of`, which honours
    FTCTL_TRUSTED_KEYS and FTCTL_TRUST_REF).
    """
    root = workspace.root
    dvc_repo = find_repo(root)
    trust = trust if trust is not None else trust_of(workspace)
    store = (
        PlanMemo.of(root, environment(root, workspace.config_path, dvc_repo), trust.digest())
        if memo
        else PlanMemo.disabled(root)
    )
    paths = _recipe_files(workspace)
    details = PlanDetails(workspace, paths, store, trust)
    desired = _desired(workspace, paths, store, dvc_repo, details)
    recorded = _recorded(root, store, trust, details)
    registry = workspace.config.registry
    registry_root = (root / registry[len("file://") :]) if registry.startswith("file://") else None
    changes = trust_changes(workspace, trust)
    return PlanInputs(desired, recorded, registry_root, details, trust, changes)


def _recipe_files(workspace: Workspace) -> dict[str, Path]:
    """Every recipe file by name; two files for one name are refused as validate refuses them.

    Never planned from the memo: which of the two a memo entry came from cannot be told.
    """
    files = workspace.recipe_paths()
    paths = {p.stem: p for p in files}
    if len(paths) < len(files):
        from ftctl.errors import ValidationFailed
        from ftctl.recipe.check import check_paths

        report = check_paths(
            [p for p in files if sum(q.stem == p.stem for q in files) > 1], workspace.root
        )
        raise ValidationFailed(report.problems)
    return paths


def _desired(
    workspace: Workspace,
    paths: dict[str, Path],
    store: PlanMemo,
    dvc_repo: Path | None,
    details: PlanDetails,
) -> dict[str, Desired]:
    memos: dict[str, RecipeMemo] = {}
    locks = os.fspath(locks_dir(workspace.root))  # string joins: thousands of recipes
    for name in paths:
        found = store.recipe(name, dvc_repo, paths[name], os.path.join(locks, f"{name}.lock"))
        if found is not None and _still_valid(found, name, paths, workspace):
            memos[name] = found
    todo = set(paths) - set(memos)
    if find_cycle({n: m.upstream for n, m in memos.items()}):
        todo = set(paths)  # cannot happen for memos of fresh locks; recompute to report it properly
    computed: dict[str, Desired] = {}
    while todo:
        computed = _compute(workspace, paths, todo, store, dvc_repo, details)
        # A memo built on a recomputed upstream is valid only if its lock pinned that fingerprint.
        moved = {
            name
            for name, m in memos.items()
            if name not in computed
            and m.upstream in computed
            and computed[m.upstream].fingerprint != m.upstream_fingerprint
        }
        if not moved:
            break
        todo |= moved
        for name in moved:
            del memos[name]
    desired = {
        name: Desired(name, m.fingerprint, m.publish, m.upstream) for name, m in memos.items()
    }
    details.accelerators.update((name, m.accelerator) for name, m in memos.items())
    desired.update(computed)
    return {name: desired[name] for name in sorted(desired)}


def _still_valid(memo: RecipeMemo, name: str, paths: dict[str, Path], workspace: Workspace) -> bool:
    """The checks ``validate`` makes across recipes, on the memo's summary."""
    if memo.upstream is not None and (memo.upstream == name or memo.upstream not in paths):
        return False
    return not workspace.config_valid or memo.executor in workspace.executor_names


def _compute(
    workspace: Workspace,
    paths: dict[str, Path],
    names: set[str],
    store: PlanMemo,
    dvc_repo: Path | None,
    details: PlanDetails,
) -> dict[str, Desired]:
    """Validate and lock ``names`` (and what they build on) offline, as `ftctl lock --check` would."""
    from ftctl.cache.parse import ParseCache
    from ftctl.cache.stat import StatCache
    from ftctl.errors import ValidationFailed
    from ftctl.lock.fingerprint import training_config
    from ftctl.lock.resolve import compute_locks
    from ftctl.recipe.check import check_paths

    root = workspace.root
    parsed = ParseCache.of(root)
    stat = StatCache.of(root)
    loaded: dict[str, LoadedRecipe] = {}
    pending = set(names)
    while pending:
        report = check_paths([paths[n] for n in sorted(pending)], root, parsed)
        if report.problems:
            raise ValidationFailed(report.problems)
        loaded.update((item.name, item) for item in report.recipes)
        pending = {
            up
            for item in loaded.values()
            if (up := upstream_of(item.recipe.base_model)) is not None
            and up in paths
            and up not in loaded
        }
    report_ = compute_locks(
        workspace, loaded, sorted(loaded), network=False, cache=stat, parse_cache=parsed
    )
    stat.save()
    parsed.save()
    stale = [o for o in report_.outcomes if o.status != "fresh"]
    if stale:
        shown = ", ".join(f"{o.shown} ({o.status})" for o in stale)
        raise FtctlError(
            f"locks are not up to date: {shown}", hint="run `ftctl lock` and commit the locks"
        )
    out: dict[str, Desired] = {}
    for outcome in report_.outcomes:
        if outcome.new is None:  # fresh locks always have one; a stale lock was refused above
            raise FtctlError(f"{outcome.shown}: {outcome.stale_reason}", hint="run `ftctl lock`")
        item = loaded[outcome.name]
        upstream = upstream_of(item.recipe.base_model)
        publish = workspace.publish_target(item.name, item.recipe.ftctl.publish)
        out[item.name] = Desired(item.name, outcome.new.fingerprint, publish, upstream)
        accelerator = _accelerator(workspace, item.recipe.ftctl)
        config = outcome.config if outcome.config is not None else training_config(item.recipe)
        details.known(item.name, outcome.new, config, accelerator)
        pinned = getattr(outcome.new.base_model, "fingerprint", None) if upstream else None
        summary = {
            "fingerprint": outcome.new.fingerprint,
            "publish": publish,
            "upstream": upstream,
            "upstream_fingerprint": pinned,
            "executor": item.recipe.ftctl.executor,
            "accelerator": accelerator,
            "dvc_locks": outcome.used_dvc_locks,
        }
        store.put_recipe(item.name, summary, outcome.deps, dvc_repo, (item.path, outcome.path))
        store.put_config(outcome.new.recipe.digest, config)
    return out


def _recorded(
    root: Path, store: PlanMemo, trust: Trust, details: PlanDetails
) -> dict[str, Recorded]:
    """Every recipe's verified manifests (newest finishedOn is current); the rest rejected with a reason."""
    recorded = {}
    for name, state in read_records(root, trust.keys, memo=store).items():
        current = state.current
        if current is not None:
            details.current[name] = current.path
            details.current_digest[name] = current.summary.digest
        recorded[name] = Recorded(
            name,
            _run(current) if current is not None else None,
            frozenset(r.fingerprint for r in state.records),
            tuple((r.shown, r.reason) for r in state.rejected),
        )
    return recorded


def _run(record: Record) -> Run:
    summary = record.summary
    return Run(
        summary.fingerprint, summary.finished_on, summary.publish, record.shown, summary.external
    )


@dataclass
class PlanDetails:
    """A recipe's lock, training config and current statement, loaded only to explain or estimate it."""

    workspace: Workspace
    paths: dict[str, Path]
    store: PlanMemo
    trust: Trust
    current: dict[str, Path] = field(default_factory=dict)  # name -> its current manifest
    current_digest: dict[str, str] = field(
        default_factory=dict
    )  # name -> sha256 of that manifest's bytes
    accelerators: dict[str, str | None] = field(default_factory=dict)
    _configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _locks: dict[str, Lockfile] = field(default_factory=dict)
    _params: dict[str, int | None] = field(default_factory=dict)
    _trusted: dict[str, Ed25519PublicKey] | None = None

    def known(
        self, name: str, lock: Lockfile, config: dict[str, Any], accelerator: str | None
    ) -> None:
        self._locks[name], self._configs[name], self.accelerators[name] = lock, config, accelerator

    def reasons(self, name: str) -> Iterable[Reason]:
        lock_digest = hashlib.sha256(read_small(lock_path(self.workspace.root, name))).hexdigest()
        manifest_digest = self.current_digest[name]
        known = self.store.reasons(manifest_digest, lock_digest)
        if known is None:
            from ftctl.plan.planner import diff_reasons
            from ftctl.provenance.manifest import verify_file

            if self._trusted is None:
                self._trusted = self.trust.keys()
            manifest = verify_file(self.current[name], self._trusted)
            found = list(diff_reasons(manifest.statement, self._lock(name), self._config(name)))
            known = [(r.kind, r.path, r.old, r.new) for r in found]
            self.store.put_reasons(manifest_digest, lock_digest, known)
        return [Reason(*r) for r in known]

    def estimate(self, name: str) -> Estimate | None:
        from ftctl.plan.estimate import estimate

        return estimate(
            self._lock(name),
            self._config(name),
            self.accelerators.get(name),
            self._base_params(name),
        )

    def _base_params(self, name: str) -> int | None:
        if name not in self._params:
            from ftctl.lock.lockfile import RecipePin
            from ftctl.plan.estimate import base_params

            pin = self._lock(name).base_model
            upstream = pin.ref.removeprefix("recipe:") if isinstance(pin, RecipePin) else None
            above = (
                self._base_params(upstream)
                if upstream is not None and upstream in self.paths
                else None
            )
            self._params[name] = base_params(self._lock(name), self.workspace.root, above)
        return self._params[name]

    def _config(self, name: str) -> dict[str, Any]:
        if name not in self._configs:
            found = self.store.config(self._lock(name).recipe.digest)
            if found is None:
                from ftctl.lock.fingerprint import training_config
                from ftctl.recipe.load import load_recipe

                found = training_config(load_recipe(self.paths[name]).recipe)
            self._configs[name] = found
        return self._configs[name]

    def _lock(self, name: str) -> Lockfile:
        if name not in self._locks:
            from ftctl.lock.lockfile import load_lock

            path = lock_path(self.workspace.root, name)
            self._locks[name] = load_lock(path, display_path(path))
        return self._locks[name]


def input_digests(
    workspace: Workspace, cache: StatCache | None = None
) -> dict[str, dict[str, str]]:
    """sha256 of every file a plan depends on (recipes, locks, pins, manifests, trusted keys)."""
    from ftctl.cache.stat import StatCache
    from ftctl.hashing import file_digest

    root = workspace.root
    stat = cache or StatCache.disabled()

    def rel(path: Path) -> str:
        return path.relative_to(root).as_posix()

    locks = locks_dir(root)
    files = {
        "recipes": workspace.recipe_paths(),
        "locks": sorted(locks.glob("*.lock")),
        "pins": sorted({*locks.glob("*.txt"), root / workspace.config.pins}),
        "manifests": [path for _, path in manifest_files(root)],
        "keys": trusted_key_files(root, workspace.config.trust),
    }
    return {
        kind: {rel(p): file_digest(p, "sha256", stat) for p in paths if p.is_file()}
        for kind, paths in files.items()
    }


def _accelerator(workspace: Workspace, block: object) -> str | None:
    resources = getattr(block, "resources", None)
    declared = getattr(resources, "accelerators", None)
    if declared:
        return str(declared)
    executor = workspace.config.executors.get(getattr(block, "executor", "local"))
    value = getattr(executor, "accelerators", None)
    return str(value) if value is not None else None


def plan_workspace(
    workspace: Workspace,
    trust: Trust,
    *,
    targets: tuple[str, ...] = (),
    replace: tuple[str, ...] = (),
) -> Plan:
    """The plan of the workspace (plan and apply make it the same way); keeps the memo."""
    from ftctl.errors import UsageError
    from ftctl.plan.planner import make_plan

    inputs = gather(workspace, trust=trust)
    known = set(inputs.desired) | set(inputs.recorded)
    for name in (*targets, *replace):
        if name not in known:
            from ftctl.recipe.messages import did_you_mean

            raise UsageError(f"no recipe named '{name}'", hint=did_you_mean(name, sorted(known)))
    plan = make_plan(
        inputs.desired,
        inputs.recorded,
        details=inputs.details,
        in_registry=inputs.in_registry,
        replace=replace,
        targets=targets,
        trust_changes=[(c.change, c.file, c.keyid) for c in inputs.trust_changes],
        trust=inputs.trust.source,
    )
    inputs.save_memo()
    return plan
