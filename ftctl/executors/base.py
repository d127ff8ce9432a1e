"""What apply asks of an executor: run the worker on a run spec, report progress, return its exit code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ftctl.runspec import RunSpec

# Files an executor leaves in the run directory beside the worker's own (docs/apply.md).
WORKER_LOG = "worker.log"  # the worker's stdout and stderr
PROGRESS = "progress.jsonl"  # one event per logged step
SPEC = "spec.json"  # the run spec it was given

Event = dict[str, Any]  # one progress event: step, max_steps, loss, lr, tokens, elapsed_s


class Executor(Protocol):
    name: str

    def run(self, spec: RunSpec, run_dir: Path, on_event: Callable[[Event], None]) -> int:
        """Train ``spec`` into ``run_dir`` (on this machine or another, the outputs end up in
        ``run_dir``); call ``on_event`` per logged step; the worker's exit code (130: interrupted)."""
