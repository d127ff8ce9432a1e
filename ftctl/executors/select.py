"""The executor a recipe runs on: ``ftctl.executor`` names one of ftctl.yaml's ``executors``."""

from __future__ import annotations

from ftctl.errors import FtctlError
from ftctl.executors.base import Executor
from ftctl.workspace import Workspace


def executor_for(workspace: Workspace, name: str, local: Executor | None = None) -> Executor:
    """``local`` always exists (``local``: the one to use, e.g. with a started worker); the
    others are configured in ftctl.yaml's ``executors``."""
    config = workspace.config.executors.get(name)
    if name == "local" or (config is not None and config.type == "local"):
        from ftctl.executors.local import LocalExecutor

        return local or LocalExecutor()
    if config is None:
        raise FtctlError(
            f"executor {name!r} is not configured",
            hint="add it under executors: in ftctl.yaml, or use executor: local",
        )
    if config.type == "ssh":
        try:
            from ftctl.executors.ssh import SSHExecutor
        except ImportError:  # not built yet in this version
            raise FtctlError(
                f"executor {name!r}: the ssh executor is not available in this ftctl"
            ) from None
        return SSHExecutor(name, config, workspace)  # type: ignore[no-any-return, unused-ignore]
    raise FtctlError(
        f"executor {name!r}: type {config.type} is not available in this ftctl yet",
        hint="use executor: local (or an ssh executor)",
    )
