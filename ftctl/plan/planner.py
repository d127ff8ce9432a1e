"""Plan: what must train, and why. A pure function of desired and recorded state.

Desired = each recipe's fresh lock (its fingerprint, publish target and
upstream). Recorded = a summary of the verified manifests (``ftctl.provenance.records``).
Why a recipe retrains, and what its training would cost, are asked of
``Details`` only for the recipes that train, so an unchanged workspace is
planned from summaries (``ftctl.cache.planmemo``) without loading every lock and
manifest. Nothing here reads files, talks to a network or imports the
training stack; ``plan_inputs`` gathers the data and the renderers print it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ftctl.canonical import flatten
from ftctl.recipe.dag import topological_order

if TYPE_CHECKING:  # the models cost ~100 ms to import; an unchanged plan never needs them
    from ftctl.lock.lockfile import Lockfile
    from ftctl.provenance.statement import Statement

SYMBOLS = {
    "create": "+",
    "retrain": "-/+",
    "restore": "<=",
    "republish": "~",
    "retire": "-",
    "no-op": " ",
}


@dataclass(frozen=True)
class Reason:
    """Why a recipe changes: a kind and, where it applies, what went from old to new."""

    kind: str  # recipe_changed, base_model_changed, dataset_changed, pins_changed, trainer_changed,
    #            upstream_changed, forced, new_recipe, publish_changed, recipe_deleted, restorable,
    #            inputs_changed
    path: str | None = None
    old: Any = None
    new: Any = None

    def text(self) -> str:
        if self.path is None and self.old is None and self.new is None:
            return self.kind
        where = f"{self.path}: " if self.path else ""
        return f"{where}{_show(self.old)} -> {_show(self.new)}"


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = str(value)
    return text[:19] + "..." if text.startswith("sha256:") else text


@dataclass(frozen=True)
class Estimate:
    """Labelled as an estimate everywhere it is shown."""

    tokens: int | None
    params: int | None
    accelerator: str | None
    gpu_hours: float | None
    basis: str  # how it was computed, or why part of it is unknown


@dataclass(frozen=True)
class Desired:
    name: str
    fingerprint: str  # the fresh lock's
    publish: str
    upstream: str | None = None


@dataclass(frozen=True)
class Run:
    """What plan needs of a verified manifest."""

    fingerprint: str
    finished_on: str
    publish: str | None
    path: str  # as shown to the user
    external: bool = False  # attested with --external: ftctl did not verify its inputs


@dataclass(frozen=True)
class Recorded:
    name: str
    current: Run | None
    fingerprints: frozenset[str] = frozenset()  # every verified manifest's, current included
    rejected: tuple[tuple[str, str], ...] = ()


class Details(Protocol):
    """The full records behind a summary, loaded only for the recipes that change."""

    def reasons(self, name: str) -> Iterable[Reason]:
        """What differs between the recipe's current run and its fresh lock (``diff_reasons``)."""

    def estimate(self, name: str) -> Estimate | None:
        """What training the recipe would cost."""


class _NoDetails:
    def reasons(self, name: str) -> Iterable[Reason]:
        return ()

    def estimate(self, name: str) -> Estimate | None:
        return None


@dataclass(frozen=True)
class Change:
    recipe: str
    action: str
    reasons: tuple[Reason, ...]
    fingerprint: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    estimate: Estimate | None = None


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)
    # Key files the change under review adds, removes or replaces against the pinned trust
    # (``--trust-ref``): listed, never trusted. Each is (change, file, keyid or None).
    trust_changes: tuple[tuple[str, str, str | None], ...] = ()
    trust: str = "the working tree"  # where the trusted keys were read from

    def count(self, *actions: str) -> int:
        return sum(c.action in actions for c in self.changes)

    @property
    def has_changes(self) -> bool:
        return any(c.action != "no-op" for c in self.changes)

    def summary(self) -> str:
        if not self.has_changes:
            return "No changes. Every recipe matches its recorded run."
        return (
            f"Plan: {self.count('create', 'retrain')} to train, {self.count('restore')} to restore, "
            f"{self.count('republish')} to republish, {self.count('retire')} to retire."
        )


def make_plan(
    desired: dict[str, Desired],
    recorded: dict[str, Recorded],
    *,
    details: Details | None = None,
    in_registry: Callable[[str, str], bool] = lambda name, fp: False,
    replace: Iterable[str] = (),
    targets: Iterable[str] = (),
    trust_changes: Iterable[tuple[str, str, str | None]] = (),
    trust: str = "the working tree",
) -> Plan:
    """Every recipe's action, upstream first; retired recipes last."""
    forced = set(replace)
    known = details or _NoDetails()
    changes: dict[str, Change] = {}
    edges = {name: d.upstream if d.upstream in desired else None for name, d in desired.items()}
    # The fingerprint does not depend on a recipe's name: a renamed recipe, or one identical in
    # training terms to another, restores the artifact any recipe's manifest records.
    everywhere = frozenset(fp for rec in recorded.values() for fp in rec.fingerprints)

    def recorded_anywhere(name: str, fp: str) -> str | None:
        rec = recorded.get(name)
        if rec is not None and fp in rec.fingerprints:
            return "an older manifest"
        if fp in everywhere:
            return "another recipe's manifest"
        return "the registry" if in_registry(name, fp) else None

    for name in topological_order(edges):
        changes[name] = _change(
            desired[name], recorded.get(name), changes, name in forced, recorded_anywhere, known
        )
    for name in sorted(set(recorded) - set(desired)):
        rec = recorded[name]
        if rec.current is not None:
            changes[name] = Change(
                name,
                "retire",
                (Reason("recipe_deleted", None, None, None),),
                None,
                _before(rec),
                None,
            )
    selected = _with_dependants(set(targets), edges) if targets else None
    warnings = tuple(
        f"{path}: {reason}; ignored (treated as absent)"
        for rec in recorded.values()
        for path, reason in rec.rejected
    )
    kept = tuple(c for name, c in changes.items() if selected is None or name in selected)
    return Plan(kept, warnings, tuple(trust_changes), trust)


def _with_dependants(targets: set[str], edges: dict[str, str | None]) -> set[str]:
    selected = set(targets)
    grew = True
    while grew:
        grew = False
        for name, upstream in edges.items():
            if upstream in selected and name not in selected:
                selected.add(name)
                grew = True
    return selected


def _before(rec: Recorded) -> dict[str, Any] | None:
    if rec.current is None:
        return None
    run = rec.current
    return {
        "fingerprint": run.fingerprint,
        "finishedOn": run.finished_on,
        "manifest": run.path,
        "publish": run.publish,
        "external": run.external,
    }


def _after(d: Desired) -> dict[str, Any]:
    return {"fingerprint": d.fingerprint, "publish": d.publish, "lock": f"lockfiles/{d.name}.lock"}


def _change(
    d: Desired,
    rec: Recorded | None,
    done: dict[str, Change],
    forced: bool,
    restorable_from: Callable[[str, str], str | None],
    details: Details,
) -> Change:
    fp = d.fingerprint
    current = rec.current if rec is not None else None
    before = _before(rec) if rec is not None else None
    upstream = done.get(d.upstream) if d.upstream else None
    upstream_reason: tuple[Reason, ...] = ()
    if upstream is not None and upstream.action in ("create", "retrain", "restore"):
        old = (upstream.before or {}).get("fingerprint")
        upstream_reason = (Reason("upstream_changed", d.upstream, old, upstream.fingerprint),)
    where = restorable_from(d.name, fp)
    restorable = where is not None
    if current is None:
        if restorable and not forced:
            reasons = (Reason("restorable", None, None, f"fingerprint recorded in {where}"),)
            return Change(d.name, "restore", reasons, fp, before, _after(d), None)
        reasons = (Reason("new_recipe"), *upstream_reason, *((Reason("forced"),) if forced else ()))
        return Change(d.name, "create", reasons, fp, before, _after(d), details.estimate(d.name))
    if current.fingerprint == fp and not forced:
        old_publish = current.publish
        if old_publish != d.publish:
            reasons = (Reason("publish_changed", "ftctl.publish", old_publish, d.publish),)
            return Change(d.name, "republish", reasons, fp, before, _after(d), None)
        return Change(d.name, "no-op", (), fp, before, _after(d), None)
    # The upstream's new fingerprint is the base model's change: say it once, as upstream_changed.
    found = [
        *upstream_reason,
        *(
            r
            for r in details.reasons(d.name)
            if not (upstream_reason and r.kind == "base_model_changed")
        ),
    ]
    if forced:
        found.append(Reason("forced"))
    elif not found:
        found.append(Reason("inputs_changed", "fingerprint", current.fingerprint, fp))
    if restorable and not forced and fp != current.fingerprint:
        return Change(
            d.name, "restore", (*found, Reason("restorable")), fp, before, _after(d), None
        )
    return Change(d.name, "retrain", tuple(found), fp, before, _after(d), details.estimate(d.name))


def diff_reasons(current: Statement, lock: Lockfile, config: dict[str, Any]) -> Iterable[Reason]:
    """What differs between the recorded run and a fresh lock, with old -> new values."""
    from ftctl.lock.lockfile import pin_descriptor

    definition = current.predicate.buildDefinition
    old_config = flatten(definition.internalParameters.config)
    new_config = flatten(config)
    for path in _ordered(old_config, new_config):
        if old_config.get(path, _MISSING) != new_config.get(path, _MISSING):
            yield Reason("recipe_changed", path, old_config.get(path), new_config.get(path))
    deps = {dep.name: dep for dep in definition.resolvedDependencies if dep.name}

    def changed(name: str, pin: Any, kind: str = "model") -> Reason | None:
        new = pin_descriptor(name, pin, kind)
        old = deps.get(name)
        old_key = (old.uri, old.digest) if old is not None else None
        if old_key != (new.get("uri"), new.get("digest")):
            return Reason(
                "dataset_changed" if name.startswith("datasets") else "base_model_changed",
                name,
                _identity(old.uri, old.digest) if old is not None else None,
                _identity(new.get("uri"), new.get("digest")),
            )
        return None

    for reason in (
        changed("base_model", lock.base_model),
        changed("lora_model_dir", lock.lora_model_dir) if lock.lora_model_dir else None,
        *(changed(f"datasets[{i}]", pin, "dataset") for i, pin in enumerate(lock.datasets)),
    ):
        if reason is not None:
            yield reason
    old_pins = (deps["pins"].annotations or {}).get("packages", {}) if "pins" in deps else {}
    new_pins = lock.pins.packages
    for package in sorted(set(old_pins) | set(new_pins)):
        if old_pins.get(package) != new_pins.get(package):
            yield Reason("pins_changed", package, old_pins.get(package), new_pins.get(package))
    old_trainer = current.predicate.runDetails.builder.version.get("ftctl")
    if old_trainer != lock.trainer.get("ftctl"):
        yield Reason("trainer_changed", "ftctl", old_trainer, lock.trainer.get("ftctl"))


_MISSING = object()


def _identity(uri: str | None, digest: dict[str, str] | None) -> str:
    value = next(iter((digest or {}).values()), "")
    return f"{uri} ({value[:12]})" if value and value[:12] not in (uri or "") else str(uri)


def _ordered(*tables: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for table in tables:
        for key in table:
            seen.setdefault(key, None)
    return list(seen)
