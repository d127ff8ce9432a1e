"""What every worker process shares: its exit codes, errors as lines, Ctrl-C.

0 done, 1 an error (one ``ftctl: error:`` line per problem), 130 interrupted
(Ctrl-C: silent, the ftctl command that started it says so once).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType

from ftctl.errors import INTERRUPTED, FtctlError
from ftctl.render.terminal import error


def run_process(body: Callable[[], int]) -> int:
    """``body()``'s exit code; an FtctlError is printed and 1, Ctrl-C is 130."""
    signal.signal(signal.SIGINT, _interrupt)
    try:
        return body()
    except KeyboardInterrupt:
        return INTERRUPTED
    except FtctlError as exc:
        for problem in exc.problems:
            error(problem.render())
        return 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # One interrupt stops the process; more (the terminal's to the process group, then the
    # caller's forwarded one) would land in the middle of unwinding it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt
