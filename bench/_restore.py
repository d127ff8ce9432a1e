"""Restore from a file:// registry against ``cp -r`` of the same artifact.

    python bench/_restore.py [--gib 1]

Builds an artifact of about ``size_bytes`` (a config, a tokenizer file, one big random
weights file) and publishes it to a file registry. Then times what restore does,
FileRegistry.fetch_verified (copy every file and check its sha256 against the recorded
digests, in one read), next to ``cp -r`` of the artifact's directory: best of 3 each,
interleaved, the page cache warm for both, written data flushed between runs (untimed).
Target: ratio (ftctl / cp) at most 1.5.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FINGERPRINT = "sha256:" + "5e" * 32
RUNS = 3


def _make_adapter(adapter: Path, size_bytes: int) -> None:
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"r": 8, "lora_alpha": 16}\n')
    small = min(1 << 20, size_bytes // 8)
    (adapter / "tokenizer.json").write_bytes(os.urandom(small))
    left = size_bytes - small
    with open(adapter / "adapter_model.safetensors", "wb") as handle:
        while left > 0:
            n = min(left, 64 << 20)
            handle.write(os.urandom(n))
            left -= n


def _warm(directory: Path) -> None:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                while handle.read(8 << 20):
                    pass


def _timed(run: Callable[[], object], dest: Path) -> float:
    shutil.rmtree(dest, ignore_errors=True)
    os.sync()  # the previous copy's writeback must not land in this one's time
    start = time.perf_counter()
    run()
    elapsed = time.perf_counter() - start
    shutil.rmtree(dest, ignore_errors=True)
    return elapsed


def measure_restore(size_bytes: int = 1 << 30) -> dict[str, float]:
    """Seconds (best of 3) for FileRegistry.fetch_verified and ``cp -r``, and their ratio."""
    from ftctl.provenance.rundir import artifact_digests
    from ftctl.registries.file import FileRegistry

    with tempfile.TemporaryDirectory(prefix="ftctl-bench-restore-") as tmp:
        base = Path(tmp)
        _make_adapter(base / "adapter", size_bytes)
        registry = FileRegistry("file://registry/bench", base)
        registry.publish("bench", FINGERPRINT, base / "adapter", b"{}\n", "# bench\n")
        found = registry.find(FINGERPRINT)
        assert found is not None
        expected = artifact_digests(base / "adapter")
        source = base / "registry" / "bench" / FINGERPRINT[7:]
        _warm(source)
        dest = base / "restored"
        ftctl_times, cp_times = [], []
        for _ in range(RUNS):
            ftctl_times.append(_timed(lambda: registry.fetch_verified(found, dest, expected), dest))
            cp_times.append(
                _timed(lambda: subprocess.run(["cp", "-r", source, dest], check=True), dest)
            )
    ftctl_s, cp_s = min(ftctl_times), min(cp_times)
    return {"ftctl_s": round(ftctl_s, 3), "cp_s": round(cp_s, 3), "ratio": round(ftctl_s / cp_s, 2)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=1.0, help="artifact size in GiB")
    args = parser.parse_args()
    print(json.dumps(measure_restore(int(args.gib * (1 << 30)))))
