"""Offline replay: bundle a recorded run, train it again from the bundle, record the verdict."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ftctl.cli.options import importing, trust_ref_option
from ftctl.render.terminal import echo, info, warn


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} B" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


@click.command()
@click.argument("target", metavar="NAME|MANIFEST")
@click.option(
    "-o",
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="A new directory, or a .tar (.tar.zst with the zstandard package) file.",
)
@click.option(
    "--artifacts",
    type=click.Path(file_okay=False, path_type=Path),
    help="The recorded adapter (default: the run directory apply left), for comparing tensors.",
)
@trust_ref_option()
def bundle(target: str, out: Path, artifacts: Path | None, trust_ref: str | None) -> None:
    """Bundle a recorded run with every input it trained on, to replay it with no network."""
    with importing():
        from ftctl.provenance.trust import trust_of
        from ftctl.replay.bundle import find_manifest, make_bundle
        from ftctl.workspace import discover_existing

    workspace = discover_existing(Path.cwd())
    trust = trust_of(workspace, trust_ref)
    manifest = find_manifest(workspace.root, target, trust.keys())
    made = make_bundle(workspace, manifest, trust, out, artifacts)
    for note in made.notes:
        warn(note)
    for part, size in sorted(made.sizes.items()):
        info(f"  {part:<30} {_size(size):>12}")
    total = sum(made.sizes.values())
    info(
        f"bundled {manifest.statement.name}: {len(made.index.files)} files, {_size(total)} -> {out}"
    )
    echo(str(out))


@click.command()
@click.argument("source", metavar="BUNDLE|MANIFEST")
@click.option(
    "--offline",
    is_flag=True,
    help="State that the replay must use no network (it never does: the worker runs with the "
    "Hub clients offline and the bundle as its only source).",
)
@click.option(
    "--tolerance",
    default="abs=1e-6,rel=1e-4",
    show_default=True,
    help="Per-element tolerance for within-tolerance: |a - b| <= abs + rel * |a|.",
)
@trust_ref_option()
def replay(source: str, offline: bool, tolerance: str, trust_ref: str | None) -> None:
    """Train a recorded run again from its bundle, offline, and say whether it reproduced."""
    with importing():
        from ftctl.provenance.keys import signing_key_from_env
        from ftctl.provenance.trust import trust_of
        from ftctl.replay.record import write_record
        from ftctl.replay.replay import Tolerance
        from ftctl.replay.replay import replay as run_replay
        from ftctl.workspace import discover

    tol = Tolerance.parse(tolerance)
    workspace = discover(Path.cwd())
    trust = trust_of(workspace, trust_ref)
    # No keys here (an enclave holding only the bundle): the bundle's own, and replay says so.
    pinned = trust if trust.files else None
    done = run_replay(source, workspace, pinned, tol, _progress(source))
    for note in done.notes:
        warn(note)
    for outcome in done.files:
        info(
            f"  {outcome.name}: {outcome.verdict}"
            + (f" ({outcome.detail})" if outcome.detail else "")
        )
    for key, label in (("max_abs", "max abs"), ("max_rel", "max rel")):
        worst = done.worst(key)
        if worst is not None:
            info(f"  worst {label} difference: {worst['value']:.3g} ({worst['name']})")
    for diff in done.environment:
        info(
            f"  environment: {diff['field']}: recorded {diff['recorded']!r}, replay {diff['replay']!r}"
        )
    info(f"{done.manifest.statement.name}: {done.verdict}")
    if os.environ.get("FTCTL_SIGNING_KEY"):
        path = write_record(workspace.root, done, signing_key_from_env())
        echo(str(path.relative_to(workspace.root)))
    else:
        warn("FTCTL_SIGNING_KEY is not set: the replay record was not written")
    if done.verdict == "diverged":
        raise SystemExit(1)


def _progress(source: str) -> Callable[[dict[str, Any]], None]:
    def show(event: dict[str, Any]) -> None:
        step, total, loss = event.get("step"), event.get("max_steps"), event.get("loss")
        if isinstance(step, int):
            shown = f"{loss:.4f}" if isinstance(loss, (int, float)) else "-"
            info(f"replay: step {step}/{total}  loss {shown}")

    return show
