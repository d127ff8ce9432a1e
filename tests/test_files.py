"""Atomic writes: the mode a user expects, and never over something that is not a regular file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftctl.files import UnsafeTarget, current_umask, write_atomic


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    current_umask.cache_clear()
    yield
    os.umask(old)
    current_umask.cache_clear()


def test_new_files_respect_the_umask(tmp_path: Path, umask_027: None) -> None:
    target = tmp_path / "lockfiles" / "a.lock"
    write_atomic(target, "x\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # group-readable, as git checks files out
    write_atomic(target, "y\n")
    assert target.read_text() == "y\n" and stat.S_IMODE(target.stat().st_mode) == 0o640


def test_an_explicit_mode_wins(tmp_path: Path) -> None:
    target = tmp_path / "private"
    write_atomic(target, b"k", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_umask_is_read_without_changing_it() -> None:
    current_umask.cache_clear()
    before = os.umask(0o022)
    os.umask(before)
    assert current_umask() == before
    after = os.umask(before)
    assert after == before


@pytest.mark.parametrize("kind", ["symlink", "directory", "fifo"])
def test_refuses_to_replace_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    target = tmp_path / "plan.json"
    if kind == "symlink":
        target.symlink_to(victim)
    elif kind == "directory":
        target.mkdir()
    else:
        os.mkfifo(target)
    with pytest.raises(UnsafeTarget, match="refusing to replace it"):
        write_atomic(target, "plan")
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "plan.json",
        "victim",
    ]  # no temp file left


def test_no_temp_file_is_left_when_the_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        write_atomic(tmp_path / "a.lock", "x")
    assert list(tmp_path.iterdir()) == []
