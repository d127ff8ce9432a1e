"""Copying files to and from the host over the executor's ssh connection: rsync, else sftp.

Inputs go up by content: each file is sent as ``inputs/.incoming/<sha256>`` and is resumed
where a stopped copy left it (rsync ``--partial --append-verify``, sftp ``put -a``); the host
hashes it before moving it into its store (hostside.verify_incoming). Outputs come back into a
temporary directory beside the run directory and are hashed here against the digests the host
computed; only then are they moved into place, result.json last.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path

from ftctl.errors import FtctlError
from ftctl.executors.sshcmd import ConnectionLost, Session, last_line
from ftctl.executors.sshinputs import Blob

_SAFE_REL = re.compile(r"^[A-Za-z0-9_.+=@,-]+(/[A-Za-z0-9_.+=@,-]+)*$")
CHUNK = 4 * 1024 * 1024


def upload(
    session: Session,
    python: str,
    workdir: str,
    blobs: Sequence[Blob],
    rsync: bool,
    partial: Collection[str] = (),
) -> set[str]:
    """Send ``blobs`` to ``<workdir>/inputs/.incoming/``, resuming the copies a stopped one left
    (rsync appends to them; sftp to the ``partial`` ones the probe reported), while the host's
    ``receive`` hashes each file as it lands. The blobs the host stored, checked; any other is
    left for its ``start`` to check or report damaged."""
    if not blobs:
        return set()
    blobs = sorted(blobs, key=lambda blob: blob.sha)  # the order rsync sends a folder in
    incoming = f"{workdir}/inputs/.incoming"
    files = [[blob.sha, blob.size] for blob in blobs]
    receiver = session.stream(python, {"op": "receive", "workdir": workdir, "files": files})
    try:
        with tempfile.TemporaryDirectory(prefix="ftctl-up-") as tmp:
            names = Path(tmp) / "blobs"  # sha256-named links to the files: plain names there
            names.mkdir()
            for blob in blobs:
                (names / blob.sha).symlink_to(blob.source.resolve())
            if rsync:
                # --append writes in place, in order, after what a stopped copy left: what
                # receive hashes as it goes.
                command = ["rsync", "-rL", "--append", "--chmod=F600", "-e", session.rsh()]
                command += [f"{names}/", f"{session.host.remote_prefix}{incoming}/"]
            else:
                batch = Path(tmp) / "batch"
                batch.write_text(
                    "".join(
                        f"put{' -a' if b.sha in partial else ''} {names}/{b.sha} {incoming}/{b.sha}\n"
                        for b in blobs
                    )
                )
                command = session.sftp(batch)
            _copy(session, command, "copying inputs to")
        return _received(receiver)
    finally:
        if receiver.poll() is None:
            receiver.kill()
        receiver.wait()


def _received(receiver: subprocess.Popen[bytes]) -> set[str]:
    """The blobs ``receive`` reported stored (``OK sha``), once it is done."""
    assert receiver.stdout is not None
    stored = set()
    for raw in receiver.stdout:
        line = raw.decode("utf-8", "replace").strip()
        if line == "DONE":
            break
        if line.startswith("OK "):
            stored.add(line[3:])
    return stored


def download(
    session: Session,
    remote_dir: str,
    files: Sequence[tuple[str, str, int]],
    destination: Path,
    rsync: bool,
) -> None:
    """Fetch ``files`` (path under ``remote_dir``, sha256, size) into ``destination`` (made empty
    first) and check each against its sha256; any difference removes them all and raises."""
    for rel, _, _ in files:
        if not _SAFE_REL.match(rel) or ".." in rel.split("/"):
            raise FtctlError(
                f"executor {session.host.executor}: the host names an output {rel!r} that is "
                "not a plain relative path; refusing to copy it"
            )
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="ftctl-down-") as tmp:
        if rsync:
            listing = Path(tmp) / "files"
            listing.write_text("".join(f"{rel}\n" for rel, _, _ in files))
            command = [
                "rsync",
                "-r",
                "--partial",
                f"--files-from={listing}",
                "-e",
                session.rsh(),
                f"{session.host.remote_prefix}{remote_dir}/",
                f"{destination}/",
            ]
        else:
            for rel, _, _ in files:
                (destination / rel).parent.mkdir(parents=True, exist_ok=True)
            batch = Path(tmp) / "batch"
            batch.write_text(
                "".join(f"get {remote_dir}/{rel} {destination}/{rel}\n" for rel, _, _ in files)
            )
            command = session.sftp(batch)
        _copy(session, command, "copying the outputs from")
    problems = verify(destination, files)
    if problems:
        shutil.rmtree(destination, ignore_errors=True)
        raise FtctlError(
            f"executor {session.host.executor}: {problems[0]} after copying it back from "
            f"{session.host.shown}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            hint="nothing was signed; apply again to copy it again (the run stays on the host)",
        )


def verify(root: Path, files: Sequence[tuple[str, str, int]]) -> list[str]:
    """What differs between the files under ``root`` and (path, sha256, size); [] if nothing."""
    problems = []
    expected = {rel for rel, _, _ in files}
    for rel, sha, size in files:
        path = root / rel
        if path.is_symlink() or not path.is_file():
            problems.append(f"{rel} is missing")
        elif path.stat().st_size != size or sha256_file(path) != sha:
            problems.append(f"{rel} differs from the host's sha256")
    for directory, _, names in os.walk(root):
        for name in names:
            rel = (Path(directory) / name).relative_to(root).as_posix()
            if rel not in expected:
                problems.append(f"{rel} was not asked for")
    return problems


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as handle:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while n := handle.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def _copy(session: Session, command: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            check=False,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise FtctlError(
            f"executor {session.host.executor}: no {command[0]} command on this machine",
            hint="install rsync or the OpenSSH client",
        ) from None
    if done.returncode == 0:
        return
    shown = f"executor {session.host.executor}: {what} {session.host.shown}"
    error = last_line(done.stderr) or f"{command[0]} exit {done.returncode}"
    # rsync: 10-12, 20 and 30/35 are the link failing, 255 is ssh's; sftp: 255 or 1 on a lost
    # link; a negative code: the copy was killed.
    lost = done.returncode in (10, 11, 12, 20, 30, 35, 255) or done.returncode < 0
    if lost or "connection" in error.lower():
        raise ConnectionLost(f"{shown} failed ({error})")
    raise FtctlError(f"{shown} failed ({error})")
