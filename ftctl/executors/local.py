"""The local executor: the worker as a subprocess of apply, its output in the run's log file.

The worker's stdout and stderr (transformers' and datasets' bars and warnings
included) go to ``worker.log`` in the run directory, never to the user's
terminal; apply shows the progress events the worker appends to
``progress.jsonl`` instead, and the log's last lines when the run fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ftctl.errors import INTERRUPTED
from ftctl.executors.base import PROGRESS, SPEC, WORKER_LOG, Event
from ftctl.files import write_atomic
from ftctl.launch import SAFE_PYTHON, gpu_count, worker_command, worker_env
from ftctl.runspec import RunSpec

POLL_S = 0.2


class Prestarted:
    """A worker started before apply has planned: it imports the training stack (seconds)
    meanwhile, then reads its spec on stdin. Unused, it is killed; never on more than one GPU
    (accelerate launch starts its own processes from a spec file)."""

    def __init__(self, folder: Path) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Path | None = None
        env = worker_env()
        if gpu_count(env) > 1:
            return
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / f".worker-{os.getpid()}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [*SAFE_PYTHON, "-m", "ftctl.worker", "-"],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=folder,  # not the workspace: nothing there is importable (-P too)
                preexec_fn=_die_with_parent,
            )

    def take(self) -> tuple[subprocess.Popen[bytes], Path] | None:
        """The started worker and its log, once; None when there is none (or it died)."""
        proc, log = self.proc, self.log
        self.proc = None
        if proc is None or log is None or proc.poll() is not None:
            return None
        return proc, log

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        if self.log is not None:
            self.log.unlink(missing_ok=True)


class LocalExecutor:
    name = "local"

    def __init__(self, prestarted: Prestarted | None = None) -> None:
        self.prestarted = prestarted

    def run(self, spec: RunSpec, run_dir: Path, on_event: Callable[[Event], None]) -> int:
        spec_path = run_dir / SPEC
        write_atomic(spec_path, spec.model_dump_json(indent=2) + "\n")
        progress = Path(spec.progress) if spec.progress else run_dir / PROGRESS
        started = self.prestarted.take() if self.prestarted is not None else None
        if started is not None:
            proc, early_log = started
            os.replace(early_log, run_dir / WORKER_LOG)  # its output so far, and from now on
            assert proc.stdin is not None
            try:
                proc.stdin.write(spec.model_dump_json().encode())
                proc.stdin.close()
            except BrokenPipeError:
                pass  # it stopped already; its exit code says why
            return _follow(proc, progress, on_event)
        env = worker_env()
        command = worker_command(spec_path, gpu_count(env))
        with (run_dir / WORKER_LOG).open("ab") as log:
            proc = subprocess.Popen(
                command,
                env=env,
                cwd=run_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
            return _follow(proc, progress, on_event)


def _die_with_parent() -> None:
    """In the child: on Linux, be killed when apply dies (kill -9 included), so a second apply
    never finds a stray worker still writing into the run directory it resumes."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _follow(
    proc: subprocess.Popen[bytes], progress: Path, on_event: Callable[[Event], None]
) -> int:
    """Wait for the worker, passing on each progress event as it lands; Ctrl-C stops it cleanly."""
    offset = 0
    try:
        while True:
            code = proc.poll()
            offset = _drain(progress, offset, on_event)
            if code is not None:
                return INTERRUPTED if code == -signal.SIGINT else code
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait()
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()
        return INTERRUPTED
    finally:
        if proc.poll() is None:  # an error in ftctl itself: never leave the worker behind
            proc.kill()
            proc.wait()


def _drain(path: Path, offset: int, on_event: Callable[[Event], None]) -> int:
    """Read the whole lines appended since ``offset``; a malformed line is skipped."""
    try:
        with path.open("rb") as stream:
            stream.seek(offset)
            data = stream.read(1 << 20)
    except OSError:
        return offset
    end = data.rfind(b"\n") + 1
    for line in data[:end].splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            on_event(event)
    return offset + end
