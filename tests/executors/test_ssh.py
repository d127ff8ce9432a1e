"""The ssh executor against a real sshd on 127.0.0.1 (tests/executors/sshd.py).

The host is this machine, reached over ssh: inputs are copied into its store and checked,
outputs copied back and checked, host keys and a missing ftctl refused in one line, and the
worker's lifecycle (started detached, followed, interrupted, reattached after a cut
connection, restarted when it vanished) run for real. The worker never gets as far as training
here (a setup command stops or holds it); tests/executors/test_ssh_apply.py trains.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftctl.errors import FtctlError
from ftctl.executors.select import executor_for
from ftctl.executors.ssh import launch_script
from ftctl.executors.sshcmd import Host, Session
from ftctl.executors.sshinputs import gather
from ftctl.executors.transfer import download, upload
from ftctl.lock.lockfile import load_lock
from ftctl.workspace import Workspace
from tests.conftest import REPO
from tests.executors.conftest import RECIPE, apply_spec, make_workspace
from tests.executors.sshd import Sshd, keygen

PACKAGE = REPO / "ftctl"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def host_run(host: Path, workspace: Workspace) -> Path:
    lock = load_lock(workspace.root / "lockfiles" / "tiny-alpaca.lock", "lock")
    return host / "runs" / lock.fingerprint.removeprefix("sha256:")


def session_for(workspace: Workspace) -> Session:
    config = workspace.config.executors["box"]
    assert config.type == "ssh"
    return Session(
        Host(
            "box",
            config.host,
            config.port,
            config.user,
            Path(str(config.identity_file)),
            Path(str(config.known_hosts)),
        )
    )


def error_of(workspace: Workspace) -> str:
    spec, directory = apply_spec(workspace)
    with pytest.raises(FtctlError) as caught:
        executor_for(workspace, "box").run(spec, directory, lambda event: None)
    line = caught.value.problem.render()
    assert "\n" not in line
    return line


# -- the commands ----------------------------------------------------------------------------


def test_every_ssh_command_checks_host_keys(tmp_path: Path) -> None:
    host = Host("box", "gpu.example", 2222, "ana", tmp_path / "id", tmp_path / "known")
    session = Session(host)
    try:
        for argv in (session.ssh("true"), session.rsh().split(), session.sftp(tmp_path / "b")):
            assert "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv
            assert f"UserKnownHostsFile={tmp_path / 'known'}" in argv
            assert f"IdentityFile={tmp_path / 'id'}" in argv and "IdentitiesOnly=yes" in argv
            assert "ForwardAgent=no" in argv and "ClearAllForwardings=yes" in argv
            assert any(a.startswith("ConnectTimeout=") for a in argv)
            assert any(a.startswith("ServerAliveInterval=") for a in argv)
            control = next(a for a in argv if a.startswith("ControlPath="))
            assert control.startswith(f"ControlPath={session.control_dir}/")
        assert session.ssh("true")[-3:] == ["--", "ana@gpu.example", "true"]
        assert session.sftp(tmp_path / "b")[-4:-2] == ["-P", "2222"]
        assert os.stat(session.control_dir).st_mode & 0o077 == 0  # private to this user
    finally:
        session.close()
    assert not session.control_dir.exists()
    sources = [p.read_text() for p in PACKAGE.rglob("*.py")]
    assert not any("StrictHostKeyChecking=no" in text for text in sources)
    assert not any("StrictHostKeyChecking=accept-new" in text for text in sources)


@pytest.mark.parametrize(
    ("key", "value"), [("host", "-oProxyCommand=touch pwned"), ("user", "a b"), ("host", "x;y")]
)
def test_a_host_ssh_would_read_as_an_option_is_refused(key: str, value: str) -> None:
    fields = {"host": "gpu.example", "user": "ana", key: value}
    with pytest.raises(FtctlError, match=f"executors.box.{key}"):
        Host("box", fields["host"], 22, fields["user"])


def test_launch_script_runs_setup_then_the_worker_in_one_shell() -> None:
    script = launch_script(
        "/w/runs/ab", "/opt/py 3/bin/python", ["source /opt/venv/bin/activate", "export A=1"]
    )
    lines = script.splitlines()
    assert lines[1:3] == ["set -e", "cd /w/runs/ab"]
    assert lines.index("source /opt/venv/bin/activate") < lines.index("trap - EXIT")
    assert lines[-1].startswith("exec '/opt/py 3/bin/python' -P -c ")
    assert lines[-1].endswith(" /w/runs/ab/spec.json")
    assert "trap" not in launch_script("/w", "python3", [])


# -- inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rsync", [True, False], ids=["rsync", "sftp"])
def test_inputs_are_copied_by_content_checked_and_never_copied_twice(
    sshd: Sshd, tmp_path: Path, pulled_data: Path, rsync: bool
) -> None:
    host = tmp_path / "host"
    workspace = make_workspace(tmp_path / "ws", sshd, host)
    spec, _ = apply_spec(workspace)
    payload = gather(spec, "box")
    model = workspace.root / "models" / "tiny-llama" / "model.safetensors"
    weights = sha(model)
    assert weights in payload.blobs
    session = session_for(workspace)
    common = {"workdir": str(host), "fp": "f" * 64}
    python = sys.executable
    try:
        probe = session.call(python, {"op": "probe", **common, "blobs": sorted(payload.blobs)})
        assert set(probe["missing"]) == set(payload.blobs) and probe["ftctl"] == "0.1.0"
        stored = upload(session, python, str(host), list(payload.blobs.values()), rsync)
        assert stored == set(payload.blobs)  # each hashed on arrival, as it landed
        request = {**common, "incoming": probe["missing"], "files": payload.files, "launch": False}
        assert session.call(python, {"op": "start", **request}) == {"ok": True, "launched": False}
        laid = host / "runs" / ("f" * 64) / "ws"
        assert sha(laid / "models" / "tiny-llama" / "model.safetensors") == weights
        assert (laid / "recipes" / "tiny-alpaca.yaml").read_bytes() == (
            workspace.root / "recipes" / "tiny-alpaca.yaml"
        ).read_bytes()
        assert (laid / "lockfiles" / "tiny-alpaca.lock").is_file()
        assert sha(laid / "data" / "alpaca-tiny.jsonl") == sha(pulled_data / "alpaca-tiny.jsonl")
        assert oct((host / "inputs" / weights).stat().st_mode & 0o777) == "0o444"
        # A second run copies nothing.
        again = session.call(python, {"op": "probe", **common, "blobs": sorted(payload.blobs)})
        assert again["missing"] == []

        # A copy that stopped halfway resumes and is checked on arrival.
        (host / "inputs" / weights).unlink()
        half = model.read_bytes()[: model.stat().st_size // 2]
        (host / "inputs" / ".incoming" / weights).write_bytes(half)
        probe = session.call(python, {"op": "probe", **common, "blobs": [weights]})
        assert probe["missing"] == [weights] and probe["partial"] == {weights: len(half)}
        stored = upload(
            session, python, str(host), [payload.blobs[weights]], rsync, probe["partial"]
        )
        assert stored == {weights}
        assert session.call(python, {"op": "start", **request, "incoming": [weights]})["ok"]
        assert sha(host / "inputs" / weights) == weights

        # A damaged copy (same size, other bytes) is found by its sha256 and removed.
        (host / "inputs" / weights).unlink()
        (host / "inputs" / ".incoming" / weights).write_bytes(b"\0" * model.stat().st_size)
        answer = session.call(python, {"op": "start", **request, "incoming": [weights]})
        assert answer == {"ok": True, "damaged": [weights]}
        assert not (host / "inputs" / ".incoming" / weights).exists()
        assert not (host / "inputs" / weights).exists()
    finally:
        session.close()


def test_a_local_checkpoint_goes_along_only_when_the_host_has_none(
    sshd: Sshd, tmp_path: Path, pulled_data: Path
) -> None:
    host = tmp_path / "host"
    workspace = make_workspace(tmp_path / "ws", sshd, host)
    spec, directory = apply_spec(workspace)
    local = directory / "checkpoints" / "checkpoint-3"
    local.mkdir(parents=True)
    (local / "trainer_state.json").write_text('{"global_step": 3}')
    (local / "adapter_model.safetensors").write_bytes(os.urandom(1000))
    payload = gather(spec.model_copy(update={"resume_from": str(local)}), "box")
    assert [rel for rel, _ in payload.resume_files] == [
        "out/checkpoints/checkpoint-3/adapter_model.safetensors",
        "out/checkpoints/checkpoint-3/trainer_state.json",
    ]
    session = session_for(workspace)
    python, common = sys.executable, {"workdir": str(host), "fp": "e" * 64}
    request = {**common, "files": payload.files, "resume_files": payload.resume_files}
    try:
        probe = session.call(python, {"op": "probe", **common, "blobs": sorted(payload.blobs)})
        upload(session, python, str(host), list(payload.blobs.values()), True)
        session.call(
            python, {"op": "start", **request, "incoming": probe["missing"], "launch": False}
        )
        sent = host / "runs" / ("e" * 64) / "out" / "checkpoints"
        assert sha(sent / "checkpoint-3" / "trainer_state.json") == sha(
            local / "trainer_state.json"
        )
        # The host's own newer checkpoint wins: the local one is not laid out again.
        shutil.rmtree(sent / "checkpoint-3")
        (sent / "checkpoint-5").mkdir()
        (sent / "checkpoint-5" / "trainer_state.json").write_text('{"global_step": 5}')
        session.call(python, {"op": "start", **request, "incoming": [], "launch": False})
        assert sorted(p.name for p in sent.iterdir()) == ["checkpoint-5"]
    finally:
        session.close()


def test_an_input_outside_the_workspace_is_refused(
    sshd: Sshd, tmp_path: Path, pulled_data: Path
) -> None:
    outside = tmp_path / "shared" / "alpaca.jsonl"
    outside.parent.mkdir()
    outside.write_bytes((pulled_data / "alpaca-tiny.jsonl").read_bytes())
    recipe = RECIPE.replace("path: data/alpaca-tiny.jsonl", "path: ../shared/alpaca.jsonl")
    settings = {"allow_paths": ["../shared"]}
    workspace = make_workspace(tmp_path / "ws", sshd, tmp_path / "host", recipe, settings)
    line = error_of(workspace)
    assert "datasets[0]: ../shared/alpaca.jsonl lies outside the workspace" in line


# -- refusals in one line --------------------------------------------------------------------


def test_a_changed_host_key_is_refused_in_one_line(
    sshd: Sshd, tmp_path: Path, pulled_data: Path
) -> None:
    other = keygen(tmp_path / "other").with_suffix(".pub").read_text().split()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")
    workspace = make_workspace(tmp_path / "ws", sshd, tmp_path / "host", known_hosts=str(known))
    line = error_of(workspace)
    assert "executor box: 127.0.0.1:" in line and "its host key differs from the one in" in line
    assert not (tmp_path / "host").exists()  # nothing ran there

    known.write_text("")
    assert "its host key is not in" in error_of(workspace)


@pytest.mark.parametrize("python", ["/usr/bin/false", "no-such-python"])
def test_a_host_without_a_runnable_python_is_one_line(
    sshd: Sshd, tmp_path: Path, pulled_data: Path, python: str
) -> None:
    workspace = make_workspace(tmp_path / "ws", sshd, tmp_path / "host", python=python)
    line = error_of(workspace)
    assert f"{python} on 127.0.0.1:{sshd.port} did not run" in line
    assert "ftctl[train] installed" in line


def test_a_host_without_ftctl_says_what_to_install(
    sshd: Sshd, tmp_path: Path, pulled_data: Path
) -> None:
    bare = Path("/usr/bin/python3")
    if (
        not bare.exists()
        or subprocess.run([bare, "-c", "import ftctl"], capture_output=True, cwd="/").returncode
        == 0
    ):
        pytest.skip("needs a system python3 without ftctl")
    workspace = make_workspace(tmp_path / "ws", sshd, tmp_path / "host", python=str(bare))
    line = error_of(workspace)
    assert "/usr/bin/python3 there has no ftctl" in line
    assert "/usr/bin/python3 -m pip install 'ftctl[train]==0.1.0'" in line


# -- outputs ---------------------------------------------------------------------------------


def fake_finished_run(out: Path) -> dict[str, str]:
    files = {
        "adapter/adapter_model.safetensors": os.urandom(200_000),
        "adapter/adapter_config.json": b'{"r": 8}\n',
        "train-log.jsonl": b'{"step": 1}\n',
        "environment.json": b"{}\n",
        "result.json": b'{"steps": 1}\n',
    }
    for rel, data in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}


@pytest.mark.parametrize("rsync", [True, False], ids=["rsync", "sftp"])
def test_outputs_that_differ_from_the_hosts_digest_are_refused(
    sshd: Sshd, tmp_path: Path, rsync: bool
) -> None:
    out = tmp_path / "host-out"
    digests = fake_finished_run(out)
    listed = [(rel, digest, (out / rel).stat().st_size) for rel, digest in digests.items()]
    session = Session(
        Host("box", "127.0.0.1", sshd.port, sshd.user, sshd.user_key, sshd.known_hosts)
    )
    try:
        into = tmp_path / "back"
        download(session, str(out), listed, into, rsync)
        assert {rel: sha(into / rel) for rel in digests} == digests
        wrong = [(r, "0" * 64 if r.endswith(".safetensors") else d, s) for r, d, s in listed]
        with pytest.raises(FtctlError) as caught:
            download(session, str(out), wrong, into, rsync)
        assert "adapter/adapter_model.safetensors differs from the host's sha256" in str(
            caught.value.problem.render()
        )
        assert not into.exists()  # nothing half-checked is left to be signed
    finally:
        session.close()


def test_a_run_finished_on_the_host_is_copied_back_and_cleared(
    sshd: Sshd, tmp_path: Path, pulled_data: Path
) -> None:
    host = tmp_path / "host"
    workspace = make_workspace(tmp_path / "ws", sshd, host)
    run = host_run(host, workspace)
    digests = fake_finished_run(run / "out")
    (run / "worker.log").write_text("trained\n")
    spec, directory = apply_spec(workspace)
    code = executor_for(workspace, "box").run(spec, directory, lambda event: None)
    assert code == 0
    assert {rel: sha(directory / rel) for rel in digests} == digests
    assert (directory / "worker.log").read_text() == "trained\n"
    assert not run.exists() and not (directory / ".ssh-incoming").exists()


# -- the worker's lifecycle ------------------------------------------------------------------


def test_a_failing_setup_command_fails_the_run_and_keeps_it_on_the_host(
    sshd: Sshd, tmp_path: Path, pulled_data: Path
) -> None:
    host = tmp_path / "host"
    workspace = make_workspace(tmp_path / "ws", sshd, host, setup=["echo preparing", "exit 3"])
    spec, directory = apply_spec(workspace)
    assert executor_for(workspace, "box").run(spec, directory, lambda event: None) == 3
    log = (directory / "worker.log").read_text()
    assert "preparing" in log and "ftctl: error: a setup command failed (exit 3)" in log
    run = host_run(host, workspace)
    assert (run / "worker.exit").read_text().strip() == "3" and (run / "ws").is_dir()
    spec_on_host = json.loads((run / "spec.json").read_text())
    assert spec_on_host["workspace"] == f"{run}/ws" and spec_on_host["output_dir"] == f"{run}/out"


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A TMPDIR for the executor's process that its ssh control sockets can be found by."""
    made = Path(tempfile.mkdtemp(prefix="ftx-", dir="/tmp"))
    yield made
    shutil.rmtree(made, ignore_errors=True)


def test_hf_token_reaches_the_worker_and_nothing_else(
    sshd: Sshd, tmp_path: Path, pulled_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "hf_ftctlTestSecret0123456789"
    monkeypatch.setenv("HF_TOKEN", secret)
    host = tmp_path / "host"
    digest = hashlib.sha256(secret.encode()).hexdigest()  # the setup line names no secret
    check = f'[ "$(printf %s "$HF_TOKEN" | sha256sum | cut -c1-64)" = {digest} ] && exit 4; exit 5'
    workspace = make_workspace(tmp_path / "ws", sshd, host, setup=[check])
    spec, directory = apply_spec(workspace)
    assert executor_for(workspace, "box").run(spec, directory, lambda event: None) == 4
    for root in (host, directory):
        for path in root.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def start_executor(workspace: Workspace, tmp: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.executors.runexec", str(workspace.root)],
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(tmp)},
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_ctrl_c_stops_the_worker_on_the_host(
    sshd: Sshd, tmp_path: Path, pulled_data: Path, short_tmp: Path
) -> None:
    host = tmp_path / "host"
    workspace = make_workspace(tmp_path / "ws", sshd, host, setup=["sleep 120"])
    proc = start_executor(workspace, short_tmp)
    run = host_run(host, workspace)
    wait_for(run / "worker.pid")
    pid = json.loads((run / "worker.pid").read_text())["pid"]
    time.sleep(1)
    assert alive(pid)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert out.startswith("exit 130"), out
    assert not alive(pid)
    assert (run / "worker.exit").read_text().strip() == "130"


def cut_connections(tmp: Path) -> int:
    """SIGKILL every ssh process of the executor (its ControlPath lies under ``tmp``)."""
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"ssh") and any(str(tmp).encode() in a for a in argv):
            with_pid = int(entry.name)
            try:
                os.kill(with_pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def test_a_cut_connection_reattaches_to_the_same_worker(
    sshd: Sshd, tmp_path: Path, pulled_data: Path, short_tmp: Path
) -> None:
    host = tmp_path / "host"
    attempts = tmp_path / "attempts"
    setup = [f"echo started >> {attempts}", "sleep 4", "exit 5"]
    workspace = make_workspace(tmp_path / "ws", sshd, host, setup=setup)
    proc = start_executor(workspace, short_tmp)
    wait_for(host_run(host, workspace) / "worker.pid")
    time.sleep(0.5)
    assert cut_connections(short_tmp) >= 1
    out, _ = proc.communicate(timeout=120)
    assert out.startswith("exit 5"), out  # the worker's own exit code, followed to its end
    assert attempts.read_text().splitlines() == ["started"]  # never started twice


def test_a_vanished_worker_is_started_again(
    sshd: Sshd, tmp_path: Path, pulled_data: Path, short_tmp: Path
) -> None:
    host = tmp_path / "host"
    attempts = tmp_path / "attempts"
    setup = [
        f"echo started >> {attempts}",
        f'if [ "$(wc -l < {attempts})" -ge 2 ]; then exit 7; fi',
        "sleep 120",
    ]
    workspace = make_workspace(tmp_path / "ws", sshd, host, setup=setup)
    proc = start_executor(workspace, short_tmp)
    run = host_run(host, workspace)
    wait_for(run / "worker.pid")
    pids = json.loads((run / "worker.pid").read_text())
    os.kill(pids["supervisor"], signal.SIGKILL)  # as a reboot would: no exit code is written
    os.killpg(pids["pid"], signal.SIGKILL)
    out, _ = proc.communicate(timeout=120)
    assert out.startswith("exit 7"), out
    assert attempts.read_text().splitlines() == ["started", "started"]
