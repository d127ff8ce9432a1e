"""The ssh executor: train on a host reached over ssh (a rented GPU box), outputs copied back.

One run, as docs/executors.md tells it: probe the host (its Python, ftctl, the training stack,
which inputs it already has), copy the inputs it lacks into its content-addressed store, lay
out the run in ``<workdir>/runs/<fingerprint>/`` and start the worker there detached, so a lost
connection does not stop it; follow its progress over ssh, reconnecting with backoff; and once
it has finished, copy adapter/ and the run's files back into the local run directory, each
checked against the digest the host computed. A worker that vanished (the host rebooted) is
started again from its newest complete checkpoint on the host; a run that cannot go on fails
with one line and stays on the host, where the next apply picks it up.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ftctl.errors import INTERRUPTED, FtctlError
from ftctl.executors.base import PROGRESS, SPEC, WORKER_LOG, Event
from ftctl.executors.sshcmd import (
    ConnectionLost,
    Host,
    Session,
    have_rsync,
    last_line,
    local_path,
    ssh_failure,
)
from ftctl.executors.sshinputs import UPSTREAM, WS, Blob, Payload, gather
from ftctl.executors.transfer import download, upload
from ftctl.files import write_atomic
from ftctl.provenance.rundir import BYPRODUCTS
from ftctl.runspec import RunSpec

if TYPE_CHECKING:
    from ftctl.workspace import SSHExecutor as SSHConfig
    from ftctl.workspace import Workspace

# Waits between tries after a lost connection: about two minutes in all, then the run fails
# (and stays on the host for the next apply).
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 30.0, 30.0)
MAX_RESTARTS = 3  # a worker gone without an exit code (host rebooted) is started this often
STOP_GRACE_S = 30  # after Ctrl-C, the worker's time to stop before it is killed
INCOMING = ".ssh-incoming"  # outputs land here, beside the run's files, until checked
_SAFE_WORKDIR = re.compile(r"^/[A-Za-z0-9_./+@%=,-]*$")
# The host's own ftctl starts the worker as the local executor does (determinism environment,
# one process per GPU through accelerate), with the host's interpreter.
LAUNCH = (
    "import os,sys;from pathlib import Path;"
    "from ftctl.launch import gpu_count,worker_command,worker_env;"
    "env=worker_env();cmd=worker_command(Path(sys.argv[1]),gpu_count(env));"
    "os.execve(cmd[0],cmd,env)"
)
T = TypeVar("T")


class SSHExecutor:
    def __init__(self, name: str, config: SSHConfig, workspace: Workspace) -> None:
        self.name = name
        self.config = config
        self.workspace = workspace
        root = workspace.root
        self.host = Host(
            name,
            config.host,
            config.port,
            config.user,
            local_path(config.identity_file, root),
            local_path(config.known_hosts, root),
        )

    def run(self, spec: RunSpec, run_dir: Path, on_event: Callable[[Event], None]) -> int:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(run_dir / SPEC, spec.model_dump_json(indent=2) + "\n")
        payload = gather(spec, self.name)
        session = Session(self.host)
        try:
            return _Run(self, session, spec, run_dir, payload, on_event).execute()
        finally:
            session.close()


class _Run:
    """One ``run`` call: the host's state, and where following its progress has got to."""

    def __init__(
        self,
        executor: SSHExecutor,
        session: Session,
        spec: RunSpec,
        run_dir: Path,
        payload: Payload,
        on_event: Callable[[Event], None],
    ) -> None:
        self.executor = executor
        self.config = executor.config
        self.session = session
        self.spec = spec
        self.run_dir = run_dir
        self.payload = payload
        self.on_event = on_event
        self.fp = payload.lock.fingerprint.removeprefix("sha256:")
        self.offset = 0  # bytes of the host's progress.jsonl already passed on
        self.workdir = ""  # absolute on the host, once probed
        self.rsync = False
        self.pending: dict[str, Blob] = {}  # inputs the host still lacks
        self.partial: set[str] = set()  # of those, the ones a stopped copy left in part
        self.tries = 0
        self.where = f"executor {executor.name}: {executor.host.shown}"

    @property
    def remote_run(self) -> str:
        return f"{self.workdir}/runs/{self.fp}"

    def call(self, op: str, timeout: float | None = 120, **args: Any) -> dict[str, Any]:
        request = {"op": op, "workdir": self.workdir or self.config.workdir, "fp": self.fp, **args}
        return self.session.call(self.config.python, request, timeout)

    def execute(self) -> int:
        try:
            probe = self.retrying(self.probe)
            state = probe["state"]
            if not state["running"]:
                if state["finished"]:  # an earlier apply's worker finished there
                    return self.finish()
                self.start(probe)
            return self.follow()
        except KeyboardInterrupt:
            self.stop()
            return INTERRUPTED

    def retrying(self, action: Callable[[], T]) -> T:
        """``action``, tried again after each lost connection, waiting longer each time."""
        for wait in (*BACKOFF_S, None):
            try:
                return action()
            except ConnectionLost as exc:
                if wait is None:
                    raise self.gave_up(exc) from None
                time.sleep(wait)
        raise AssertionError("unreachable")

    def gave_up(self, exc: FtctlError) -> FtctlError:
        return FtctlError(
            f"{exc.problem.message}; gave up after {len(BACKOFF_S) + 1} tries",
            hint="the run stays on the host: apply again once it is reachable, to resume there",
        )

    def probe(self) -> dict[str, Any]:
        answer = self.call("probe", blobs=sorted(self.payload.blobs))
        self.check_host(answer)
        workdir = str(answer.get("workdir"))
        if not _SAFE_WORKDIR.match(workdir):
            raise FtctlError(
                f"{self.where}: workdir {workdir!r} holds a space or another special character",
                hint=f"set executors.{self.executor.name}.workdir in ftctl.yaml to a plain path",
            )
        self.workdir = workdir
        self.rsync = bool(answer.get("rsync")) and have_rsync()
        return answer

    def check_host(self, answer: dict[str, Any]) -> None:
        """The host runs the ftctl the lock pins, with the training stack: else one line."""
        wanted = self.payload.lock.trainer.get("ftctl")
        python = self.config.python
        install = f"{python} -m pip install 'ftctl[train]" + (f"=={wanted}'" if wanted else "'")
        found = answer.get("ftctl")
        if found is None:
            raise FtctlError(
                f"{self.where}: {python} there has no ftctl (ftctl installs nothing on a host)",
                hint=f"install it on the host: {install}, or point executors.{self.executor.name}"
                ".python at the interpreter that has it",
            )
        if wanted and found != wanted:
            raise FtctlError(
                f"{self.where}: the host has ftctl {found}, the lock pins ftctl {wanted}",
                hint=f"install the pinned one on the host: {install}",
            )
        missing = answer.get("missing_modules") or []
        if missing:
            raise FtctlError(
                f"{self.where}: {python} there lacks the training stack ({', '.join(missing)})",
                hint=f"install it on the host: {install}",
            )

    def start(self, probe: dict[str, Any]) -> None:
        """Copy what the host lacks, then lay out the run and start the worker (idempotent)."""
        with_resume = probe["state"]["checkpoint"] is None and bool(self.payload.resume_files)
        needed = {sha for _, sha in self.payload.files}
        if with_resume:
            needed |= {sha for _, sha in self.payload.resume_files}
        missing = [s for s in probe["missing"] if s in needed]
        self.pending = {sha: self.payload.blobs[sha] for sha in missing}
        self.partial = set(probe.get("partial") or {})
        for _ in range(2):
            self.tries = 0
            answer = self.retrying(functools.partial(self.send_and_start, missing))
            missing = [s for s in answer.get("damaged") or [] if s in self.payload.blobs]
            if not missing:
                return
            self.pending = {sha: self.payload.blobs[sha] for sha in missing}
            self.partial = set()
        raise FtctlError(
            f"{self.where}: inputs arrived damaged twice (their sha256 differs on the host)",
            hint="check the host's disk; apply again to copy them again",
        )

    def send_and_start(self, incoming: list[str]) -> dict[str, Any]:
        """Copy the blobs not yet stored there, then start (once more after a lost link: what
        a stopped copy left is asked for first, so it resumes instead of starting over)."""
        self.tries += 1
        if self.tries > 1 and self.pending:
            probe = self.call("probe", blobs=sorted(self.pending))
            self.pending = {sha: self.pending[sha] for sha in probe["missing"]}
            self.partial = set(probe.get("partial") or {})
        if self.pending:
            blobs = list(self.pending.values())
            stored = upload(
                self.session, self.config.python, self.workdir, blobs, self.rsync, self.partial
            )
            self.pending = {sha: blob for sha, blob in self.pending.items() if sha not in stored}
        return self.call("start", None, **self.start_request(incoming))

    def start_request(self, incoming: list[str]) -> dict[str, Any]:
        run = self.remote_run
        spec = {
            **self.spec.model_dump(mode="json"),
            "recipe_path": f"{run}/{WS}/{self.payload.recipe_rel}",
            "workspace": f"{run}/{WS}",
            "output_dir": f"{run}/out",
            "lock": f"{run}/{WS}/{self.payload.lock_rel}",
            "base_model_dir": f"{run}/{UPSTREAM}" if self.payload.upstream else None,
            "resume_from": None,  # the host picks its newest complete checkpoint
            "progress": f"{run}/{PROGRESS}",
        }
        write = {"launch.sh": launch_script(run, self.config.python, self.config.setup)}
        if self.payload.on_host:  # the worker may read these absolute paths on the host
            write[f"{WS}/ftctl.yaml"] = f"allow_paths: {json.dumps(self.payload.on_host)}\n"
        # The token travels in the request (ssh's stdin), into the worker's environment only:
        # never in a command line, a file on the host or a log.
        env = {"HF_TOKEN": os.environ["HF_TOKEN"]} if os.environ.get("HF_TOKEN") else {}
        return {
            "incoming": incoming,
            "files": self.payload.files,
            "resume_files": self.payload.resume_files,
            "write": write,
            "spec": spec,
            "env": env,
        }

    def follow(self) -> int:
        restarts = 0
        failures = 0
        while True:
            try:
                kind, code = self.follow_once()
            except ConnectionLost as exc:
                failures += 1
                if failures > len(BACKOFF_S):
                    raise self.gave_up(exc) from None
                time.sleep(BACKOFF_S[failures - 1])
                try:
                    state = self.call("probe")["state"]
                except ConnectionLost:
                    continue
                failures = 0
                if state["running"]:
                    continue  # the same worker, still at work: follow it again
                kind, code = (
                    ("exit", state["exit"])
                    if state["exit"] is not None
                    else ("exit", 0)
                    if state["finished"]
                    else ("gone", None)
                )
            if kind == "exit" and code == 0:
                return self.finish()
            if kind == "exit":
                self.fetch_log()
                return int(code) if code is not None else 1
            restarts += 1
            if restarts > MAX_RESTARTS:
                self.fetch_log()
                raise FtctlError(
                    f"{self.where}: the worker stopped {MAX_RESTARTS + 1} times without an exit code",
                    hint=f"see {self.remote_run}/{WORKER_LOG} on the host; apply again to resume",
                )
            self.start(self.retrying(self.probe))

    def follow_once(self) -> tuple[str, int | None]:
        """Pass on progress events until the worker exits ("exit", code) or is gone ("gone")."""
        proc = self.session.stream(
            self.config.python,
            {"op": "follow", "workdir": self.workdir, "fp": self.fp, "offset": self.offset},
        )
        assert proc.stdout is not None and proc.stderr is not None
        outcome: tuple[str, int | None] | None = None
        try:
            with (self.run_dir / PROGRESS).open("ab") as local:
                for raw in proc.stdout:
                    line = raw.decode("utf-8", "replace").rstrip("\n")
                    if line.startswith("P "):
                        self.progress(line, local)
                    elif line.startswith("X "):
                        outcome = ("exit", int(line[2:]) if line[2:].lstrip("-").isdigit() else 1)
                    elif line == "G":
                        outcome = ("gone", None)
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if outcome is not None:
            return outcome
        stderr = proc.stderr.read()
        if code == 255 or code < 0:  # ssh's own failure, or the ssh process was killed
            raise ssh_failure(self.executor.host, stderr)
        raise FtctlError(
            f"{self.where}: following the worker failed (exit {code}: "
            f"{last_line(stderr) or 'no output'})"
        )

    def progress(self, line: str, local: Any) -> None:
        _, end, text = [*line.split(" ", 2), "", ""][:3]
        if end.isdigit():
            self.offset = int(end)
        local.write(text.encode() + b"\n")
        try:
            event = json.loads(text)
        except ValueError:
            return
        if isinstance(event, dict):
            self.on_event(event)

    def finish(self) -> int:
        """Copy the finished run back, checked file by file, result.json last; clear the host."""
        answer = self.retrying(
            lambda: self.call("outputs", None, finished=True, byproducts=list(BYPRODUCTS))
        )
        files = _file_list(answer.get("files"), self.where)
        incoming = self.run_dir / INCOMING
        self.retrying(
            lambda: download(self.session, f"{self.remote_run}/out", files, incoming, self.rsync)
        )
        for name in ("adapter", *[b for b in BYPRODUCTS if b != "result.json"], "result.json"):
            target = self.run_dir / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(incoming / name, target)
        shutil.rmtree(incoming, ignore_errors=True)
        self.keep_log(str(answer.get("log") or ""))
        with contextlib.suppress(FtctlError):  # a finished run left there costs disk, not results
            self.call("clean")
        return 0

    def fetch_log(self) -> None:
        """The tail of the host's worker.log into the local one (apply shows its last error)."""
        with contextlib.suppress(FtctlError):
            self.keep_log(str(self.call("outputs", finished=False).get("log") or ""))

    def keep_log(self, text: str) -> None:
        if text:
            write_atomic(self.run_dir / WORKER_LOG, text)

    def stop(self) -> None:
        """Ctrl-C: the worker on the host stops too (SIGINT, then SIGKILL); its run stays there."""
        with contextlib.suppress(FtctlError, KeyboardInterrupt):
            if self.workdir:
                self.call("stop", STOP_GRACE_S + 30, grace=STOP_GRACE_S)
                self.fetch_log()


def launch_script(run: str, python: str, setup: list[str]) -> str:
    """The host's launch.sh: into the run directory, the setup commands, then the worker."""
    lines = [
        "# Written by ftctl: the executor's setup commands, then the worker.",
        "set -e",
        f"cd {shlex.quote(run)}",
    ]
    if setup:
        lines.append(
            'trap \'ftctl_rc=$?; [ "$ftctl_rc" -eq 0 ] || '
            'echo "ftctl: error: a setup command failed (exit $ftctl_rc)" >&2\' EXIT'
        )
        lines += setup
        lines.append("trap - EXIT")
    spec = shlex.quote(f"{run}/{SPEC}")
    lines.append(f"exec {shlex.quote(python)} -P -c {shlex.quote(LAUNCH)} {spec}")
    return "\n".join(lines) + "\n"


def _file_list(value: Any, where: str) -> list[tuple[str, str, int]]:
    files = []
    for entry in value if isinstance(value, list) else []:
        if (
            isinstance(entry, list)
            and len(entry) == 3
            and isinstance(entry[0], str)
            and isinstance(entry[1], str)
            and isinstance(entry[2], int)
        ):
            files.append((entry[0], entry[1], entry[2]))
    names = {rel for rel, _, _ in files}
    if not any(rel.startswith("adapter/") for rel in names) or not set(BYPRODUCTS) <= names:
        raise FtctlError(f"{where}: the finished run on the host lacks its adapter or run files")
    return files
