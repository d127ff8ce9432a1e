"""A finished run directory: what `ftctl train`, the worker or another trainer leaves behind.

    RUN_DIR/
      adapter/            what is published: adapter weights, adapter_config.json, tokenizer files
      train-log.jsonl     one JSON object per logged step
      environment.json    python, packages, torch/CUDA, device
      result.json         {"started_at", "finished_at", "metrics", "steps", "tokens_seen", ...}

The files under adapter/ become the manifest's subjects; the other three are
byproducts. Documented in docs/run-dir.md. result.json is checked here
(times in order and in range, counts non-negative, metrics numbers), so
attest builds its statement from checked data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ftctl.cache.stat import StatCache
from ftctl.canonical import JSONError, strict_loads
from ftctl.errors import FtctlError, excerpt
from ftctl.files import UnreadableInput, read_regular
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


MAX_JSON_BYTES = 16 * 1024 * 1024  # result.json and environment.json are a few KiB
EARLIEST, LATEST = 2000, 2200  # years a real run can start or finish in
COUNTS = ("steps", "tokens_seen", "epochs", "samples", "train_samples")


def _json_file(path: Path) -> dict[str, Any]:
    try:
        raw = read_regular(path, MAX_JSON_BYTES, str(path), what="run file")
    except UnreadableInput as exc:
        missing = "not found" in exc.problem.message
        hint = "is this the directory `ftctl train` wrote?" if missing else None
        raise FtctlError(f"{path}: {exc.problem.message}", hint=hint) from None
    try:
        data = strict_loads(raw)
    except JSONError as exc:
        raise FtctlError(f"{path}: not valid JSON ({exc.reason})") from None
    if not isinstance(data, dict):
        raise FtctlError(f"{path}: expected a JSON object")
    return data


def _when(result: dict[str, Any], key: str, shown: Path) -> datetime:
    """``result[key]`` as an aware datetime in a plausible year; else one error naming it."""
    value = result.get(key)
    if not isinstance(value, str):
        raise FtctlError(f"{shown}: {key} is missing", hint="an unfinished run cannot be attested")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if when.tzinfo is None:
            raise ValueError("no time zone")
        year = when.astimezone(UTC).year  # 9999-12-31T23:59:59-05:00 overflows here
    except (ValueError, OverflowError):
        raise FtctlError(
            f"{shown}: {key} {excerpt(value)} is not an ISO-8601 time with a time zone",
            hint="write it in UTC, e.g. 2026-11-24T22:00:00Z",
        ) from None
    if not EARLIEST <= year <= LATEST:
        raise FtctlError(f"{shown}: {key} {excerpt(value)} is not between {EARLIEST} and {LATEST}")
    return when


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_result(result: dict[str, Any], shown: Path) -> None:
    """Times in order and in range, counts non-negative, metrics a mapping of numbers."""
    started, finished = _when(result, "started_at", shown), _when(result, "finished_at", shown)
    if started > finished:
        raise FtctlError(f"{shown}: started_at is after finished_at")
    for key in COUNTS:
        value = result.get(key)
        if value is not None and not (_is_number(value) and isinstance(value, int) and value >= 0):
            raise FtctlError(f"{shown}: {key} must be a whole number, 0 or more")
    metrics = result.get("metrics", {})
    if not isinstance(metrics, dict):
        raise FtctlError(f"{shown}: metrics must be an object of names to numbers")
    for name, value in metrics.items():
        if not (_is_number(value) and math.isfinite(value)):
            raise FtctlError(f"{shown}: metrics {excerpt(name)} is not a finite number")


def read_run_dir(root: Path) -> RunDir:
    if not root.is_dir():
        raise FtctlError(f"{root}: no such run directory")
    if not (root / "adapter").is_dir():
        raise FtctlError(
            f"{root}: no adapter/ directory",
            hint="a run directory holds adapter/, result.json, environment.json, train-log.jsonl",
        )
    result = _json_file(root / "result.json")
    check_result(result, root / "result.json")
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
