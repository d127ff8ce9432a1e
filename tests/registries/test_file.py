"""The file:// registry on real file systems: layout, index, races, crashes, hostile trees, full disks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ftctl.errors import FtctlError
from ftctl.provenance.rundir import artifact_digests
from ftctl.registries import tree
from ftctl.registries.base import PROVENANCE_FILE, Found
from ftctl.registries.file import FileRegistry
from tests.conftest import REPO

FP = "sha256:" + "ab" * 32
HEX = FP[7:]
ENVELOPE = b'{"payloadType":"application/vnd.in-toto+json"}\n'


def adapter(root: Path, big: int = 1 << 20, seed: bytes = b"w") -> Path:
    directory = root / "adapter"
    (directory / "tok").mkdir(parents=True)
    (directory / "adapter_config.json").write_text('{"r": 8}\n')
    (directory / "tok" / "tokenizer.json").write_text('{"model": {}}\n')
    (directory / "adapter_model.safetensors").write_bytes((seed * big)[:big])
    return directory


def python(code: str, *args: str, stdin: int | None = None) -> subprocess.Popen[str]:
    """A real second process running ``code`` with ftctl importable."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        text=True,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def subjects(directory: Path) -> dict[str, str]:
    """The artifact's digests without the model card (not a subject)."""
    digests = artifact_digests(directory)
    digests.pop("README.md", None)
    return digests


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp-"))


def test_publish_lays_out_the_artifact_and_indexes_it(tmp_path: Path) -> None:
    files = adapter(tmp_path)
    registry = FileRegistry("file://registry/support-bot", tmp_path)
    published = registry.publish("support-bot", FP, files, ENVELOPE, "# card\n")
    assert published.uri == f"file://registry/support-bot/{HEX}"
    assert published.record() == {"uri": published.uri}
    final = tmp_path / "registry" / "support-bot" / HEX
    assert sorted(p.relative_to(final).as_posix() for p in final.rglob("*") if p.is_file()) == [
        PROVENANCE_FILE,
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "tok/tokenizer.json",
    ]
    assert (final / PROVENANCE_FILE).read_bytes() == ENVELOPE
    assert (final / "README.md").read_text() == "# card\n"
    assert subjects(final) == artifact_digests(files)
    entry = json.loads((tmp_path / "registry" / ".index" / f"{HEX}.json").read_text())
    assert entry == {"name": "support-bot", "path": f"support-bot/{HEX}"}
    assert leftovers(final.parent) == []


def test_find_reaches_a_fingerprint_published_under_another_name(tmp_path: Path) -> None:
    FileRegistry("file://registry/a", tmp_path).publish("a", FP, adapter(tmp_path), ENVELOPE, None)
    other = FileRegistry("file://registry/b", tmp_path)
    assert other.find(FP) == Found(uri=f"file://registry/a/{HEX}", name="a")
    assert other.find("sha256:" + "cd" * 32) is None
    # republished under b: the first entry stays, b's copy is found through its own folder
    other.publish("b", FP, tmp_path / "adapter", ENVELOPE, None)
    assert other.find(FP) == Found(uri=f"file://registry/a/{HEX}", name="a")
    (tmp_path / "registry" / ".index" / f"{HEX}.json").unlink()
    assert other.find(FP) == Found(uri=f"file://registry/b/{HEX}", name="b")


def test_umask_is_respected(tmp_path: Path) -> None:
    code = """
        import os, sys
        from pathlib import Path
        os.umask(0o027)
        from ftctl.registries.file import FileRegistry
        root = Path(sys.argv[1])
        FileRegistry("file://registry/m", root).publish("m", "sha256:" + "ab" * 32, root / "adapter", b"{}", "# c")
    """
    adapter(tmp_path)
    child = python(code, str(tmp_path))
    assert child.wait(60) == 0, child.stderr.read() if child.stderr else ""
    final = tmp_path / "registry" / "m" / HEX
    modes = {p.relative_to(tmp_path / "registry").as_posix(): p.stat().st_mode & 0o777
             for p in [final, final / ".ftctl", *final.rglob("*")]}  # fmt: skip
    assert modes[f"m/{HEX}"] == 0o750
    assert modes[f"m/{HEX}/.ftctl"] == 0o750
    assert modes[f"m/{HEX}/adapter_model.safetensors"] == 0o640
    assert modes[f"m/{HEX}/README.md"] == 0o640
    assert (tmp_path / "registry" / ".index" / f"{HEX}.json").stat().st_mode & 0o777 == 0o640


def test_publishing_again_is_a_no_op_and_other_files_are_refused(tmp_path: Path) -> None:
    files = adapter(tmp_path)
    registry = FileRegistry("file://registry/r", tmp_path)
    first = registry.publish("r", FP, files, ENVELOPE, "# card\n")
    final = tmp_path / "registry" / "r" / HEX
    before = {p: p.stat().st_mtime_ns for p in final.rglob("*")}
    assert registry.publish("r", FP, files, b"{}", "# another card\n") == first
    assert {p: p.stat().st_mtime_ns for p in final.rglob("*")} == before  # nothing rewritten
    (files / "adapter_model.safetensors").write_bytes(b"other weights")
    with pytest.raises(FtctlError) as caught:
        registry.publish("r", FP, files, ENVELOPE, None)
    assert str(caught.value) == (
        f"registry/r/{HEX} already holds other files for {FP} (adapter_model.safetensors differs); "
        "the same fingerprint was trained to different weights; check the registry"
    )


def test_concurrent_publishers_of_one_fingerprint_all_succeed(tmp_path: Path) -> None:
    files = adapter(tmp_path, big=8 << 20)
    go = tmp_path / "go"
    code = """
        import sys, time
        from pathlib import Path
        from ftctl.registries.file import FileRegistry
        root, go = Path(sys.argv[1]), Path(sys.argv[2])
        registry = FileRegistry("file://registry/r", root)
        while not go.exists():
            time.sleep(0.005)
        print(registry.publish("r", "sha256:" + "ab" * 32, root / "adapter", b"{}", "# c").uri)
    """
    children = [python(code, str(tmp_path), str(go)) for _ in range(4)]
    time.sleep(1.0)  # let every child import and wait
    go.touch()
    outs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0, 0, 0], outs
    assert {out.strip() for out, _ in outs} == {f"file://registry/r/{HEX}"}
    folder = tmp_path / "registry" / "r"
    assert sorted(p.name for p in folder.iterdir()) == [HEX]  # no temp dir left behind
    assert subjects(folder / HEX) == artifact_digests(files)


def test_a_crashed_publish_leaves_a_temp_dir_the_next_one_removes(tmp_path: Path) -> None:
    folder = tmp_path / "registry" / "r"
    folder.mkdir(parents=True)
    code = """
        import sys, os
        from pathlib import Path
        from ftctl.registries import tree
        tmp, fd = tree.make_temp(Path(sys.argv[1]))
        (tmp / "adapter_model.safetensors").write_bytes(b"half")
        print(tmp.name, flush=True)
        sys.stdin.read()
    """
    crashed = python(code, str(folder), stdin=subprocess.PIPE)
    live = python(code, str(folder), stdin=subprocess.PIPE)
    assert crashed.stdout is not None and live.stdout is not None
    crashed_name, live_name = crashed.stdout.readline().strip(), live.stdout.readline().strip()
    crashed.send_signal(signal.SIGKILL)
    crashed.wait(10)
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (folder / ".tmp-link").symlink_to(outside)
    (folder / ".tmp-file").write_text("not a directory")
    FileRegistry("file://registry/r", tmp_path).publish("r", FP, adapter(tmp_path), ENVELOPE, None)
    assert crashed_name not in leftovers(folder)
    assert leftovers(folder) == sorted([live_name, ".tmp-link", ".tmp-file"])
    assert (outside / "keep").is_dir()  # the symlink was not followed
    assert live.stdin is not None
    live.stdin.close()
    live.wait(10)


def test_fetch_verified_copies_every_file_and_checks_it(tmp_path: Path) -> None:
    files = adapter(tmp_path, big=9 << 20)  # more than two chunks: the buffers rotate
    registry = FileRegistry("file://registry/r", tmp_path)
    registry.publish("r", FP, files, ENVELOPE, "# card\n")
    found = registry.find(FP)
    assert found is not None
    expected = artifact_digests(files)
    registry.fetch_verified(found, tmp_path / "out", expected)
    assert subjects(tmp_path / "out") == expected
    assert (tmp_path / "out" / PROVENANCE_FILE).read_bytes() == ENVELOPE
    digests = registry.fetch_digests(found, tmp_path / "plain")
    assert {k: v for k, v in digests.items() if k in expected} == expected
    with pytest.raises(FtctlError, match="exists already"):
        registry.fetch(found, tmp_path / "out")


def test_fetch_verified_names_an_altered_file_and_leaves_nothing(tmp_path: Path) -> None:
    files = adapter(tmp_path)
    registry = FileRegistry("file://registry/r", tmp_path)
    registry.publish("r", FP, files, ENVELOPE, None)
    found = registry.find(FP)
    assert found is not None
    expected = artifact_digests(files)
    final = tmp_path / "registry" / "r" / HEX
    (final / "tok" / "tokenizer.json").write_text('{"model": "swapped"}\n')
    with pytest.raises(FtctlError) as caught:
        registry.fetch_verified(found, tmp_path / "out", expected)
    assert str(caught.value) == (
        f"registry/r/{HEX}/tok/tokenizer.json differs from the recorded digest; "
        "the registry copy was altered or damaged; retrain it with --replace"
    )
    assert not (tmp_path / "out").exists()
    (final / "extra.bin").write_bytes(b"x")
    (final / "adapter_config.json").unlink()
    with pytest.raises(FtctlError) as caught:
        registry.fetch_verified(found, tmp_path / "out", expected)
    assert str(caught.value) == (
        f"registry/r/{HEX}: adapter_config.json is missing; extra.bin is not in the manifest; "
        "the registry copy differs"
    )


@pytest.mark.parametrize("kind", ["symlink", "fifo", "symlinked-dir"])
def test_fetch_refuses_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    registry = FileRegistry("file://registry/r", tmp_path)
    registry.publish("r", FP, adapter(tmp_path), ENVELOPE, None)
    final = tmp_path / "registry" / "r" / HEX
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("private")
    if kind == "symlink":
        (final / "key").symlink_to(secret / "key")
    elif kind == "fifo":
        os.mkfifo(final / "key")
    else:
        (final / "key").symlink_to(secret)
    found = registry.find(FP)
    assert found is not None
    with pytest.raises(FtctlError) as caught:
        registry.fetch(found, tmp_path / "out")  # a FIFO is refused, never waited on
    expected = "a symlink" if kind != "fifo" else "not a regular file"
    assert str(caught.value).startswith(f"registry/r/{HEX}/key is {expected};")
    assert not (tmp_path / "out").exists()


def test_fetch_takes_an_artifact_address_a_manifest_recorded(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    FileRegistry(f"file://{shared}/x", tmp_path).publish("x", FP, adapter(tmp_path), ENVELOPE, None)
    here = FileRegistry("file://registry/y", tmp_path)
    here.fetch(Found(uri=f"file://{shared}/x/{HEX}", name="x"), tmp_path / "out")
    assert (tmp_path / "out" / "adapter_config.json").read_text() == '{"r": 8}\n'
    for uri in (f"file://{shared}/x/{'cd' * 32}", f"file://{shared}/../x/{HEX}x", "hf://a/b"):
        with pytest.raises(FtctlError):
            here.fetch(Found(uri=uri, name="x"), tmp_path / "out2")
    other = tmp_path / "other" / HEX
    (other / ".ftctl").mkdir(parents=True)
    (other / PROVENANCE_FILE).write_bytes(ENVELOPE)
    (shared / "escape").symlink_to(tmp_path / "other")
    with pytest.raises(FtctlError, match="no such artifact"):
        here.fetch(Found(uri=f"file://{shared}/escape/{HEX}", name="x"), tmp_path / "out2")


@pytest.mark.parametrize(
    "entry",
    [
        b'{"name": "a", "path": "a/' + HEX.encode() + b'"}',  # the one valid entry
        b"not json",
        b'{"name": "a", "path": "a/' + HEX.encode() + b'", "name": "b"}',
        b'{"name": "a", "path": "../outside/' + HEX.encode() + b'"}',
        b'{"name": "a", "path": "a/' + b"cd" * 32 + b'"}',
        b'{"name": "a", "path": "a/' + HEX.encode() + b'/.."}',
        b'{"name": 1, "path": "a/' + HEX.encode() + b'"}',
        b"[" * 100_000,
        b'{"name": "a", "path": "nodir/' + HEX.encode() + b'"}',
        b'{"name": "a", "path": "noprov/' + HEX.encode() + b'"}',
        b'{"name": "a", "path": "out/' + HEX.encode() + b'"}',
    ],
)
def test_a_hostile_index_entry_is_no_entry(tmp_path: Path, entry: bytes) -> None:
    registry_root = tmp_path / "registry"
    (registry_root / ".index").mkdir(parents=True)
    (registry_root / ".index" / f"{HEX}.json").write_bytes(entry)
    (registry_root / "noprov" / HEX).mkdir(parents=True)
    outside = tmp_path / "outside" / HEX
    (outside / ".ftctl").mkdir(parents=True)
    (outside / PROVENANCE_FILE).write_bytes(ENVELOPE)
    (registry_root / "out").symlink_to(tmp_path / "outside")
    (registry_root / "a" / HEX / ".ftctl").mkdir(parents=True)
    (registry_root / "a" / HEX / PROVENANCE_FILE).write_bytes(ENVELOPE)
    found = FileRegistry("file://registry/r", tmp_path).find(FP)
    valid = entry == b'{"name": "a", "path": "a/' + HEX.encode() + b'"}'
    assert found == (Found(f"file://registry/a/{HEX}", "a") if valid else None)


def test_an_index_entry_that_is_a_fifo_is_not_waited_on(tmp_path: Path) -> None:
    (tmp_path / "registry" / ".index").mkdir(parents=True)
    os.mkfifo(tmp_path / "registry" / ".index" / f"{HEX}.json")
    assert FileRegistry("file://registry/r", tmp_path).find(FP) is None


def test_refuses_a_registry_that_is_a_file_or_a_folder_leading_out(tmp_path: Path) -> None:
    (tmp_path / "registry").write_text("a file")
    with pytest.raises(FtctlError, match=r"^registry registry is not a directory; "):
        FileRegistry("file://registry/r", tmp_path).publish("r", FP, adapter(tmp_path), b"{}", None)
    (tmp_path / "reg").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "reg" / "r").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FtctlError) as caught:
        FileRegistry("file://reg/r", tmp_path).publish("r", FP, tmp_path / "adapter", b"{}", None)
    assert str(caught.value) == (
        "reg/r is a symlink leaving the registry; remove it; ftctl makes its own folders there"
    )
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_missing_adapter_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FtctlError, match="no such adapter directory to publish"):
        FileRegistry("file://registry/r", tmp_path).publish("r", FP, tmp_path / "nope", b"{}", None)
    assert not (tmp_path / "registry").exists()


@pytest.mark.parametrize(
    "target",
    ["file://", "file:///", "file://registry/.index", "hf://org/repo", "file://a/\x00"],
)
def test_a_target_without_a_folder_name_is_refused(tmp_path: Path, target: str) -> None:
    with pytest.raises(FtctlError, match="is not file://PATH/NAME"):
        FileRegistry(target, tmp_path)


def test_paths_resolve_against_the_workspace_and_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    registry = FileRegistry("file://~/models/r", tmp_path / "ws")
    assert registry.root == tmp_path / "home" / "models"
    published = registry.publish("r", FP, adapter(tmp_path), ENVELOPE, None)
    assert published.uri == f"file://~/models/r/{HEX}"
    assert (tmp_path / "home" / "models" / "r" / HEX / PROVENANCE_FILE).is_file()
    assert FileRegistry("file://models/r", tmp_path / "ws").root == tmp_path / "ws" / "models"


def _mount_tmpfs(where: Path) -> bool:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True
    )
    return done.returncode == 0


def test_a_full_disk_leaves_nothing_half_written(tmp_path: Path) -> None:
    """A real ENOSPC on a 2 MiB tmpfs (needs mount; the RLIMIT_FSIZE test below needs nothing)."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk):
        pytest.skip(
            "cannot mount a tmpfs here; test_a_file_size_limit_... covers the failing write"
        )
    try:
        files = adapter(tmp_path, big=3 << 20)
        registry = FileRegistry(f"file://{disk}/r", tmp_path)
        with pytest.raises(FtctlError) as caught:
            registry.publish("r", FP, files, ENVELOPE, None)
        assert str(caught.value) == (
            f"{disk}/r: no space left to publish sha256:{HEX[:12]} (No space left on device); "
            "nothing was left half-written; free space there (or raise the quota) and run it again"
        )
        assert sorted(p.name for p in (disk / "r").iterdir()) == []
        assert registry.find(FP) is None
        (files / "adapter_model.safetensors").write_bytes(b"small")
        registry.publish("r", FP, files, ENVELOPE, None)  # space enough now: published
        assert registry.find(FP) is not None
        subprocess.run(["dd", "if=/dev/zero", f"of={disk}/filler", "bs=64k"], capture_output=True)
        with pytest.raises(FtctlError, match="no space left to copy"):
            registry.fetch(Found(f"file://{disk}/r/{HEX}", "r"), disk / "out")
        assert not (disk / "out").exists()
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_file_size_limit_leaves_nothing_half_written(tmp_path: Path) -> None:
    """RLIMIT_FSIZE with SIGXFSZ ignored: the write fails with EFBIG, a real failing write."""
    adapter(tmp_path, big=3 << 20)
    code = """
        import resource, signal, sys
        from pathlib import Path
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        from ftctl.errors import FtctlError
        from ftctl.registries.file import FileRegistry
        root = Path(sys.argv[1])
        try:
            FileRegistry("file://registry/r", root).publish("r", "sha256:" + "ab" * 32, root / "adapter", b"{}", None)
        except FtctlError as exc:
            print(exc)
    """
    child = python(code, str(tmp_path))
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.strip() == (
        f"registry/r: no space left to publish sha256:{HEX[:12]} (File too large); "
        "nothing was left half-written; free space there (or raise the quota) and run it again"
    )
    assert list((tmp_path / "registry" / "r").iterdir()) == []
    assert not (tmp_path / "registry" / ".index" / f"{HEX}.json").exists()


def test_the_copier_hashes_exactly_what_it_writes(tmp_path: Path) -> None:
    import hashlib

    data = os.urandom(3 * tree.CHUNK + 12345)
    (tmp_path / "src").write_bytes(data)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    try:
        with tree.copier() as copy:
            digest = tree.copy_file(copy, src, tmp_path / "dst", sync=False)
    finally:
        os.close(src)
    assert (tmp_path / "dst").read_bytes() == data
    assert digest == hashlib.sha256(data).hexdigest()
