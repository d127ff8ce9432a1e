"""What every command shares: the lazy-import guard, shared options, problem rendering, trust."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ftctl.errors import Problem
from ftctl.render.terminal import echo, escape, use_styles

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

F = TypeVar("F", bound=Callable[..., Any])


def json_option(help_text: str = "Print the result as JSON.") -> Callable[[F], F]:
    """``--json``: results as JSON on stdout, declared once for every command that has it."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


@contextmanager
def importing() -> Iterator[None]:
    """Wrap a command's lazy imports: no GC passes while they run, then freeze what they built.

    Importing pydantic and building the recipe models allocates tens of thousands of
    objects that live as long as the process; collecting over them repeatedly cost a
    quarter of `ftctl validate`'s start-up (bench/startup.py). The command's own work
    runs with the collector on, as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def render_problem(problem: Problem) -> None:
    """One problem of `validate` on stdout: ``file:line:col: key: message; hint``."""
    line = problem.render()
    if not use_styles():
        echo(line)
    elif problem.location is not None:
        head = str(problem.location)
        rest = line[len(head) :]
        echo(line, markup=f"[bold]{escape(head)}[/bold][red]{escape(rest)}[/red]")
    else:
        echo(line, markup=f"[red]{escape(line)}[/red]")


def trust_ref_option() -> Callable[[F], F]:
    """``--trust-ref REF``: read ftctl.yaml's trust and the key files from REF's git tree."""
    return click.option(
        "--trust-ref",
        metavar="REF",
        envvar="FTCTL_TRUST_REF",
        help="Trust the keys of REF's tree (e.g. origin/main), not the working tree's; "
        "FTCTL_TRUSTED_KEYS overrides both.",
    )


def workspace_trust(ref: str | None = None) -> tuple[Path, dict[str, Ed25519PublicKey]]:
    """The workspace root and the keys to verify manifests with (see ftctl.provenance.trust)."""
    from ftctl.provenance.trust import trust_of
    from ftctl.workspace import discover

    workspace = discover(Path.cwd())
    return workspace.root, trust_of(workspace, ref).keys()
