"""The system ssh as the ssh executor drives it: its options, one connection, the host's helper.

Every command goes through the system ``ssh`` (so ``~/.ssh/config``, agents and jump hosts
work as they do for the user), with the options that make it safe and unattended: host keys
checked against known_hosts (``StrictHostKeyChecking=yes``: an unknown or changed key stops
the run, never a prompt and never a silent accept), ``BatchMode`` (no password prompt),
nothing forwarded, and one multiplexed connection (ControlMaster) per run, whose socket sits in
a private temporary directory. rsync and sftp ride the same connection.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ftctl.errors import FtctlError, one_line

CONNECT_TIMEOUT_S = 15
ALIVE_INTERVAL_S = 5  # with ALIVE_COUNT, a dead link is noticed within 15 s
ALIVE_COUNT = 3
PERSIST_S = 60  # the master outlives a killed ftctl by at most this much
# AES-GCM first: with AES instructions (every x86 server and Apple/Graviton CPU) it is the
# fastest cipher OpenSSH has, ~30% faster than its default for copying inputs. Only the order
# changes: every cipher the defaults allow stays allowed.
CIPHERS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
# Run the helper with the working directory off sys.path (as -P does, on any Python 3).
BOOT = (
    "import sys;sys.path[:]=[p for p in sys.path if p not in ('','.')];import json;"
    "r=json.loads(sys.stdin.buffer.read());"
    "exec(compile(r.pop('src'),'ftctl-hostside','exec'),{'__name__':'ftctl_hostside','REQUEST':r})"
)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.@%+:-]*$")
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./~+@%:=,-]+$")


class ConnectionLost(FtctlError):
    """ssh could not reach the host, or the link broke: worth another try."""


@dataclass(frozen=True)
class Host:
    """Where an ssh executor trains, as ftctl.yaml configures it (checked to be safe to pass on)."""

    executor: str  # its name in ftctl.yaml, for messages
    host: str
    port: int = 22
    user: str | None = None
    identity_file: Path | None = None
    known_hosts: Path | None = None

    def __post_init__(self) -> None:
        where = f"ftctl.yaml: executors.{self.executor}"
        for key, value in (("host", self.host), ("user", self.user)):
            if value is not None and not _SAFE_NAME.match(value):
                raise FtctlError(
                    f"{where}.{key}: {value!r} is not a host or user name ssh can be given safely",
                    hint="use a plain name or address (letters, digits, . _ - :), or a Host alias "
                    "from ~/.ssh/config",
                )
        for key, path in (("identity_file", self.identity_file), ("known_hosts", self.known_hosts)):
            if path is not None and not _SAFE_PATH.match(str(path)):
                raise FtctlError(
                    f"{where}.{key}: {str(path)!r} holds a space, quote or other special character",
                    hint="move the file to a plain path",
                )

    @property
    def shown(self) -> str:
        return f"{self.host}:{self.port}" if self.port != 22 else self.host

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def remote_prefix(self) -> str:
        """``dest:`` as rsync writes a remote path (an IPv6 address in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}:" if self.user else f"{host}:"


@dataclass
class Session:
    """One multiplexed connection to a host; :meth:`close` ends it and removes its socket."""

    host: Host
    control_dir: Path = field(default_factory=lambda: _control_dir())

    def options(self) -> list[str]:
        """The options every ssh (and rsync's and sftp's ssh) gets; the port is not among them."""
        opts = {
            "BatchMode": "yes",
            "StrictHostKeyChecking": "yes",
            "ConnectTimeout": str(CONNECT_TIMEOUT_S),
            "ServerAliveInterval": str(ALIVE_INTERVAL_S),
            "ServerAliveCountMax": str(ALIVE_COUNT),
            "ControlMaster": "auto",
            "ControlPath": str(self.control_dir / "cm"),  # one host per session: no %C needed
            "ControlPersist": str(PERSIST_S),
            "ForwardAgent": "no",
            "ForwardX11": "no",
            "ClearAllForwardings": "yes",
            "PermitLocalCommand": "no",
            "Ciphers": CIPHERS,
            "LogLevel": "ERROR",
        }
        if self.host.known_hosts is not None:
            opts["UserKnownHostsFile"] = str(self.host.known_hosts)
        if self.host.identity_file is not None:
            opts["IdentityFile"] = str(self.host.identity_file)
            opts["IdentitiesOnly"] = "yes"
        return [arg for key, value in opts.items() for arg in ("-o", f"{key}={value}")]

    def ssh(self, command: str) -> list[str]:
        """argv running ``command`` (a line for the host's shell) on the host."""
        return [
            "ssh",
            "-T",
            *self.options(),
            "-p",
            str(self.host.port),
            "--",
            self.host.destination,
            command,
        ]

    def rsh(self) -> str:
        """rsync's ``-e``: the same ssh, one string (every part is a safe word, checked above)."""
        return " ".join(["ssh", "-T", *self.options(), "-p", str(self.host.port)])

    def sftp(self, batch: Path) -> list[str]:
        return [
            "sftp",
            "-q",
            "-b",
            str(batch),
            *self.options(),
            "-P",
            str(self.host.port),
            "--",
            self.host.destination,
        ]

    def run(
        self, command: str, data: bytes | None = None, timeout: float | None = 120
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``command`` on the host with ``data`` on its stdin; a failure of ssh itself raises."""
        try:
            done = subprocess.run(
                self.ssh(command),
                input=data if data is not None else b"",
                capture_output=True,
                timeout=timeout,
                check=False,
                start_new_session=True,  # Ctrl-C is ftctl's to pass on (it stops the worker)
            )
        except subprocess.TimeoutExpired:
            raise ConnectionLost(
                f"executor {self.host.executor}: {self.host.shown} did not answer in {timeout:.0f}s"
            ) from None
        except FileNotFoundError:
            raise FtctlError(
                f"executor {self.host.executor}: no ssh command on this machine",
                hint="install the OpenSSH client (apt-get install openssh-client)",
            ) from None
        if done.returncode == 255 or done.returncode < 0:  # ssh failed, or was killed
            raise ssh_failure(self.host, done.stderr)
        return done

    def call(
        self, python: str, request: dict[str, Any], timeout: float | None = 120
    ) -> dict[str, Any]:
        """Run one request of the host's helper (hostside.py) with ``python``; its answer."""
        done = self.run(helper_command(python), helper_payload(request), timeout)
        answer = parse_answer(done.stdout)
        if answer is None:
            raise FtctlError(
                f"executor {self.host.executor}: {python} on {self.host.shown} did not run "
                f"(exit {done.returncode}: {last_line(done.stderr) or 'no output'})",
                hint=f"set executors.{self.host.executor}.python in ftctl.yaml to the host's "
                "Python 3.11+ that has ftctl[train] installed",
            )
        if answer.get("ok") is not True:
            raise FtctlError(
                f"executor {self.host.executor}: {self.host.shown}: {answer.get('error')}"
            )
        return answer

    def stream(self, python: str, request: dict[str, Any]) -> subprocess.Popen[bytes]:
        """Start a streaming request (``follow``): its stdout, line by line, is the caller's."""
        proc = subprocess.Popen(
            self.ssh(helper_command(python)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdin is not None
        try:
            proc.stdin.write(helper_payload(request))
            proc.stdin.close()
        except BrokenPipeError:
            pass  # ssh failed at once: its exit code and stderr say why
        return proc

    def close(self) -> None:
        """End the master connection (if one is up) and remove its socket's directory."""
        if (self.control_dir / "cm").exists():
            subprocess.run(
                [
                    "ssh",
                    *self.options(),
                    "-p",
                    str(self.host.port),
                    "-O",
                    "exit",
                    "--",
                    self.host.destination,
                ],
                capture_output=True,
                timeout=30,
                check=False,
            )
        shutil.rmtree(self.control_dir, ignore_errors=True)


def _control_dir() -> Path:
    """A private (0700) directory for the control socket, short enough for a socket's path
    (108 bytes on Linux; macOS's TMPDIR alone is about 50)."""
    made = tempfile.mkdtemp(prefix="ftctl-ssh-")
    if len(made) <= 90:
        return Path(made)
    os.rmdir(made)
    return Path(tempfile.mkdtemp(prefix="ftctl-ssh-", dir="/tmp"))


def helper_command(python: str) -> str:
    return f"exec {shlex.quote(python)} -c {shlex.quote(BOOT)}"


def helper_payload(request: dict[str, Any]) -> bytes:
    return json.dumps({**request, "src": hostside_source()}).encode()


@cache
def hostside_source() -> str:
    return resources.files("ftctl.executors").joinpath("hostside.py").read_text(encoding="utf-8")


def parse_answer(stdout: bytes) -> dict[str, Any] | None:
    """The helper's answer: the last stdout line, a JSON object (a login banner may precede it)."""
    lines = stdout.decode("utf-8", "replace").strip().splitlines()
    if not lines:
        return None
    try:
        answer = json.loads(lines[-1])
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def last_line(stderr: bytes) -> str:
    lines = [
        line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()
    ]
    return one_line(lines[-1][:300]) if lines else ""


_LOST = (
    "connection refused",
    "connection timed out",
    "timed out",
    "no route to host",
    "network is unreachable",
    "connection reset",
    "broken pipe",
    "closed by remote host",
    "connection closed",
    "closed by",
    "master failed",
    "mux_client",
    "control socket",
    "not responding",
    "timeout",
    "kex_exchange_identification",
    "read header failed",
    "session closed",
)


def ssh_failure(host: Host, stderr: bytes) -> FtctlError:
    """ssh's exit 255, as one line: a host key or login refused (final), else a lost link."""
    text = stderr.decode("utf-8", "replace")
    lowered = text.lower()
    where = f"executor {host.executor}: {host.shown}"
    known = str(host.known_hosts) if host.known_hosts is not None else "~/.ssh/known_hosts"
    if "host key verification failed" in lowered or "host key for" in lowered:
        if "identification has changed" in lowered or "does not match" in lowered:
            return FtctlError(
                f"{where}: its host key differs from the one in {known}, so ssh refused it "
                "(the host was reinstalled, or something is in between)",
                hint=f"check the new key's fingerprint with the host's owner, then replace its line in "
                f"{known} (ssh-keygen -R)",
            )
        return FtctlError(
            f"{where}: its host key is not in {known}, so ssh refused it",
            hint=f"check the key's fingerprint with the host's owner, then add it to {known}",
        )
    if "permission denied" in lowered or "too many authentication failures" in lowered:
        return FtctlError(
            f"{where}: the host refused the login ({last_line(stderr)})",
            hint="check user: and identity_file: in ftctl.yaml, and that the key is in the host's "
            "authorized_keys",
        )
    if "could not resolve hostname" in lowered or "bad configuration option" in lowered:
        return FtctlError(f"{where}: {last_line(stderr)}", hint="check host: in ftctl.yaml")
    if not text.strip() or any(sign in lowered for sign in _LOST):
        return ConnectionLost(
            f"{where}: the connection failed ({last_line(stderr) or 'ssh exit 255'})"
        )
    return FtctlError(
        f"{where}: ssh failed ({last_line(stderr)})", hint="check the executor's settings"
    )


def have_rsync() -> bool:
    return shutil.which("rsync") is not None


def local_path(text: str | None, root: Path) -> Path | None:
    """A path from ftctl.yaml: ``~`` expanded, relative to the workspace root."""
    if text is None:
        return None
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else root / path
