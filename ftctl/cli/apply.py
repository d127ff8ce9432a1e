"""``ftctl apply``: train, restore, publish and record what the plan says."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ftctl.cli.options import importing, trust_ref_option
from ftctl.errors import UsageError
from ftctl.render.terminal import echo, info, use_styles, warn

if TYPE_CHECKING:
    from ftctl.apply.controller import Step, Summary
    from ftctl.plan.planner import Plan
    from ftctl.workspace import Workspace


@click.command()
@click.argument("planfile", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="NAME",
    help="Apply only NAME and the recipes built on it.",
)
@click.option(
    "--replace",
    "replace",
    multiple=True,
    metavar="NAME",
    help="Retrain NAME even if nothing changed.",
)
@click.option(
    "--auto-approve", is_flag=True, help="Apply without asking (needed without a terminal)."
)
@click.option(
    "--keep-going",
    is_flag=True,
    help="After a failure, go on with the recipes that do not depend on it.",
)
@click.option(
    "--lock-timeout",
    default="0s",
    show_default=True,
    metavar="DURATION",
    help="How long to wait for another apply's state lock (e.g. 30s, 5m).",
)
@trust_ref_option()
def apply(
    planfile: Path | None,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    auto_approve: bool,
    keep_going: bool,
    lock_timeout: str,
    trust_ref: str | None,
) -> None:
    """Train, restore, publish and record what the plan says (docs/apply.md).

    Without PLANFILE it plans, shows the plan and asks; with one (from `ftctl plan --out`)
    it applies exactly that plan, and refuses it once anything it was made from changed.
    Exit codes: 0 done (or nothing to do), 1 anything failed, 130 interrupted.
    """
    with importing():
        from ftctl.apply.rundirs import runs_dir
        from ftctl.apply.statelock import parse_duration
        from ftctl.executors.local import LocalExecutor, Prestarted
        from ftctl.provenance.keys import keyid, signing_key_from_env
        from ftctl.provenance.trust import trust_of
        from ftctl.workspace import discover_existing

    if planfile is not None and (targets or replace):
        raise UsageError(
            "--target and --replace shape a new plan; a saved plan is applied as it is"
        )
    timeout = parse_duration(lock_timeout)
    workspace = discover_existing(Path.cwd())
    trust = trust_of(workspace, trust_ref)
    key = signing_key_from_env()
    trusted = trust.keys()  # a method of Trust: the keyid -> key table
    if keyid(key.public_key()) not in trusted:
        raise UsageError(
            f"the signing key (FTCTL_SIGNING_KEY) is not one of the keys trusted from {trust.source}",
            hint="commit its .pub under keys/ first, or its manifests would count as absent",
        )

    def waiting(holder: Any) -> None:
        info(
            f"waiting up to {lock_timeout} for the state lock held by {holder.holder} (pid {holder.pid})"
        )

    # The first local training's worker imports the training stack while apply plans.
    prestarted = Prestarted(runs_dir(workspace.root))
    local = LocalExecutor(prestarted)
    try:
        summary = _apply(workspace, trust, key, planfile, targets, replace, auto_approve,
                         keep_going, timeout, waiting, local)  # fmt: skip
    finally:
        prestarted.close()
    if summary is None:
        return
    _report(summary)


def _apply(
    workspace: Workspace,
    trust: Any,
    key: Any,
    planfile: Path | None,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    auto_approve: bool,
    keep_going: bool,
    timeout: float,
    waiting: Any,
    local: Any,
) -> Summary | None:
    from ftctl.apply.actions import Context
    from ftctl.apply.controller import apply_steps
    from ftctl.apply.statelock import state_lock
    from ftctl.executors.select import executor_for
    from ftctl.launch import gpu_count, worker_env
    from ftctl.render.apply import Progress

    trusted = trust.keys()
    with state_lock(workspace.root, "apply", timeout=timeout, on_wait=waiting, warn=warn):
        if planfile is not None:
            steps = _saved_steps(planfile, workspace, trust)
        else:
            steps = _fresh_steps(workspace, trust, targets, replace, auto_approve)
        if not steps:
            return None
        ctx = Context(
            workspace, key, trusted, lambda name: executor_for(workspace, name, local), warn
        )
        return apply_steps(
            ctx, steps, Progress(), keep_going=keep_going, gpus=gpu_count(worker_env())
        )


def _report(summary: Summary) -> None:
    from ftctl.render.apply import outcome_line, summary_line

    for outcome in summary.outcomes:
        if outcome.status == "skipped":
            info(outcome_line(outcome))
    info(summary_line(summary))
    for outcome in summary.outcomes:
        if outcome.manifest:
            echo(outcome.manifest)
    if summary.failed:
        raise SystemExit(1)


def _saved_steps(planfile: Path, workspace: Workspace, trust: Any) -> list[Step]:
    from ftctl.apply.controller import steps_of
    from ftctl.plan.saved import actions_of, load_saved, planned_with, staleness
    from ftctl.render.plan import to_json

    saved = load_saved(planfile)
    stale = staleness(saved, workspace)
    if stale:
        more = f" (and {len(stale) - 3} more)" if len(stale) > 3 else ""
        raise UsageError(
            f"{planfile} is stale: {'; '.join(stale[:3])}{more}",
            hint="make a new plan: ftctl plan --out FILE",
        )
    plan = saved.get("plan")
    changes = plan.get("changes") if isinstance(plan, dict) else None
    if not isinstance(changes, list):
        raise UsageError(f"{planfile}: not a saved plan (no changes)", hint="ftctl plan --out FILE")
    # The saved actions must be what planning the same inputs gives now: a plan file edited by
    # hand (or by anyone) cannot make apply do something plan would not.
    targets, replace = planned_with(saved)
    fresh = _plan(workspace, trust, targets, replace)
    if actions_of(changes) != actions_of(to_json(fresh)["changes"]):
        raise UsageError(
            f"{planfile} does not say what planning its inputs says now",
            hint="make a new plan: ftctl plan --out FILE",
        )
    steps = steps_of(changes)
    if not any(s.action != "no-op" for s in steps):
        info("No changes. Every recipe matches its recorded run.")
        return []
    return steps


def _fresh_steps(
    workspace: Workspace,
    trust: Any,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    auto_approve: bool,
) -> list[Step]:
    from ftctl.apply.controller import steps_of
    from ftctl.render.plan import terminal_lines, to_json

    plan = _plan(workspace, trust, targets, replace)
    for warning in plan.warnings:
        warn(warning)
    styled = use_styles(stderr=True)
    for text, markup in terminal_lines(plan, styled=styled):
        info(text, markup=markup if styled else None)
    if not plan.has_changes:
        return []
    if not auto_approve:
        if not sys.stdin.isatty():
            raise UsageError(
                "apply asks before it changes anything, and there is no terminal to ask on",
                hint="review the plan and pass --auto-approve, or apply a saved plan: ftctl plan --out FILE",
            )
        answer = click.prompt(
            "Apply this plan? Only 'yes' is accepted", default="", show_default=False, err=True
        )
        if answer.strip() != "yes":
            info("Apply cancelled; nothing was changed.")
            return []
    return steps_of(to_json(plan)["changes"])


def _plan(
    workspace: Workspace, trust: Any, targets: tuple[str, ...], replace: tuple[str, ...]
) -> Plan:
    from ftctl.plan.inputs import plan_workspace

    return plan_workspace(workspace, trust, targets=targets, replace=replace)
