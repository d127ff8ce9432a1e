"""A finished run directory: what `ftctl train`, the worker or another trainer leaves behind.

    RUN_DIR/
      adapter/            what is published: adapter weights, adapter_config.json, tokenizer files
      train-log.jsonl     one JSON object per logged step
      environment.json    python, packages, torch/CUDA, device
      result.json         {"started_at", "finished_at", "metrics", "steps", "tokens_seen", ...}

The files under adapter/ become the manifest's subjects; the other three are
byproducts. Documented in docs/run-dir.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftctl.cache.stat import StatCache
from ftctl.canonical import JSONError, strict_loads
from ftctl.errors import FtctlError
from ftctl.hashing import file_digest, walk_files

BYPRODUCTS = ("train-log.jsonl", "environment.json", "result.json")
PROVENANCE_DIR = ".ftctl"  # a registry entry's own provenance copy; not a subject


@dataclass(frozen=True)
class RunDir:
    root: Path
    result: dict[str, Any]
    environment: dict[str, Any]

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"


def _json_file(path: Path) -> dict[str, Any]:
    try:
        data = strict_loads(path.read_bytes())
    except FileNotFoundError:
        raise FtctlError(
            f"{path}: missing", hint="is this the directory `ftctl train` wrote?"
        ) from None
    except (OSError, JSONError) as exc:
        raise FtctlError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise FtctlError(f"{path}: expected a JSON object")
    return data


def read_run_dir(root: Path) -> RunDir:
    if not root.is_dir():
        raise FtctlError(f"{root}: no such run directory")
    if not (root / "adapter").is_dir():
        raise FtctlError(
            f"{root}: no adapter/ directory",
            hint="a run directory holds adapter/, result.json, environment.json, train-log.jsonl",
        )
    result = _json_file(root / "result.json")
    for key in ("started_at", "finished_at"):
        if not isinstance(result.get(key), str):
            raise FtctlError(
                f"{root / 'result.json'}: {key} is missing",
                hint="an unfinished run cannot be attested",
            )
    environment = _json_file(root / "environment.json")
    if not (root / "train-log.jsonl").is_file():
        raise FtctlError(f"{root / 'train-log.jsonl'}: missing")
    return RunDir(root, result, environment)


def artifact_digests(directory: Path, cache: StatCache | None = None) -> dict[str, str]:
    """relative path -> sha256 of every file under ``directory`` except its .ftctl/ folder."""
    cache = cache or StatCache.disabled()
    return {
        rel: file_digest(path, "sha256", cache)
        for rel, path in walk_files(directory, str(directory))
        if rel.split("/", 1)[0] != PROVENANCE_DIR
    }
