"""The ssh executor's helper on the host: a stdlib-only script, sent over ssh and run there.

It is never imported by ftctl itself: ``sshcmd.call`` sends this file's source with one request
as JSON on the ssh command's stdin, to the host's ``python:``, so it works before ftctl is
known to be installed there (the probe says whether it is) and whatever ftctl version the host
has. Each request does one thing and answers one JSON object on stdout; ``follow`` instead
streams lines until the worker is done.

On the host, under the executor's ``workdir``::

    inputs/<sha256>          every input file, by content, verified before it is moved in
    inputs/.incoming/<sha>   files being copied (a copy resumes where it stopped)
    runs/<fingerprint>/      one run: ws/ (the workspace the worker sees: recipe, lock, pins and
                             inputs, hard links into inputs/), out/ (the worker's run directory),
                             spec.json, launch.sh, worker.log, progress.jsonl, worker.pid,
                             worker.exit (the exit code, written once the worker has stopped)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TRAINING = ("torch", "transformers", "peft", "trl", "datasets", "accelerate")
HEARTBEAT_S = 5.0  # a follower writes at least this often, so one left by a lost link exits
POLL_S = 0.2
STALL_S = 60.0  # receive gives up on a file that stops growing this long
CHUNK = 4 * 1024 * 1024
_CHECKPOINT_PREFIX = "checkpoint-"


class Refused(Exception):
    """A request the host cannot carry out: its message goes back as one line."""


def main(request: dict[str, Any]) -> None:
    op = request.get("op")
    handler = _OPS.get(op) if isinstance(op, str) else None
    try:
        if handler is None:
            raise Refused(f"unknown request {op!r}")
        answer = handler(request)
    except Refused as exc:
        answer = {"ok": False, "error": str(exc)}
    except OSError as exc:
        answer = {"ok": False, "error": f"{exc.filename or 'the host'}: {exc.strerror}"}
    if answer is not None:
        _line(json.dumps(answer))


def _run_dir(request: dict[str, Any]) -> Path:
    return Path(request["workdir"]) / "runs" / str(request["fp"])


def _inputs(request: dict[str, Any]) -> Path:
    return Path(request["workdir"]) / "inputs"


# -- probe: what the host has ------------------------------------------------------------------


def probe(request: dict[str, Any]) -> dict[str, Any]:
    """The interpreter, ftctl and the training stack; the absolute workdir; the blobs the host
    lacks (and how much of each a stopped copy left); the state of this run."""
    workdir = Path(os.path.expanduser(str(request["workdir"])))
    if not workdir.is_absolute():
        workdir = Path.home() / workdir
    request = {**request, "workdir": str(workdir)}
    ftctl_version = None
    if importlib.util.find_spec("ftctl") is not None:
        from importlib import metadata

        try:
            ftctl_version = metadata.version("ftctl")
        except metadata.PackageNotFoundError:
            ftctl_version = "unknown"
    missing_modules = [m for m in TRAINING if importlib.util.find_spec(m) is None]
    inputs = _inputs(request)
    (inputs / ".incoming").mkdir(parents=True, exist_ok=True, mode=0o700)
    (workdir / "runs").mkdir(parents=True, exist_ok=True, mode=0o700)
    missing, partial = [], {}
    for sha in request.get("blobs", []):
        if (inputs / sha).is_file():
            continue
        missing.append(sha)
        with contextlib.suppress(OSError):
            partial[sha] = (inputs / ".incoming" / sha).stat().st_size
    return {
        "ok": True,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "ftctl": ftctl_version,
        "missing_modules": missing_modules,
        "workdir": str(workdir),
        "rsync": shutil.which("rsync") is not None,
        "missing": missing,
        "partial": partial,
        "state": state(_run_dir(request)),
    }


def state(run: Path) -> dict[str, Any]:
    """finished (result.json is there), running, the recorded exit code, the newest checkpoint."""
    code = None
    with contextlib.suppress(OSError, ValueError):
        code = int((run / "worker.exit").read_text().strip())
    checkpoint = newest_checkpoint(run / "out" / "checkpoints")
    return {
        "exists": run.is_dir(),
        "finished": (run / "out" / "result.json").is_file(),
        "running": _running(run),
        "exit": code,
        "checkpoint": checkpoint.name if checkpoint is not None else None,
    }


def newest_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint whose trainer_state.json (written last by transformers) is whole."""
    if not folder.is_dir():
        return None
    steps = []
    for child in folder.iterdir():
        tail = child.name[len(_CHECKPOINT_PREFIX) :]
        if child.name.startswith(_CHECKPOINT_PREFIX) and tail.isdigit() and child.is_dir():
            steps.append((int(tail), child))
    for _, child in sorted(steps, reverse=True):
        try:
            data = json.loads((child / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("global_step"), int):
            return child
    return None


def _start_time(pid: int) -> str | None:
    """The process's start time (/proc/PID/stat), so a pid reused by another process is not it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None  # gone (a host without /proc is not supported)
    if len(fields) <= 19 or fields[0] in ("Z", "X"):  # a zombie has finished (init reaps late)
        return None
    return fields[19]


def _alive(pid: Any, started: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    now = _start_time(pid)
    return now is not None and now == started


def _pids(run: Path) -> dict[str, Any]:
    try:
        data = json.loads((run / "worker.pid").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _running(run: Path) -> bool:
    pids = _pids(run)
    return _alive(pids.get("supervisor"), pids.get("supervisor_start")) or _alive(
        pids.get("pid"), pids.get("start")
    )


# -- start: verify what arrived, lay out the run, start the worker detached ----------------------


def start(request: dict[str, Any]) -> dict[str, Any]:
    run = _run_dir(request)
    if _running(run):  # a retried start whose first try got through: nothing more to do
        return {"ok": True, "attached": True, "pids": _pids(run)}
    damaged = verify_incoming(_inputs(request), request.get("incoming", []))
    if damaged:
        return {"ok": True, "damaged": damaged}
    run.mkdir(parents=True, exist_ok=True, mode=0o700)
    for part in ("ws", "upstream"):
        shutil.rmtree(run / part, ignore_errors=True)
    out = run / "out"
    out.mkdir(exist_ok=True)
    for child in out.iterdir():  # what an unfinished attempt left, but its checkpoints
        if child.name == "checkpoints" and child.is_dir() and not child.is_symlink():
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    checkpoint = newest_checkpoint(out / "checkpoints")
    files = request.get("files", [])
    if checkpoint is None:  # none here: the controller's own checkpoint, if it sent one
        files = files + request.get("resume_files", [])
    _lay_out(run, _inputs(request), files)
    for name, text in request.get("write", {}).items():
        _write(run / name, text)
    if checkpoint is None:
        checkpoint = newest_checkpoint(out / "checkpoints")
    if not request.get("launch", True):  # laid out only (the tests look at it)
        return {"ok": True, "launched": False}
    spec = dict(request["spec"])
    spec["resume_from"] = str(checkpoint) if checkpoint is not None else None
    _write(run / "spec.json", json.dumps(spec, indent=2) + "\n")
    for name in ("worker.exit", "worker.pid"):
        with contextlib.suppress(FileNotFoundError):
            (run / name).unlink()
    resuming = checkpoint.name if checkpoint is not None else None
    with (run / "worker.log").open("a", encoding="utf-8") as log:
        log.write(
            f"ftctl: starting the worker{f', resuming from {resuming}' if resuming else ''}\n"
        )
    _supervise(run, {**os.environ, **request.get("env", {})})
    return {"ok": True, "resuming": resuming}


def verify_incoming(inputs: Path, shas: list[str]) -> list[str]:
    """Hash each copied file ``receive`` has not stored: a whole one moves into the store; a
    damaged or missing one is listed (to be copied again)."""
    damaged = []
    for sha in shas:
        incoming = inputs / ".incoming" / sha
        if (inputs / sha).is_file():
            continue
        if incoming.is_file() and file_sha256(incoming) == sha:
            _store(inputs, sha)
            continue
        with contextlib.suppress(FileNotFoundError):
            incoming.unlink()
        damaged.append(sha)
    return damaged


def _store(inputs: Path, sha: str) -> None:
    incoming = inputs / ".incoming" / sha
    os.chmod(incoming, 0o444)
    os.replace(incoming, inputs / sha)


def receive(request: dict[str, Any]) -> None:
    """Hash each (sha256, size) while rsync or sftp writes it into .incoming, in that order,
    and store it once whole: the check on arrival takes no pass of its own. One line per file,
    ``OK sha`` or ``BAD sha`` (removed), ``H`` while waiting (so a lost link ends this), ``DONE``."""
    inputs = _inputs(request)
    for sha, size in request.get("files", []):
        _line(f"{_receive_one(inputs, str(sha), int(size))} {sha}")
    _line("DONE")


def _receive_one(inputs: Path, sha: str, size: int) -> str:
    incoming = inputs / ".incoming" / sha
    digest, done, buffer = hashlib.sha256(), 0, bytearray(CHUNK)
    view, handle, idle, beat = memoryview(buffer), None, time.monotonic(), 0.0
    try:
        while done < size:
            if handle is None and incoming.is_file():
                handle = incoming.open("rb", buffering=0)
            n = handle.readinto(buffer) if handle is not None else 0
            now = time.monotonic()
            if n:
                digest.update(view[:n])
                done, idle = done + n, now
                continue
            if now - idle > STALL_S:
                return "STALLED"  # left for start to check
            if now - beat > 1:
                _line("H")
                beat = now
            time.sleep(0.01)
    finally:
        if handle is not None:
            handle.close()
    # Written out of order, or changed meanwhile: hashed again, whole, before it is refused.
    if digest.hexdigest() != sha and file_sha256(incoming) != sha:
        incoming.unlink()
        return "BAD"
    _store(inputs, sha)
    return "OK"


def _line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as handle:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while n := handle.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def _lay_out(run: Path, inputs: Path, files: list[list[str]]) -> None:
    """Each (path in the run directory, sha256) as a hard link to the stored blob (a copy when
    the store is on another filesystem). Paths were checked by the controller; checked again."""
    for rel, sha in files:
        target = run / rel
        if rel.startswith("/") or ".." in rel.split("/"):
            raise Refused(f"refusing the path {rel!r}")
        blob = inputs / sha
        if not blob.is_file():
            raise Refused(f"input {sha[:12]} for {rel} is not on the host")
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        try:
            os.link(blob, target)
        except OSError:
            shutil.copyfile(blob, target)


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _supervise(run: Path, env: dict[str, str]) -> None:
    """Start ``sh launch.sh`` detached (its own session: a lost ssh connection does not reach it),
    under a supervisor that records its pid, then its exit code in worker.exit."""
    child = os.fork()
    if child == 0:  # pragma: no cover - the forked side, observed through its files
        try:
            os.setsid()
            if os.fork() > 0:
                os._exit(0)
            _be_supervisor(run, env)
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    deadline = time.monotonic() + 30
    while not (run / "worker.pid").is_file():
        if time.monotonic() > deadline:
            raise Refused("the worker did not start")
        time.sleep(0.02)


def _be_supervisor(run: Path, env: dict[str, str]) -> None:  # pragma: no cover - forked
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(run / "worker.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(3, 65536)
    proc = subprocess.Popen(
        ["/bin/sh", str(run / "launch.sh")], cwd=run, env=env, start_new_session=True
    )
    me = os.getpid()
    pids = {
        "pid": proc.pid,
        "start": _start_time(proc.pid),
        "supervisor": me,
        "supervisor_start": _start_time(me),
    }
    _write(run / "worker.pid", json.dumps(pids) + "\n")
    code = proc.wait()
    if code < 0:
        code = 130 if code == -signal.SIGINT else 128 - code
    _write(run / "worker.exit", f"{code}\n")


# -- follow: the progress events as they land, then the exit code --------------------------------


def follow(request: dict[str, Any]) -> None:
    """``P <end offset> <line>`` per progress event from byte ``offset`` on, ``H`` now and then, and last
    ``X <code>`` (the worker exited) or ``G`` (it is gone without an exit code: resume it)."""
    run = _run_dir(request)
    progress = run / "progress.jsonl"
    offset = int(request.get("offset", 0))
    last = time.monotonic()
    while True:
        exit_file = run / "worker.exit"
        done = exit_file.is_file()
        running = done or _running(run)
        offset = _drain(progress, offset)
        if done:
            _line(f"X {exit_file.read_text().strip()}")
            return
        if not running:
            _line("G")
            return
        if time.monotonic() - last > HEARTBEAT_S:
            _line("H")
            last = time.monotonic()
        time.sleep(POLL_S)


def _drain(path: Path, offset: int) -> int:
    try:
        with path.open("rb") as stream:
            stream.seek(offset)
            data = stream.read(1 << 20)
    except OSError:
        return offset
    end = data.rfind(b"\n") + 1
    position = offset
    for line in data[:end].split(b"\n")[:-1]:
        position += len(line) + 1  # where the next follower starts, should this link be lost
        text = line.decode("utf-8", "replace").replace("\r", "")
        sys.stdout.write(f"P {position} {text}\n")
    sys.stdout.flush()
    return offset + end


# -- stop, outputs, clean ----------------------------------------------------------------------


def stop(request: dict[str, Any]) -> dict[str, Any]:
    """SIGINT to the worker's process group (accelerate's processes too); SIGKILL after ``grace``."""
    run = _run_dir(request)
    pids = _pids(run)
    pid = pids.get("pid")
    if isinstance(pid, int) and _alive(pid, pids.get("start")):
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGINT)
        deadline = time.monotonic() + float(request.get("grace", 30))
        while _alive(pid, pids.get("start")) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        if _alive(pid, pids.get("start")):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
    return {"ok": True}


def outputs(request: dict[str, Any]) -> dict[str, Any]:
    """Every file the controller copies back, with its sha256 and size; the log's tail."""
    out = _run_dir(request) / "out"
    files = []
    if request.get("finished", True):
        names = [f"adapter/{rel}" for rel in _tree(out / "adapter")]
        names += list(request.get("byproducts", []))
        for rel in names:
            path = out / rel
            if path.is_symlink() or not path.is_file():
                raise Refused(f"{path} is missing or not a regular file")
            files.append([rel, file_sha256(path), path.stat().st_size])
    return {"ok": True, "files": files, "log": _tail(_run_dir(request) / "worker.log")}


def _tree(root: Path) -> list[str]:
    if not root.is_dir() or root.is_symlink():
        raise Refused(f"{root} is missing")
    found = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if Path(directory, d).is_symlink()]):
            found.append((Path(directory) / name).relative_to(root).as_posix())
    return found


def _tail(path: Path, size: int = 65536) -> str:
    try:
        with path.open("rb") as stream:
            stream.seek(max(0, path.stat().st_size - size))
            return stream.read().decode("utf-8", "replace")
    except OSError:
        return ""


def clean(request: dict[str, Any]) -> dict[str, Any]:
    """Remove a run once the controller holds its outputs (the input store stays)."""
    run = _run_dir(request)
    deadline = time.monotonic() + 10  # the supervisor exits just after writing worker.exit
    while _running(run) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    if _running(run):
        raise Refused(f"a worker still runs in {run}")
    shutil.rmtree(run, ignore_errors=True)
    return {"ok": True}


_OPS = {f.__name__: f for f in (probe, start, receive, follow, stop, outputs, clean)}

if __name__ == "ftctl_hostside":  # run on the host through sshcmd.BOOT
    main(globals()["REQUEST"])
