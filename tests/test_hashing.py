"""Tree digests refuse what is not a directory of regular files, the root included."""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path

import pytest

from ftctl.cache.stat import StatCache
from ftctl.errors import FtctlError
from ftctl.hashing import NOT_REGULAR, file_digest, tree_digest, walk_files
from tests.conftest import write

CACHE = StatCache.disabled()


def test_a_fifo_root_is_refused_as_a_fifo_inside_a_tree_is(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "model")
    with pytest.raises(FtctlError) as root:
        tree_digest(tmp_path / "model", "./models/tiny", CACHE)  # was the empty tree's digest
    assert str(root.value) == f"./models/tiny is a FIFO, not a regular file; {NOT_REGULAR}"
    write(tmp_path / "tree" / "config.json", "{}\n")
    os.mkfifo(tmp_path / "tree" / "weights")
    with pytest.raises(FtctlError) as inside:
        tree_digest(tmp_path / "tree", "./models/tiny", CACHE)
    assert (
        str(inside.value) == f"./models/tiny/weights is a FIFO, not a regular file; {NOT_REGULAR}"
    )


def test_a_socket_root_and_a_symlink_to_a_fifo_are_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to(tmp_path / "fifo")
    with pytest.raises(FtctlError, match=r"^data/x is a FIFO, not a regular file"):
        tree_digest(tmp_path / "link", "data/x", CACHE)
    with tempfile.TemporaryDirectory() as short:  # a socket's path must fit in 108 bytes
        path = Path(short) / "s"
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))
            with pytest.raises(FtctlError, match=r"^data/s is a socket, not a regular file"):
                tree_digest(path, "data/s", CACHE)


def test_a_device_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "null").symlink_to("/dev/null")
    with pytest.raises(FtctlError, match=r"^data/null is under /dev \(/dev/null\): kernel files"):
        tree_digest(tmp_path / "null", "data/null", CACHE)


def test_a_missing_root_is_an_error_not_an_empty_tree(tmp_path: Path) -> None:
    with pytest.raises(FtctlError, match=r"^data/gone cannot be read \(No such file"):
        tree_digest(tmp_path / "gone", "data/gone", CACHE)


def test_files_and_trees_still_hash(tmp_path: Path) -> None:
    write(tmp_path / "tree" / "a.txt", "a")
    one = tree_digest(tmp_path / "tree" / "a.txt", "a.txt", CACHE)
    assert (one.size, one.nfiles) == (1, 1)
    tree = tree_digest(tmp_path / "tree", "tree", CACHE)
    assert (tree.size, tree.nfiles) == (1, 1) and tree.digest != one.digest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_a_system_tree_is_named_with_what_it_is() -> None:
    with pytest.raises(FtctlError) as walked:
        list(walk_files(Path("/proc/self"), "/proc/self"))
    message = str(walked.value)
    assert message.startswith(f"/proc/self is under /proc ({Path('/proc/self').resolve()}): ")
    assert "kernel files, not a model, dataset or run directory" in message


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_a_read_error_names_the_file() -> None:
    # A regular file as stat sees it, which refuses reads (EINVAL): as a failing disk would.
    with pytest.raises(FtctlError, match=r"^/proc/self/clear_refs cannot be read \(Invalid"):
        file_digest(Path("/proc/self/clear_refs"), "sha256", CACHE)
