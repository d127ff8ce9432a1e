"""``plan --out FILE``: a plan saved with the digest of everything it was made from.

Apply refuses a saved plan that is stale: any recipe, lock, pins file,
manifest or trusted key added, removed or changed since, git HEAD moved, or a
different ftctl. A plan made from an empty state records that emptiness, so
it is stale as soon as any state exists (Terraform's "applied twice" gap).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftctl import __version__
from ftctl._git import head_commit
from ftctl.canonical import JSONError, strict_loads
from ftctl.errors import FtctlError
from ftctl.files import write_atomic
from ftctl.plan.inputs import input_digests
from ftctl.plan.planner import Change, Estimate, Plan, Reason
from ftctl.workspace import Workspace

SAVED_FORMAT = 1


def save_plan(
    path: Path,
    workspace: Workspace,
    plan_json: dict[str, Any],
    digests: dict[str, dict[str, str]],
    *,
    targets: tuple[str, ...] = (),
    replace: tuple[str, ...] = (),
) -> None:
    refuse_target(path, workspace)
    body = {
        "saved_plan_format": SAVED_FORMAT,
        "targets": list(targets),  # apply re-plans with them: the saved actions must come out
        "replace": list(replace),
        "ftctl_version": __version__,
        "git_head": head_commit(workspace.root),
        "inputs": digests,
        "plan": plan_json,
    }
    write_atomic(path, json.dumps(body, indent=2, sort_keys=True) + "\n")


# What plan --out must never replace: the inputs a plan is made from.
PROTECTED_DIRS = ("recipes", "lockfiles", "manifests", "keys")


def refuse_target(path: Path, workspace: Workspace) -> None:
    """Refuse to save a plan over a recipe, lock, manifest, key or ftctl.yaml."""
    real_root = workspace.root.resolve()
    target = path.parent.resolve() / path.name  # the file itself may be a symlink: see write_atomic
    protected = [real_root / name for name in PROTECTED_DIRS]
    if target in workspace.recipe_paths() or target.suffix in (".yaml", ".yml", ".lock"):
        raise FtctlError(
            f"{path}: refusing to save a plan over a recipe, lock or YAML file",
            hint="save it as e.g. plan.json",
        )
    if target == real_root / "ftctl.yaml" or any(target.is_relative_to(d) for d in protected):
        raise FtctlError(
            f"{path}: refusing to save a plan under recipes/, lockfiles/, manifests/ or keys/",
            hint="save it elsewhere, e.g. plan.json at the top of the workspace",
        )


def load_saved(path: Path) -> dict[str, Any]:
    try:
        body = strict_loads(path.read_bytes())
    except (OSError, JSONError) as exc:
        raise FtctlError(
            f"{path}: not a saved plan ({exc})", hint="make one with `ftctl plan --out FILE`"
        ) from None
    if not isinstance(body, dict) or body.get("saved_plan_format") != SAVED_FORMAT:
        raise FtctlError(
            f"{path}: not a saved plan of this ftctl", hint="make one with `ftctl plan --out FILE`"
        )
    return body


def staleness(saved: dict[str, Any], workspace: Workspace) -> list[str]:
    """Why a saved plan no longer describes the workspace; empty when it still does."""
    reasons = []
    if saved.get("ftctl_version") != __version__:
        reasons.append(f"made by ftctl {saved.get('ftctl_version')}, this is {__version__}")
    head = head_commit(workspace.root)
    if saved.get("git_head") != head:
        reasons.append(f"git HEAD moved: {str(saved.get('git_head'))[:12]} -> {str(head)[:12]}")
    now = input_digests(workspace)
    before = saved.get("inputs") or {}
    for kind in sorted(set(now) | set(before)):
        old, new = before.get(kind, {}), now.get(kind, {})
        for name in sorted(set(old) | set(new)):
            if name not in old:
                reasons.append(f"{name} was added")
            elif name not in new:
                reasons.append(f"{name} was removed")
            elif old[name] != new[name]:
                reasons.append(f"{name} changed")
    return reasons


def saved_plan(saved: dict[str, Any]) -> Plan:
    """The plan a saved plan holds, for `ftctl show` to render as `ftctl plan` did."""
    plan = saved.get("plan")
    if not isinstance(plan, dict) or not isinstance(plan.get("changes"), list):
        raise FtctlError("not a saved plan: it holds no changes", hint="ftctl plan --out FILE")
    try:
        changes = tuple(_change(c) for c in plan["changes"])
        trust_changes = tuple(
            (str(t["change"]), str(t["file"]), t.get("keyid"))
            for t in plan.get("trust_changes", [])
        )
        warnings = tuple(str(w) for w in plan.get("warnings", []))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise FtctlError(
            f"the saved plan is malformed ({exc!r:.80})", hint="ftctl plan --out FILE"
        ) from None
    return Plan(changes, warnings, trust_changes, str(plan.get("trust", "the working tree")))


def _change(change: dict[str, Any]) -> Change:
    estimate = change.get("estimate")
    return Change(
        str(change["recipe"]),
        str(change["action"]),
        tuple(
            Reason(str(r["kind"]), r.get("path"), r.get("old"), r.get("new"))
            for r in change["reasons"]
        ),
        change.get("fingerprint"),
        change.get("before"),
        change.get("after"),
        None
        if estimate is None
        else Estimate(
            estimate.get("tokens"),
            estimate.get("params"),
            estimate.get("accelerator"),
            estimate.get("gpu_hours"),
            str(estimate.get("basis", "")),
        ),
    )


def planned_with(saved: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The --target and --replace names the saved plan was made with."""

    def names(key: str) -> tuple[str, ...]:
        value = saved.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise FtctlError(f"the saved plan's {key} is malformed", hint="ftctl plan --out FILE")
        return tuple(value)

    return names("targets"), names("replace")


def actions_of(changes: list[Any]) -> list[tuple[Any, Any, Any]]:
    """(recipe, action, fingerprint) of each change: what applying a plan does."""
    return [
        (c.get("recipe"), c.get("action"), c.get("fingerprint"))
        if isinstance(c, dict)
        else (c, None, None)
        for c in changes
    ]
