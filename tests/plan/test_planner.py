"""The pure planner and the reason differ, table-driven: no workspace, no git, no files.

``make_plan`` is given desired and recorded state as plain values and a small ``Details``
that answers with the reasons and estimates each case names; ``diff_reasons`` is given a
statement and a lock built in memory, shaped as attest and lock write them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from ftctl.lock.lockfile import Lockfile, pin_descriptor
from ftctl.plan.planner import (
    Desired,
    Estimate,
    Plan,
    Reason,
    Recorded,
    Run,
    diff_reasons,
    make_plan,
)
from ftctl.provenance.statement import BUILD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, Statement


def fp(char: str) -> str:
    """A fingerprint that reads as its letter in a table."""
    return "sha256:" + char * 64


def registry(name: str) -> str:
    return f"file://registry/{name}"


def want(name: str, fingerprint: str, upstream: str | None = None, publish: str = "") -> Desired:
    return Desired(name, fingerprint, publish or registry(name), upstream)


def run(fingerprint: str, publish: str | None = None) -> Run:
    return Run(fingerprint, "2026-11-24T11:00:00Z", publish, f"manifests/{fingerprint[7:9]}.json")


def have(
    name: str,
    current: str | None,
    *older: str,
    publish: str = "",
    rejected: tuple[tuple[str, str], ...] = (),
) -> Recorded:
    """NAME's verified manifests: the current one's fingerprint and older ones'."""
    now = run(current, publish or registry(name)) if current else None
    return Recorded(name, now, frozenset({*older, *([current] if current else [])}), rejected)


ESTIMATE = Estimate(1000, 10, None, None, "a test's estimate")


@dataclass
class GivenDetails:
    """Test data standing in for the full records: the reasons each recipe is given."""

    given: dict[str, tuple[Reason, ...]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)  # every recipe reasons or estimate was asked of

    def reasons(self, name: str) -> Iterable[Reason]:
        self.asked.append(name)
        return self.given.get(name, ())

    def estimate(self, name: str) -> Estimate | None:
        self.asked.append(name)
        return ESTIMATE


LORA_8_TO_16 = Reason("recipe_changed", "lora_r", 8, 16)
LORA_16_TO_8 = Reason("recipe_changed", "lora_r", 16, 8)
BASE_MOVED = Reason("base_model_changed", "base_model", "recipe:alpha (a)", "recipe:alpha (b)")


@dataclass(frozen=True)
class Case:
    desired: list[Desired]
    recorded: list[Recorded]
    expected: list[tuple[str, str, tuple[Reason, ...]]]  # (recipe, action, reasons), in order
    reasons: dict[str, tuple[Reason, ...]] = field(default_factory=dict)
    in_registry: frozenset[tuple[str, str]] = frozenset()
    replace: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


CASES = {
    "create": Case(
        [want("alpha", fp("a"))],
        [],
        [("alpha", "create", (Reason("new_recipe"),))],
    ),
    "no-op": Case(
        [want("alpha", fp("a"))],
        [have("alpha", fp("a"))],
        [("alpha", "no-op", ())],
    ),
    "retrain-with-reasons-from-details": Case(
        [want("alpha", fp("b"))],
        [have("alpha", fp("a"))],
        [("alpha", "retrain", (LORA_8_TO_16,))],
        reasons={"alpha": (LORA_8_TO_16,)},
    ),
    "inputs-changed-when-details-give-no-reason": Case(
        [want("alpha", fp("b"))],
        [have("alpha", fp("a"))],
        [("alpha", "retrain", (Reason("inputs_changed", "fingerprint", fp("a"), fp("b")),))],
    ),
    "restore-from-an-older-manifest": Case(
        [want("alpha", fp("a"))],
        [have("alpha", fp("b"), fp("a"))],
        [("alpha", "restore", (LORA_16_TO_8, Reason("restorable")))],
        reasons={"alpha": (LORA_16_TO_8,)},
    ),
    "restore-from-the-registry": Case(
        [want("alpha", fp("b"))],
        [have("alpha", fp("a"))],
        [("alpha", "restore", (LORA_8_TO_16, Reason("restorable")))],
        reasons={"alpha": (LORA_8_TO_16,)},
        in_registry=frozenset({("alpha", fp("b"))}),
    ),
    "restore-from-the-registry-with-no-record": Case(
        [want("alpha", fp("a"))],
        [],
        [
            (
                "alpha",
                "restore",
                (Reason("restorable", None, None, "fingerprint recorded in the registry"),),
            )
        ],
        in_registry=frozenset({("alpha", fp("a"))}),
    ),
    "restore-from-an-older-manifest-with-no-current": Case(
        [want("alpha", fp("a"))],
        [have("alpha", None, fp("a"))],
        [
            (
                "alpha",
                "restore",
                (Reason("restorable", None, None, "fingerprint recorded in an older manifest"),),
            )
        ],
    ),
    "republish": Case(
        [want("alpha", fp("a"), publish="hf://acme/alpha")],
        [have("alpha", fp("a"))],
        [
            (
                "alpha",
                "republish",
                (
                    Reason(
                        "publish_changed",
                        "ftctl.publish",
                        "file://registry/alpha",
                        "hf://acme/alpha",
                    ),
                ),
            )
        ],
    ),
    "retire-last-by-name": Case(
        [want("beta", fp("b"))],
        [
            have("gamma", fp("c")),
            have("alpha", fp("a")),
            have("beta", fp("b")),
            have("delta", fp("d")),
            have("zeta", fp("z")),
        ],
        [
            ("beta", "no-op", ()),
            ("alpha", "retire", (Reason("recipe_deleted"),)),
            ("delta", "retire", (Reason("recipe_deleted"),)),
            ("gamma", "retire", (Reason("recipe_deleted"),)),
            ("zeta", "retire", (Reason("recipe_deleted"),)),
        ],
    ),
    "nothing-to-retire-without-a-current-run": Case(
        [],
        [have("alpha", None, rejected=(("manifests/alpha/x.intoto.json", "bad signature"),))],
        [],
        warnings=("manifests/alpha/x.intoto.json: bad signature; ignored (treated as absent)",),
    ),
    "forced-on-unchanged": Case(
        [want("alpha", fp("a"))],
        [have("alpha", fp("a"))],
        [("alpha", "retrain", (Reason("forced"),))],
        replace=("alpha",),
    ),
    "forced-on-restorable": Case(
        [want("alpha", fp("a"))],
        [have("alpha", fp("b"), fp("a"))],
        [("alpha", "retrain", (LORA_16_TO_8, Reason("forced")))],
        reasons={"alpha": (LORA_16_TO_8,)},
        replace=("alpha",),
    ),
    "forced-on-restorable-from-the-registry-with-no-record": Case(
        [want("alpha", fp("a"))],
        [],
        [("alpha", "create", (Reason("new_recipe"), Reason("forced")))],
        in_registry=frozenset({("alpha", fp("a"))}),
        replace=("alpha",),
    ),
    "upstream-changed-through-a-chain": Case(
        [want("gamma", fp("g"), "beta"), want("beta", fp("e"), "alpha"), want("alpha", fp("b"))],
        [have("alpha", fp("a")), have("beta", fp("d")), have("gamma", fp("f"))],
        [
            ("alpha", "retrain", (LORA_8_TO_16,)),
            ("beta", "retrain", (Reason("upstream_changed", "alpha", fp("a"), fp("b")),)),
            ("gamma", "retrain", (Reason("upstream_changed", "beta", fp("d"), fp("e")),)),
        ],
        # the base model's change is said once, as upstream_changed; other reasons stay
        reasons={"alpha": (LORA_8_TO_16,), "beta": (BASE_MOVED,), "gamma": (BASE_MOVED,)},
    ),
    "upstream-changed-keeps-the-recipes-own-reasons": Case(
        [want("alpha", fp("b")), want("beta", fp("e"), "alpha")],
        [have("alpha", fp("a")), have("beta", fp("d"))],
        [
            ("alpha", "retrain", (LORA_8_TO_16,)),
            (
                "beta",
                "retrain",
                (Reason("upstream_changed", "alpha", fp("a"), fp("b")), LORA_8_TO_16),
            ),
        ],
        reasons={"alpha": (LORA_8_TO_16,), "beta": (BASE_MOVED, LORA_8_TO_16)},
    ),
    "upstream-restored-is-a-change-downstream": Case(
        [want("alpha", fp("a")), want("beta", fp("e"), "alpha")],
        [have("alpha", fp("b"), fp("a")), have("beta", fp("d"))],
        [
            ("alpha", "restore", (LORA_16_TO_8, Reason("restorable"))),
            ("beta", "retrain", (Reason("upstream_changed", "alpha", fp("b"), fp("a")),)),
        ],
        reasons={"alpha": (LORA_16_TO_8,)},
    ),
    "upstream-created-downstream-created": Case(
        [want("beta", fp("e"), "alpha"), want("alpha", fp("a"))],
        [],
        [
            ("alpha", "create", (Reason("new_recipe"),)),
            (
                "beta",
                "create",
                (Reason("new_recipe"), Reason("upstream_changed", "alpha", None, fp("a"))),
            ),
        ],
    ),
    "upstream-unchanged-keeps-base-model-changed": Case(
        [want("alpha", fp("a")), want("beta", fp("e"), "alpha")],
        [have("alpha", fp("a")), have("beta", fp("d"))],
        [("alpha", "no-op", ()), ("beta", "retrain", (BASE_MOVED,))],
        reasons={"beta": (BASE_MOVED,)},
    ),
    "dag-order-upstream-first-ties-by-name": Case(
        [want("beta", fp("b")), want("alpha", fp("a"), "zeta"), want("zeta", fp("z"))],
        [],
        [
            ("zeta", "create", (Reason("new_recipe"),)),
            (
                "alpha",
                "create",
                (Reason("new_recipe"), Reason("upstream_changed", "zeta", None, fp("z"))),
            ),
            ("beta", "create", (Reason("new_recipe"),)),
        ],
    ),
    "target-selects-the-recipe-and-its-dependants": Case(
        [
            want("alpha", fp("b")),
            want("beta", fp("e"), "alpha"),
            want("gamma", fp("g"), "beta"),
            want("other", fp("o")),
        ],
        [
            have("alpha", fp("a")),
            have("beta", fp("d")),
            have("gamma", fp("f")),
            have("gone", fp("x")),
        ],
        [
            ("alpha", "retrain", (LORA_8_TO_16,)),
            ("beta", "retrain", (Reason("upstream_changed", "alpha", fp("a"), fp("b")),)),
            ("gamma", "retrain", (Reason("upstream_changed", "beta", fp("d"), fp("e")),)),
        ],
        reasons={"alpha": (LORA_8_TO_16,)},
        targets=("alpha",),
    ),
    "target-leaves-out-upstream-recipes": Case(
        [want("alpha", fp("b")), want("beta", fp("e"), "alpha"), want("gamma", fp("g"), "beta")],
        [have("alpha", fp("a")), have("beta", fp("d")), have("gamma", fp("f"))],
        [
            ("beta", "retrain", (Reason("upstream_changed", "alpha", fp("a"), fp("b")),)),
            ("gamma", "retrain", (Reason("upstream_changed", "beta", fp("d"), fp("e")),)),
        ],
        reasons={"alpha": (LORA_8_TO_16,)},
        targets=("beta",),
    ),
    "target-selects-a-retired-recipe": Case(
        [want("alpha", fp("a"))],
        [have("alpha", fp("a")), have("gone", fp("x"))],
        [("gone", "retire", (Reason("recipe_deleted"),))],
        targets=("gone",),
    ),
    "rejected-manifests-become-warnings": Case(
        [want("alpha", fp("a")), want("beta", fp("b"))],
        [
            have(
                "alpha",
                None,
                rejected=(
                    ("manifests/alpha/1.intoto.json", "no signature by a trusted key"),
                    ("manifests/alpha/2.intoto.json", "not valid JSON"),
                ),
            ),
            have(
                "beta", fp("b"), rejected=(("manifests/beta/3.intoto.json", "records another run"),)
            ),
        ],
        [("alpha", "create", (Reason("new_recipe"),)), ("beta", "no-op", ())],
        warnings=(
            "manifests/alpha/1.intoto.json: no signature by a trusted key; ignored (treated as absent)",
            "manifests/alpha/2.intoto.json: not valid JSON; ignored (treated as absent)",
            "manifests/beta/3.intoto.json: records another run; ignored (treated as absent)",
        ),
    ),
}


def plan_case(case: Case, details: GivenDetails | None = None) -> Plan:
    return make_plan(
        {d.name: d for d in case.desired},
        {r.name: r for r in case.recorded},
        details=details or GivenDetails(dict(case.reasons)),
        in_registry=lambda name, fingerprint: (name, fingerprint) in case.in_registry,
        replace=case.replace,
        targets=case.targets,
    )


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_make_plan(case: Case) -> None:
    plan = plan_case(case)
    assert [(c.recipe, c.action, c.reasons) for c in plan.changes] == case.expected
    assert plan.warnings == case.warnings
    for change in plan.changes:
        trains = change.action in ("create", "retrain")
        assert change.estimate == (ESTIMATE if trains else None), change.recipe
        fingerprint = {d.name: d.fingerprint for d in case.desired}.get(change.recipe)
        assert change.fingerprint == fingerprint  # None for a retired recipe


def test_details_are_asked_only_for_recipes_that_change() -> None:
    """An unchanged recipe is planned from its summary alone (the memo's fast path)."""
    details = GivenDetails({"beta": (LORA_8_TO_16,)})
    case = Case(
        [want("alpha", fp("a")), want("beta", fp("e")), want("gamma", fp("g"), publish="hf://x/g")],
        [have("alpha", fp("a")), have("beta", fp("d")), have("gamma", fp("g"))],
        [],
    )
    actions = [(c.recipe, c.action) for c in plan_case(case, details).changes]
    assert actions == [("alpha", "no-op"), ("beta", "retrain"), ("gamma", "republish")]
    assert sorted(set(details.asked)) == ["beta"]


def test_before_and_after_of_a_retrain() -> None:
    case = Case([want("alpha", fp("b"))], [have("alpha", fp("a"))], [])
    [change] = plan_case(case).changes
    assert change.before == {
        "fingerprint": fp("a"),
        "finishedOn": "2026-11-24T11:00:00Z",
        "manifest": "manifests/aa.json",
        "publish": "file://registry/alpha",
        "external": False,
    }
    assert change.after == {
        "fingerprint": fp("b"),
        "publish": "file://registry/alpha",
        "lock": "lockfiles/alpha.lock",
    }


def test_plan_without_details_or_registry() -> None:
    """Details and the registry are optional: no reasons to give means inputs_changed."""
    plan = make_plan({"alpha": want("alpha", fp("b"))}, {"alpha": have("alpha", fp("a"))})
    [change] = plan.changes
    assert (change.action, change.estimate) == ("retrain", None)
    assert change.reasons == (Reason("inputs_changed", "fingerprint", fp("a"), fp("b")),)
    assert plan.summary() == "Plan: 1 to train, 0 to restore, 0 to republish, 0 to retire."


# --- diff_reasons: a recorded statement against a fresh lock and config ----------------

COMMIT_A, COMMIT_C = "a" * 40, "c" * 40
CONFIG: dict[str, Any] = {
    "adapter": "lora",
    "lora_r": 8,
    "datasets": [{"path": "data/train.jsonl", "type": "alpaca"}],
    "learning_rate": 0.001,
}
PACKAGES = {"torch": "==2.13.0", "trl": "==1.16.0"}


def lockfile(
    *,
    revision: str = COMMIT_A,
    dataset: str = fp("1"),
    packages: dict[str, str] | None = None,
    trainer: str = "0.1.0",
    adapter: str | None = None,
) -> Lockfile:
    """A lock as `ftctl lock` writes it: a Hub base model, a local dataset, pins."""
    body: dict[str, Any] = {
        "version": 1,
        "recipe": {"path": "recipes/alpha.yaml", "digest": fp("e")},
        "base_model": {"ref": "org/model", "source": "hf", "revision": revision},
        "datasets": [
            {
                "ref": "data/train.jsonl",
                "source": "local",
                "digest": dataset,
                "size": 36,
                "nfiles": 1,
            }
        ],
        "pins": {
            "path": "lockfiles/requirements.txt",
            "digest": fp("f"),
            "packages": PACKAGES if packages is None else packages,
        },
        "trainer": {"ftctl": trainer},
        "fingerprint": fp("0"),
    }
    if adapter is not None:
        body["lora_model_dir"] = {
            "ref": "./adapters/v1",
            "source": "local",
            "digest": adapter,
            "size": 3,
            "nfiles": 1,
        }
    return Lockfile.model_validate(body)


def attested(lock: Lockfile, config: dict[str, Any]) -> Statement:
    """The statement attest records for a run trained from LOCK and CONFIG."""
    dependencies = [pin_descriptor("base_model", lock.base_model)]
    if lock.lora_model_dir is not None:
        dependencies.append(pin_descriptor("lora_model_dir", lock.lora_model_dir))
    dependencies += [
        pin_descriptor(f"datasets[{i}]", pin, "dataset") for i, pin in enumerate(lock.datasets)
    ]
    dependencies.append(
        {
            "name": "pins",
            "uri": f"file:{lock.pins.path}",
            "digest": {"sha256": lock.pins.digest.removeprefix("sha256:")},
            "annotations": {"packages": dict(lock.pins.packages)},
        }
    )
    dependencies.append({"name": "ftctl", "uri": f"pkg:pypi/ftctl@{lock.trainer['ftctl']}"})
    return Statement.model_validate(
        {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": "adapter_model.safetensors", "digest": {"sha256": "5" * 64}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": {
                        "name": "alpha",
                        "recipe": {"path": "recipes/alpha.yaml", "digest": {"sha256": "6" * 64}},
                        "base_model": "org/model",
                        "datasets": ["data/train.jsonl"],
                        "seed": "42",
                        "publish": "file://registry/alpha",
                    },
                    "internalParameters": {
                        "fingerprint": lock.fingerprint,
                        "config": config,
                        "lock": {"path": "lockfiles/alpha.lock", "digest": {"sha256": "7" * 64}},
                        "determinism": {},
                        "platform": {"python": "3.11.7"},
                        "committed": True,
                    },
                    "resolvedDependencies": dependencies,
                },
                "runDetails": {
                    "builder": {
                        "id": "https://ftctl.dev/builders/local",
                        "version": {"ftctl": lock.trainer["ftctl"]},
                    },
                    "metadata": {
                        "invocationId": "run-1",
                        "startedOn": "2026-11-24T10:00:00Z",
                        "finishedOn": "2026-11-24T11:00:00Z",
                    },
                },
            },
        }
    )


def hub(commit: str) -> str:
    return f"pkg:huggingface/org/model@{commit}"


def local(char: str) -> str:
    return f"file:data/train.jsonl ({char * 12})"


DIFFS: dict[str, tuple[dict[str, Any], dict[str, Any], list[Reason]]] = {
    # id: (what the recorded run was trained from, what the fresh lock and config say, reasons)
    "nothing-changed": ({}, {}, []),
    "config-field-changed": (
        {},
        {"config": {**CONFIG, "lora_r": 16}},
        [Reason("recipe_changed", "lora_r", 8, 16)],
    ),
    "nested-config-field-changed": (
        {},
        {"config": {**CONFIG, "datasets": [{"path": "data/train.jsonl", "type": "completion"}]}},
        [Reason("recipe_changed", "datasets[0].type", "alpaca", "completion")],
    ),
    "config-field-added-and-removed": (
        {},
        {"config": {**{k: v for k, v in CONFIG.items() if k != "lora_r"}, "seed": 7}},
        [Reason("recipe_changed", "lora_r", 8, None), Reason("recipe_changed", "seed", None, 7)],
    ),
    "base-model-commit-changed": (
        {},
        {"revision": COMMIT_C},
        [Reason("base_model_changed", "base_model", hub(COMMIT_A), hub(COMMIT_C))],
    ),
    "dataset-digest-changed": (
        {},
        {"dataset": fp("2")},
        [Reason("dataset_changed", "datasets[0]", local("1"), local("2"))],
    ),
    "adapter-to-continue-from-added": (
        {},
        {"adapter": fp("3")},
        [Reason("base_model_changed", "lora_model_dir", None, "file:./adapters/v1 (333333333333)")],
    ),
    "pins-changed-added-removed": (
        {},
        {"packages": {"torch": "==2.14.1", "peft": "==0.21.2"}},
        [
            Reason("pins_changed", "peft", None, "==0.21.2"),
            Reason("pins_changed", "torch", "==2.13.0", "==2.14.1"),
            Reason("pins_changed", "trl", "==1.16.0", None),
        ],
    ),
    "trainer-version-changed": (
        {"trainer": "0.0.9"},
        {},
        [Reason("trainer_changed", "ftctl", "0.0.9", "0.1.0")],
    ),
    "several-in-order-config-inputs-pins-trainer": (
        {"trainer": "0.0.9"},
        {
            "config": {**CONFIG, "lora_r": 16},
            "revision": COMMIT_C,
            "dataset": fp("2"),
            "packages": {"torch": "==2.13.0"},
        },
        [
            Reason("recipe_changed", "lora_r", 8, 16),
            Reason("base_model_changed", "base_model", hub(COMMIT_A), hub(COMMIT_C)),
            Reason("dataset_changed", "datasets[0]", local("1"), local("2")),
            Reason("pins_changed", "trl", "==1.16.0", None),
            Reason("trainer_changed", "ftctl", "0.0.9", "0.1.0"),
        ],
    ),
}


def inputs(config: dict[str, Any] = CONFIG, **lock: Any) -> tuple[Lockfile, dict[str, Any]]:
    return lockfile(**lock), config


@pytest.mark.parametrize(("old", "new", "expected"), DIFFS.values(), ids=DIFFS.keys())
def test_diff_reasons(old: dict[str, Any], new: dict[str, Any], expected: list[Reason]) -> None:
    recorded = attested(*inputs(**old))
    assert list(diff_reasons(recorded, *inputs(**new))) == expected


def test_reason_text() -> None:
    """How a reason reads in the plan: digests shortened, a missing side shown as (none)."""
    assert Reason("forced").text() == "forced"
    assert LORA_8_TO_16.text() == "lora_r: 8 -> 16"
    assert Reason("pins_changed", "peft", None, "==0.21.2").text() == "peft: (none) -> ==0.21.2"
    assert (
        Reason("inputs_changed", "fingerprint", fp("a"), fp("b")).text()
        == "fingerprint: sha256:aaaaaaaaaaaa... -> sha256:bbbbbbbbbbbb..."
    )
