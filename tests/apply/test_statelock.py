"""The state lock with real processes: held, waited for, left by a killed holder, raced for, corrupt."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from ftctl.apply.statelock import (
    LockInfo,
    StateLocked,
    StateLockUnreadable,
    force_unlock,
    parse_duration,
    read_lock,
    state_lock,
)
from ftctl.errors import FtctlError
from tests.conftest import REPO

HOLD = """
    import sys
    from pathlib import Path
    from ftctl.apply.statelock import state_lock
    with state_lock(Path(sys.argv[1]), "apply", timeout=0) as info:
        print(info.id, flush=True)
        sys.stdin.readline()
"""


class Holder:
    """A second process that takes the lock and holds it until told (or killed)."""

    def __init__(self, root: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(HOLD), str(root)],
            cwd=REPO,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.id = self.process.stdout.readline().strip()
        assert self.id, self.process.stderr.read() if self.process.stderr else ""

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        assert self.process.wait(10) == 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


def lock_file(root: Path) -> Path:
    return root / ".ftctl" / "state.lock"


def write_lock(root: Path, **fields: object) -> dict[str, object]:
    data: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "holder": f"ci@{socket.gethostname()}",
        "pid": 2**31 - 1,
        "host": socket.gethostname(),
        "operation": "apply",
        "since": "2026-11-24T12:00:00Z",
        "version": "0.1.0",
    }
    data.update(fields)
    lock_file(root).parent.mkdir(parents=True, exist_ok=True)
    lock_file(root).write_text(json.dumps(data))
    return data


def test_the_lock_names_its_holder_and_goes_on_release(tmp_path: Path) -> None:
    with state_lock(tmp_path, "apply", timeout=0) as info:
        on_disk = json.loads(lock_file(tmp_path).read_text())
        assert on_disk["id"] == info.id and uuid.UUID(info.id).version == 4
        assert on_disk["pid"] == os.getpid()
        assert on_disk["host"] == socket.gethostname()
        assert on_disk["holder"].endswith(f"@{socket.gethostname()}")
        assert on_disk["operation"] == "apply"
        assert on_disk["since"].endswith("Z") and on_disk["version"]
        assert read_lock(tmp_path) == info
        assert [p.name for p in (tmp_path / ".ftctl").iterdir()] == ["state.lock"]  # no temp
    assert not lock_file(tmp_path).exists()
    assert read_lock(tmp_path) is None


def test_a_lock_held_by_another_process_is_refused_naming_it(tmp_path: Path) -> None:
    holder = Holder(tmp_path)
    try:
        held = read_lock(tmp_path)
        assert held is not None and held.id == holder.id and held.pid == holder.process.pid
        started = time.monotonic()
        with pytest.raises(StateLocked) as caught, state_lock(tmp_path, "apply", timeout=0):
            pass
        assert time.monotonic() - started < 1
        assert str(caught.value) == (
            f".ftctl/state.lock: the state is locked by {held.holder} (pid {held.pid}, "
            f"apply since {held.since}, id {held.id}); "
            f"wait for it, or if it is dead: ftctl force-unlock {held.id}"
        )
        waits: list[LockInfo] = []
        started = time.monotonic()
        with (
            pytest.raises(StateLocked),
            state_lock(tmp_path, "apply", timeout=1, on_wait=waits.append),
        ):
            pass
        assert 1 <= time.monotonic() - started < 3
        assert waits == [held]  # told once, not on every poll
        assert read_lock(tmp_path) == held  # untouched
    finally:
        holder.release()


def test_waits_for_the_holder_to_finish(tmp_path: Path) -> None:
    holder = Holder(tmp_path)
    timer = threading.Timer(0.6, holder.release)
    waits: list[LockInfo] = []
    timer.start()
    started = time.monotonic()
    try:
        with state_lock(tmp_path, "apply", timeout=20, on_wait=waits.append) as info:
            assert 0.5 < time.monotonic() - started < 15
            assert [w.id for w in waits] == [holder.id]
            assert read_lock(tmp_path) == info
    finally:
        timer.join()


def test_a_killed_holders_lock_is_taken_over_with_a_warning(tmp_path: Path) -> None:
    holder = Holder(tmp_path)
    dead = read_lock(tmp_path)
    holder.kill()
    warnings: list[str] = []
    with state_lock(tmp_path, "apply", timeout=0, warn=warnings.append) as info:
        assert info.id != holder.id and read_lock(tmp_path) == info
    assert dead is not None
    assert warnings == [f"took over the state lock of {dead.describe()}: that process is gone"]
    assert not lock_file(tmp_path).exists()
    assert [p.name for p in (tmp_path / ".ftctl").iterdir()] == []  # nothing set aside is left


def test_a_reused_pid_is_not_the_holder(tmp_path: Path) -> None:
    # This test process is alive; a lock recording another start time for its pid is stale.
    real = read_start_time(os.getpid())
    write_lock(tmp_path, pid=os.getpid(), started=real + 1)
    warnings: list[str] = []
    with state_lock(tmp_path, "apply", timeout=0, warn=warnings.append):
        pass
    assert len(warnings) == 1
    # ... and one recording its start time is its own: held.
    write_lock(tmp_path, pid=os.getpid(), started=real)
    with pytest.raises(StateLocked), state_lock(tmp_path, "apply", timeout=0):
        pass


def read_start_time(pid: int) -> int:
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    return int(raw.rsplit(b")", 1)[1].split()[19])


def test_a_lock_from_another_host_is_never_taken_over(tmp_path: Path) -> None:
    data = write_lock(tmp_path, host="gpu-box-7", holder="ci@gpu-box-7")
    with pytest.raises(StateLocked) as caught, state_lock(tmp_path, "apply", timeout=0):
        pass
    assert "the state is locked by ci@gpu-box-7 (pid 2147483647, apply" in str(caught.value)
    assert json.loads(lock_file(tmp_path).read_text()) == data


RACE = """
    import sys, time
    from pathlib import Path
    from ftctl.apply.statelock import StateLocked, state_lock
    root, go, done = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    try:
        with state_lock(root, "apply", timeout=0, warn=lambda text: None) as info:
            print("won", info.id, flush=True)
            while not done.exists():  # held until every racer has tried
                time.sleep(0.01)
    except StateLocked as exc:
        print("lost", exc.info.id, flush=True)
"""


@pytest.mark.parametrize("stale", [False, True])
def test_of_racing_takers_exactly_one_wins(tmp_path: Path, stale: bool) -> None:
    if stale:
        write_lock(tmp_path)  # a dead holder (no such pid): every racer tries to take it over
    go, done = tmp_path / "go", tmp_path / "done"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(RACE), str(tmp_path), str(go), str(done)],
            cwd=REPO,
            text=True,
            stdout=subprocess.PIPE,
        )
        for _ in range(6)
    ]
    try:
        assert all(r.stdout is not None and r.stdout.readline() == "ready\n" for r in racers)
        go.touch()
        lines = [r.stdout.readline().split() for r in racers if r.stdout is not None]
    finally:
        done.touch()
        codes = [racer.wait(60) for racer in racers]
    assert codes == [0] * 6
    winners = [line for line in lines if line[0] == "won"]
    assert len(winners) == 1, lines
    assert all(line == ["lost", winners[0][1]] for line in lines if line[0] == "lost"), lines
    assert not lock_file(tmp_path).exists()


def race_threads(root: Path, n: int) -> tuple[list[str], list[str], list[str]]:
    """``n`` threads take the lock at one instant; (winners' ids, warnings, losers' holder ids)."""
    start, tried = threading.Barrier(n), threading.Barrier(n)
    won: list[str] = []
    warned: list[str] = []
    lost: list[str] = []

    def take() -> None:
        start.wait()
        try:
            with state_lock(root, "apply", timeout=0, warn=warned.append) as info:
                won.append(info.id)
                tried.wait()
        except StateLocked as exc:
            lost.append(exc.info.id)
            tried.wait()

    threads = [threading.Thread(target=take) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return won, warned, lost


def test_of_racing_threads_exactly_one_takes_a_stale_lock_over(tmp_path: Path) -> None:
    """Many takers at one instant, round after round (threads: cheaper than processes, and the
    same file operations; a naive take-over loses this race within a few rounds)."""
    for _ in range(20):
        write_lock(tmp_path)
        won, warned, lost = race_threads(tmp_path, 8)
        assert len(won) == 1 and len(warned) == 1, (won, warned, lost)
        assert lost == won * 7
        assert not lock_file(tmp_path).exists()


def test_force_unlock_needs_the_right_id(tmp_path: Path) -> None:
    holder = Holder(tmp_path)
    try:
        held = read_lock(tmp_path)
        assert held is not None
        with pytest.raises(FtctlError) as caught:
            force_unlock(tmp_path, "0000")
        assert str(caught.value) == (
            f".ftctl/state.lock: the lock id is not '0000'; it is held by {held.describe()}; "
            f"if that process is dead: ftctl force-unlock {held.id}"
        )
        assert force_unlock(tmp_path, held.id) == held
        assert read_lock(tmp_path) is None
        with state_lock(tmp_path, "apply", timeout=0) as mine:
            holder.release()  # the old holder leaves: it must not remove our lock
            assert read_lock(tmp_path) == mine
    finally:
        if holder.process.poll() is None:
            holder.release()
    with pytest.raises(FtctlError, match="no state lock is held"):
        force_unlock(tmp_path, held.id)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "is not valid JSON"),
        (b'{"id": "x"', "is not valid JSON"),
        (b"[]", "has a bad content"),
        (b'{"id": "not-a-uuid", "holder": "a", "pid": 1, "host": "h", "operation": "apply", '
         b'"since": "s", "version": "v"}', "has a bad id"),
        (b'{"id": "' + str(uuid.uuid4()).encode() + b'", "pid": true}', "has a bad holder"),
        (b" " * (65 * 1024), "is larger than 64 KiB"),
    ],
)  # fmt: skip
def test_a_corrupt_lock_is_refused_at_once_and_kept(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    lock_file(tmp_path).parent.mkdir(parents=True)
    lock_file(tmp_path).write_bytes(content)
    started = time.monotonic()
    with pytest.raises(StateLockUnreadable) as caught, state_lock(tmp_path, "apply", timeout=30):
        pass
    assert time.monotonic() - started < 5  # never waited on
    text = str(caught.value)
    assert text.startswith(f".ftctl/state.lock {reason}")
    assert text.endswith(
        ", not a state lock ftctl can read; check that no ftctl apply is running, "
        "then remove it: rm .ftctl/state.lock"
    )
    with pytest.raises(StateLockUnreadable):
        force_unlock(tmp_path, "anything")
    assert lock_file(tmp_path).read_bytes() == content


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_a_lock_that_is_not_a_regular_file_is_never_followed_or_waited_on(
    tmp_path: Path, kind: str
) -> None:
    lock = lock_file(tmp_path)
    lock.parent.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere.json"
    if kind == "symlink":
        # even a valid lock behind a symlink: ftctl never reads or removes through it
        elsewhere.write_text(json.dumps(write_lock(tmp_path)))
        lock.unlink()
        lock.symlink_to(elsewhere)
    elif kind == "fifo":
        os.mkfifo(lock)
    else:
        lock.mkdir()
    with pytest.raises(StateLockUnreadable) as caught, state_lock(tmp_path, "apply", timeout=0):
        pass
    expected = {"symlink": "a symlink", "fifo": "a FIFO", "directory": "a directory"}[kind]
    assert str(caught.value).startswith(f".ftctl/state.lock is {expected}, not a state lock")
    assert os.path.lexists(lock)
    if kind == "symlink":
        assert elsewhere.exists()


def test_ctrl_c_releases_the_lock(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), state_lock(tmp_path, "apply", timeout=0):
        raise KeyboardInterrupt
    assert not lock_file(tmp_path).exists()
    holder = Holder(tmp_path)
    holder.process.send_signal(signal.SIGINT)
    holder.process.wait(10)
    assert not lock_file(tmp_path).exists()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0), ("30s", 30), ("5m", 300), ("1h", 3600), ("1m30s", 90), ("2h5m1s", 7501),
     ("45", 45), (" 10s ", 10)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "5x", "-5s", "1.5m", "5m1h", "1h 30m", "٣s", "5M"])
def test_a_bad_duration_is_one_line(text: str) -> None:
    with pytest.raises(FtctlError) as caught:
        parse_duration(text)
    assert str(caught.value) == (f"{text!r} is not a duration; write e.g. 0s, 30s, 5m, 1h or 1m30s")
