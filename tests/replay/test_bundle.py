"""`ftctl bundle`: what a bundle holds, what it refuses, and replay's checks of a hostile bundle."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

from tests.conftest import ScenarioWorkspace, write


def _bundle(ws: ScenarioWorkspace, out: Path) -> None:
    artifacts = ws.root / ".runs" / "alpha-1" / "adapter"
    result = ws.ftctl("bundle", "alpha", "-o", str(out), "--artifacts", str(artifacts))
    assert result.code == 0, result.err
    assert "bundled alpha:" in result.err and "datasets" in result.err  # the size summary


def test_bundle_directory_holds_every_input_with_its_digest(
    ws: ScenarioWorkspace, tmp_path: Path
) -> None:
    manifest = ws.record("alpha")
    out = tmp_path / "bundle"
    _bundle(ws, out)
    index = json.loads((out / "index.json").read_text())
    paths = {e["path"] for e in index["files"]}
    assert {
        "manifest.intoto.json",
        "recipes/alpha.yaml",
        "lockfiles/alpha.lock",
        "models/tiny/config.json",
        "data/train.jsonl",
        "keys/ci.pub",
        "original/adapter_model.safetensors",
        "original/adapter_config.json",
    } <= paths
    assert index["original"] is True and index["dvc"] is False and index["hf_cache"] is False
    for entry in index["files"]:
        data = (out / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]
    assert (out / "manifest.intoto.json").read_bytes() == manifest.read_bytes()
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == paths | {"index.json"}


def test_bundle_tar_unpacks_to_the_same_files(ws: ScenarioWorkspace, tmp_path: Path) -> None:
    from ftctl.replay.unpack import unpack

    ws.record("alpha")
    _bundle(ws, tmp_path / "b.tar")
    _bundle(ws, tmp_path / "dir")
    index = unpack(tmp_path / "b.tar", tmp_path / "unpacked")
    for entry in index.files:
        assert (tmp_path / "unpacked" / entry.path).read_bytes() == (
            tmp_path / "dir" / entry.path
        ).read_bytes()
    assert not list(tmp_path.glob(".*.partial"))


def test_zst_without_zstandard_is_one_line(ws: ScenarioWorkspace, tmp_path: Path) -> None:
    ws.record("alpha")
    result = ws.ftctl("bundle", "alpha", "-o", str(tmp_path / "b.tar.zst"))
    assert result.code == 1
    assert "zstandard" in result.err and len(result.err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*b.tar.zst*"))


def test_working_tree_changes_are_bundled_from_the_recorded_commit(
    ws: ScenarioWorkspace, tmp_path: Path
) -> None:
    ws.record("alpha")
    recorded = (ws.root / "recipes" / "alpha.yaml").read_bytes()
    write(ws.root / "recipes" / "alpha.yaml", recorded.decode() + "seed: 7\n")
    _bundle(ws, tmp_path / "b")
    assert (tmp_path / "b" / "recipes" / "alpha.yaml").read_bytes() == recorded


def test_tampered_recipe_lock_and_data_are_refused_by_name(
    ws: ScenarioWorkspace, tmp_path: Path
) -> None:
    ws.record("alpha")
    shutil.rmtree(ws.root / ".git")  # no recorded commit to fall back to
    (ws.root / ".git").mkdir()
    cases = [
        ("recipes/alpha.yaml", "recipes/alpha.yaml: its bytes differ from the recipe"),
        ("lockfiles/alpha.lock", "lockfiles/alpha.lock: its bytes differ from the lock"),
        ("data/train.jsonl", "datasets[0]: data/train.jsonl differs from what the lock pinned"),
        ("models/tiny/config.json", "base_model: ./models/tiny differs from what the lock pinned"),
    ]
    for i, (rel, message) in enumerate(cases):
        path = ws.root / rel
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        out = tmp_path / f"b{i}"
        result = ws.ftctl("bundle", "alpha", "-o", str(out))
        path.write_bytes(original)
        assert result.code == 1, rel
        assert message in result.err, result.err
        assert len(result.err.strip().splitlines()) == 1
        assert not out.exists()  # nothing half-made is left


def _tar_with(tmp_path: Path, bundle: Path, mutate: str) -> Path:
    """A tar of ``bundle`` with one hostile change."""
    target = tmp_path / f"{mutate}.tar"
    index = json.loads((bundle / "index.json").read_text())
    with tarfile.open(target, "w") as tar:
        for entry in index["files"]:
            tar.add(bundle / entry["path"], entry["path"])
        if mutate == "dotdot":
            info = tarfile.TarInfo("../evil.txt")
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
        elif mutate == "symlink":
            info = tarfile.TarInfo("keys/link.pub")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        elif mutate == "huge":
            entry = index["files"][0]
            info = tarfile.TarInfo(entry["path"] + ".big")
            index["files"].append({"path": info.name, "sha256": entry["sha256"], "size": 1})
            info.size = 1 << 20
            tar.addfile(info, io.BytesIO(b"\0" * (1 << 20)))
        elif mutate == "mismatch":
            index["files"][0]["sha256"] = "0" * 64
        data = json.dumps(index).encode()
        info = tarfile.TarInfo("index.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return target


def test_hostile_bundles_are_refused_before_training(ws: ScenarioWorkspace, tmp_path: Path) -> None:
    ws.record("alpha")
    _bundle(ws, tmp_path / "good")
    expected = {
        "dotdot": "has an empty, '.' or '..' segment",
        "symlink": "keys/link.pub is a symlink",
        "huge": "declares 1048576 bytes, the bundle's index.json records 1",
        "mismatch": "differs from the bundle's index.json",
    }
    for mutate, message in expected.items():
        bundle = _tar_with(tmp_path, tmp_path / "good", mutate)
        result = ws.ftctl("replay", str(bundle))
        assert result.code == 1, mutate
        assert message in result.err, result.err
        assert len(result.err.strip().splitlines()) == 1, result.err
    assert not (tmp_path / "evil.txt").exists()
    # A directory bundle: a changed byte, a file the index does not list.
    data = tmp_path / "good" / "data" / "train.jsonl"
    data.write_bytes(data.read_bytes().replace(b"a", b"c"))
    result = ws.ftctl("replay", str(tmp_path / "good"))
    assert (
        result.code == 1 and "data/train.jsonl differs from the bundle's index.json" in result.err
    )
    data.write_bytes(data.read_bytes().replace(b"c", b"a"))
    write(tmp_path / "good" / "extra.py", "import os\n")
    result = ws.ftctl("replay", str(tmp_path / "good"))
    assert result.code == 1 and "extra.py is not in the bundle's index.json" in result.err
