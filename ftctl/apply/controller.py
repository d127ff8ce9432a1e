"""Apply a plan: each change through the controller, upstream first, and a closing summary.

The plan says what to do; nothing else is decided here. Every recipe's lock
must still be fresh at the plan's fingerprint. A failed change stops the
apply, or with ``keep_going`` stops only the recipes built on it. What a
change leaves behind when apply is killed is picked up by the next apply:
see ftctl/apply/actions.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ftctl.apply import actions, rundirs
from ftctl.apply.actions import Context, Done, Target
from ftctl.errors import FtctlError
from ftctl.executors.base import Event
from ftctl.lock.resolve import compute_locks, load_workspace_recipes
from ftctl.provenance.manifest import ManifestError, VerifiedManifest, verify_artifacts
from ftctl.provenance.records import read_records
from ftctl.recipe.refs import upstream_of
from ftctl.registries.select import open_registry

ACTED = ("create", "retrain", "restore", "republish", "retire")


@dataclass(frozen=True)
class Step:
    recipe: str
    action: str
    fingerprint: str | None


@dataclass(frozen=True)
class Outcome:
    recipe: str
    action: str
    status: str  # trained, restored, published, retired, failed, skipped
    seconds: float
    gpu_hours: float = 0.0
    manifest: str | None = None
    message: str | None = None  # why it failed or was skipped
    resumed_from: int | None = None


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> bool:
        return any(o.status in ("failed", "skipped") for o in self.outcomes)

    @property
    def gpu_hours(self) -> float:
        return sum(o.gpu_hours for o in self.outcomes)


class Reporter(Protocol):
    def begin(self, step: Step) -> None: ...

    def progress(self, step: Step, event: Event) -> None: ...

    def end(self, outcome: Outcome) -> None: ...


def steps_of(changes: Iterable[dict[str, Any]]) -> list[Step]:
    """The actions of a plan's JSON ``changes``, in its order (upstream first)."""
    steps = []
    for change in changes:
        recipe, action, fp = change.get("recipe"), change.get("action"), change.get("fingerprint")
        if not isinstance(recipe, str) or action not in (*ACTED, "no-op"):
            raise FtctlError(f"the plan has a malformed change: {str(change)[:80]}")
        steps.append(Step(recipe, str(action), fp if isinstance(fp, str) else None))
    return steps


def apply_steps(
    ctx: Context, steps: list[Step], reporter: Reporter, *, keep_going: bool, gpus: int = 0
) -> Summary:
    """Carry out every acting step in order; the summary of what happened to each."""
    clock = time.monotonic()
    root = ctx.workspace.root
    acting = [s for s in steps if s.action in ACTED]
    summary = Summary()
    if not acting:
        return summary
    recipes = load_workspace_recipes(ctx.workspace)
    records = read_records(root, lambda: ctx.trusted)
    verified = [r.manifest for state in records.values() for r in state.records if r.manifest]
    wanted = sorted(
        {s.recipe for s in acting if s.action != "retire"} | _upstreams(acting, recipes)
    )
    report = compute_locks(ctx.workspace, recipes, wanted, network=False) if wanted else None
    locks = {o.name: o for o in (report.outcomes if report else [])}
    artifacts: dict[str, Path] = {}
    broken: set[str] = set()  # failed or skipped: what is built on them is skipped
    stopped = False
    for step in acting:
        started = time.monotonic()
        upstream = (
            upstream_of(recipes[step.recipe].recipe.base_model) if step.recipe in recipes else None
        )
        if stopped:
            summary.outcomes.append(
                _outcome(step, "skipped", started, "not started: an earlier change failed")
            )
            continue
        if upstream in broken:
            broken.add(step.recipe)
            summary.outcomes.append(
                _outcome(step, "skipped", started, f"its upstream {upstream} failed")
            )
            continue
        reporter.begin(step)
        try:
            if step.action == "retire":
                from ftctl.apply.retire import retire

                done = retire(ctx, step.recipe, records.get(step.recipe))
            else:
                base = _upstream_artifact(ctx, upstream, artifacts, records) if upstream else None
                target = _target(ctx, step, recipes, locks, base)
                done = _act(ctx, step, target, verified, reporter)
                artifacts[step.recipe] = done.artifact
        except FtctlError as exc:
            broken.add(step.recipe)
            outcome = _outcome(step, "failed", started, exc.problem.render())
            summary.outcomes.append(outcome)
            reporter.end(outcome)
            stopped = not keep_going
            continue
        status = {"create": "trained", "retrain": "trained", "restore": "restored"}.get(
            step.action, "published" if step.action == "republish" else "retired"
        )
        outcome = Outcome(
            step.recipe,
            step.action,
            status,
            time.monotonic() - started,
            done.trained_s * gpus / 3600.0,
            done.manifest.relative_to(root).as_posix(),
            None,
            done.resumed_from,
        )
        summary.outcomes.append(outcome)
        reporter.end(outcome)
    summary.seconds = time.monotonic() - clock
    return summary


def _act(
    ctx: Context, step: Step, target: Target, verified: list[VerifiedManifest], reporter: Reporter
) -> Done:
    def on_event(event: Event) -> None:
        reporter.progress(step, event)

    if step.action in ("create", "retrain"):
        return actions.train(ctx, target, on_event)
    source = actions.find_source(ctx, target.lock.fingerprint, target.registry, verified)
    if source is None:
        raise FtctlError(
            f"{step.recipe}: no registry or recorded publication holds fingerprint "
            f"{target.lock.fingerprint[7:19]} any more",
            hint=f"train it instead: ftctl apply --replace {step.recipe}",
        )
    return actions.restore(ctx, target, source)


def _target(
    ctx: Context, step: Step, recipes: dict[str, Any], locks: dict[str, Any], base: Path | None
) -> Target:
    if step.recipe not in recipes:
        raise FtctlError(f"the plan names recipe {step.recipe}, which is gone", hint="plan again")
    outcome = locks.get(step.recipe)
    if outcome is None or outcome.status != "fresh" or outcome.old is None:
        status = outcome.status if outcome is not None else "missing"
        raise FtctlError(
            f"lockfiles/{step.recipe}.lock is {status}",
            hint=f"run `ftctl lock {step.recipe}`, commit it, and plan again",
        )
    if step.fingerprint is not None and outcome.old.fingerprint != step.fingerprint:
        raise FtctlError(
            f"{step.recipe}: the lock's fingerprint is no longer the plan's",
            hint="plan again: the plan is stale",
        )
    loaded = recipes[step.recipe]
    publish = ctx.workspace.publish_target(step.recipe, loaded.recipe.ftctl.publish)
    registry = open_registry(publish, ctx.workspace.root)
    return Target(loaded, outcome.old, outcome.path, registry, base)


def _upstreams(steps: list[Step], recipes: dict[str, Any]) -> set[str]:
    found = set()
    for step in steps:
        if step.recipe in recipes:
            upstream = upstream_of(recipes[step.recipe].recipe.base_model)
            if upstream is not None and upstream in recipes:
                found.add(upstream)
    return found


def _upstream_artifact(
    ctx: Context, upstream: str, artifacts: dict[str, Path], records: dict[str, Any]
) -> Path:
    """The artifact a dependant trains on: made by this apply, else the upstream's recorded one."""
    if upstream in artifacts:
        return artifacts[upstream]
    state = records.get(upstream)
    current = state.current if state is not None else None
    if current is None or current.manifest is None:
        raise FtctlError(
            f"{upstream} has no recorded run to build on", hint=f"apply {upstream} first"
        )
    manifest: VerifiedManifest = current.manifest
    directory = rundirs.run_dir(ctx.workspace.root, manifest.statement.fingerprint)
    for candidate in (directory / "adapter", directory / "restored"):
        try:
            verify_artifacts(manifest, candidate)
            return candidate
        except ManifestError:
            continue
    source = actions.find_source(ctx, manifest.statement.fingerprint, None, [manifest])
    if source is None:
        raise FtctlError(
            f"{upstream}'s recorded artifact is neither here nor published",
            hint=f"retrain it: ftctl apply --replace {upstream}",
        )
    actions.fetch_verified(ctx, source, directory / "restored")
    return directory / "restored"


def _outcome(step: Step, status: str, started: float, message: str) -> Outcome:
    return Outcome(step.recipe, step.action, status, time.monotonic() - started, message=message)


Warn = Callable[[str], None]
