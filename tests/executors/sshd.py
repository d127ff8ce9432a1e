"""A real OpenSSH server on 127.0.0.1 for the ssh executor's tests: throwaway keys, own config.

It runs as the current user, in the foreground (``sshd -D``), with a private sshd_config: a
host key and an authorized user key made by ssh-keygen in the test's directory, no PAM, no
strict modes (the temp directory's permissions are pytest's), root login allowed when the
tests run as root. The "remote host" is this machine: the executor is pointed at this
interpreter (``python: sys.executable``), whose ftctl is the one under test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SBIN = "/usr/sbin:/usr/local/sbin:/sbin"


def sshd_binary() -> str | None:
    return shutil.which("sshd", path=f"{os.environ.get('PATH', '')}:{SBIN}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ftctl-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


@dataclass
class Sshd:
    directory: Path
    port: int
    host_key: Path
    user_key: Path
    known_hosts: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def user(self) -> str:
        import getpass

        return getpass.getuser()

    def config(self) -> Path:
        path = self.directory / "sshd_config"
        root = os.geteuid() == 0
        path.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.directory / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.directory / 'authorized_keys'}",
                    "UsePAM no",
                    "StrictModes no",
                    f"PermitRootLogin {'prohibit-password' if root else 'no'}",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "Subsystem sftp internal-sftp",
                    "MaxStartups 50",
                    "MaxSessions 50",
                    "UseDNS no",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        return path

    def start(self) -> None:
        binary = sshd_binary()
        assert binary is not None
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        self.proc = subprocess.Popen(
            [binary, "-D", "-f", str(self.config()), "-E", str(self.directory / "sshd.log")],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.directory / 'sshd.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None

    def executor(self, workdir: Path, **extra: object) -> dict[str, object]:
        """ftctl.yaml's entry for an ssh executor on this server."""
        return {
            "type": "ssh",
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "identity_file": str(self.user_key),
            "known_hosts": str(self.known_hosts),
            "workdir": str(workdir),
            "python": sys.executable,
            **extra,
        }


def start_sshd(directory: Path) -> Sshd:
    directory.mkdir(parents=True, exist_ok=True)
    host_key = keygen(directory / "host_key")
    user_key = keygen(directory / "user_key")
    shutil.copy(directory / "user_key.pub", directory / "authorized_keys")
    port = free_port()
    known = directory / "known_hosts"
    public = (directory / "host_key.pub").read_text().split()
    known.write_text(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")
    server = Sshd(directory, port, host_key, user_key, known)
    server.start()
    return server
