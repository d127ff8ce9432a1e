"""The ssh executor's benchmarks, each against its baseline measured in the same run.

    python bench/ssh.py [--runs 3] [--gib 1] [--skip-training]

Both use a real sshd on 127.0.0.1 (throwaway keys, as the tests start it): the "host" is this
machine, so the figures are the executor's own overhead, not a network's.

(a) Apply of the tiny recipe through the ssh executor against the local executor, whole
    process, median of --runs, interleaved. The first ssh apply also copies the inputs to the
    host; the later ones find them in its store. Target: at most 1.2x, plus the input copy.
(b) The executor's copy of a --gib GiB input (probe, rsync, sha256 on the host, into the store)
    against plain `rsync` of the same file over the same sshd, median of --runs, interleaved.
    Target: at most 1.1x.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ftctl.executors.sshcmd import Host, Session  # noqa: E402
from ftctl.executors.sshinputs import Blob  # noqa: E402
from ftctl.executors.transfer import upload  # noqa: E402
from tests.executors.sshd import Sshd, start_sshd  # noqa: E402


def workspace(root: Path, executors: dict[str, object], name: str) -> dict[str, str]:
    """A git workspace with the tiny model, data and tiny-alpaca recipe on executor ``name``,
    locked; the environment apply signs with there."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(root.with_name(root.name + "-home"))}
    shutil.copytree(REPO / "models", root / "models")
    (root / "data").mkdir()
    shutil.copy(REPO / "data" / "alpaca-tiny.jsonl", root / "data")
    (root / "recipes").mkdir()
    recipe = (REPO / "recipes" / "tiny-alpaca.yaml").read_text() + f"  executor: {name}\n"
    (root / "recipes" / "tiny-alpaca.yaml").write_text(recipe)
    (root / "ftctl.yaml").write_text(json.dumps({"executors": executors}) + "\n")
    (root / ".gitignore").write_text(".ftctl/\nregistry/\noutputs/\n")
    for command in (
        ["git", "init", "-q"],
        [sys.executable, "-m", "ftctl", "keygen", "bench"],
        [sys.executable, "-m", "ftctl", "lock"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "bench"],
    ):
        subprocess.run(command, cwd=root, env=env, check=True, capture_output=True)
    env["FTCTL_SIGNING_KEY"] = str(Path(env["XDG_CONFIG_HOME"]) / "ftctl" / "keys" / "bench.key")
    return env


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - start


def fresh_state(root: Path) -> None:
    for name in ("manifests", "registry", ".ftctl"):
        shutil.rmtree(root / name, ignore_errors=True)


def verdict(ratio: float, target: float) -> str:
    return "met" if ratio <= target else "MISSED"


def bench_apply(server: Sshd, tmp: Path, runs: int) -> None:
    apply = [sys.executable, "-m", "ftctl", "apply", "--auto-approve"]
    local, remote = tmp / "local", tmp / "remote"
    local_env = workspace(local, {}, "local")
    env = workspace(remote, {"box": server.executor(tmp / "host")}, "box")
    cold = timed(apply, remote, env)  # copies the inputs to the host
    ours, base = [], []
    for _ in range(runs):
        fresh_state(local)
        base.append(timed(apply, local, local_env))
        fresh_state(remote)
        ours.append(timed(apply, remote, env))
    mine, theirs = statistics.median(ours), statistics.median(base)
    print(f"(a) apply of the tiny recipe, whole process, median of {runs} interleaved runs")
    print(f"    local executor (baseline)          {theirs:6.2f} s")
    print(f"    ssh executor, inputs on the host   {mine:6.2f} s  {mine / theirs:5.2f}x  "
          f"target <= 1.2x: {verdict(mine / theirs, 1.2)}")  # fmt: skip
    print(f"    ssh executor, first apply          {cold:6.2f} s  (copying the inputs: "
          f"{max(cold - mine, 0):.2f} s more)")  # fmt: skip


def bench_copy(server: Sshd, tmp: Path, runs: int, gib: float) -> None:
    source = tmp / "big.bin"
    with source.open("wb") as out:
        for _ in range(int(gib * 1024)):
            out.write(os.urandom(1 << 20))
    digest = hashlib.sha256()
    with source.open("rb") as stream:
        while chunk := stream.read(1 << 22):
            digest.update(chunk)
    sha = digest.hexdigest()  # as `ftctl lock` left it in the stat cache
    blob = Blob(sha, source.stat().st_size, source)
    host = tmp / "copyhost"
    plain_dest = tmp / "plain-dest"
    plain_dest.mkdir()
    ssh = ["ssh", "-p", str(server.port), "-i", str(server.user_key)]
    ssh += ["-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "BatchMode=yes"]
    target = f"{server.user}@127.0.0.1:{plain_dest}/"
    plain = ["rsync", "-e", " ".join(ssh), str(source), target]
    plain_gcm = [
        "rsync",
        "-e",
        " ".join([*ssh, "-c", "aes128-gcm@openssh.com"]),
        str(source),
        target,
    ]

    def ours() -> float:
        shutil.rmtree(host, ignore_errors=True)
        start = time.perf_counter()
        session = Session(Host("bench", "127.0.0.1", server.port, server.user,
                               server.user_key, server.known_hosts))  # fmt: skip
        try:
            common = {"workdir": str(host), "fp": "0" * 64}
            probe = session.call(sys.executable, {"op": "probe", **common, "blobs": [sha]})
            stored = upload(
                session, sys.executable, probe["workdir"], [blob], probe["rsync"], probe["partial"]
            )
            assert stored == {sha}  # hashed on the host as it landed, and stored
        finally:
            session.close()
        elapsed = time.perf_counter() - start
        assert (host / "inputs" / sha).stat().st_size == blob.size
        return elapsed

    def baseline(command: list[str]) -> float:
        for child in plain_dest.iterdir():
            child.unlink()
        return timed(command, tmp)

    mine, base, base_gcm = [], [], []
    for _ in range(runs):
        base.append(baseline(plain))
        mine.append(ours())
        base_gcm.append(baseline(plain_gcm))
    m, b, g = statistics.median(mine), statistics.median(base), statistics.median(base_gcm)
    print(
        f"(b) copy of a {gib:g} GiB input over the loopback sshd, median of {runs} interleaved runs"
    )
    print(f"    plain rsync (baseline)                    {b:6.2f} s  {gib * 1024 / b:6.0f} MiB/s")
    print(f"    ssh executor (rsync + sha256 on the host) {m:6.2f} s  {m / b:5.2f}x  "
          f"target <= 1.1x: {verdict(m / b, 1.1)}")  # fmt: skip
    print(
        f"    plain rsync with the executor's cipher    {g:6.2f} s  (the executor: {m / g:4.2f}x)"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    if shutil.which("rsync") is None:
        raise SystemExit("bench/ssh.py needs rsync and openssh-server (apt-get install ...)")
    subprocess.run([sys.executable, "-m", "dvc", "pull", "-q"], cwd=REPO, check=True)
    # Short: the executor's ssh control socket lives under TMPDIR.
    with tempfile.TemporaryDirectory(prefix="ftb-", dir="/tmp") as name:
        tmp = Path(name)
        server = start_sshd(tmp / "sshd")
        try:
            if not args.skip_training:
                bench_apply(server, tmp, args.runs)
            bench_copy(server, tmp, args.runs, args.gib)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
