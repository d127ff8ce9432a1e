"""retire: record, signed, that a deleted recipe's last run is no longer desired. Nothing is deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftctl.apply.actions import Context, Done
from ftctl.errors import FtctlError
from ftctl.provenance.retirement import retire_record


def retire(ctx: Context, name: str, state: Any) -> Done:
    current = state.current if state is not None else None
    if current is None:
        raise FtctlError(f"{name} has no current record to retire", hint="plan again")
    path = retire_record(ctx.workspace.root, name, current.path, current.fingerprint, ctx.key)
    return Done(path, Path())
