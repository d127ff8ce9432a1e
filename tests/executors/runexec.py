"""``python -m tests.executors.runexec ROOT``: run apply's spec for tiny-alpaca through executor
``box``, in a process of its own (so a test can interrupt it, or cut its connections), and
print the exit code, or the error line."""

from __future__ import annotations

import sys
from pathlib import Path

from ftctl.errors import FtctlError
from ftctl.executors.select import executor_for
from ftctl.workspace import discover
from tests.executors.conftest import apply_spec


def main() -> int:
    workspace = discover(Path(sys.argv[1]))
    spec, directory = apply_spec(workspace)
    events: list[object] = []
    try:
        code = executor_for(workspace, "box").run(spec, directory, events.append)
    except FtctlError as exc:
        sys.stdout.write(f"error: {exc.problem.render()}\n")
        return 1
    sys.stdout.write(f"exit {code} events {len(events)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
