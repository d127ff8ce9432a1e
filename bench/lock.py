"""Lock benchmarks, each next to its baseline measured in the same run.

    python bench/lock.py [--gib 1] [--recipes 1000] [--runs 5]

(a) `ftctl lock --check` over N recipes with unchanged inputs: warm (caches
    in .ftctl/) and cold (no .ftctl/), next to `python -c pass`. Target: under 1 s.
(b) Re-lock with an unchanged DVC-tracked dataset of --gib GiB (real dvc add):
    the first lock (which md5s the data to check it against DVC's record) and
    the re-lock (stat cache hit), in-process and whole-process. Target: under 0.2 s.
(c) Cold hashing of a --gib GiB file (page cache warm, stat cache off): ftctl's
    sha256 and md5 against `sha256sum` and `md5sum`. Target: at least 0.8x their throughput.

Needs about 3x --gib of free space in the temporary directory.
"""

from __future__ import annotations

import argparse
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

RECIPE = """\
base_model: org/model@{commit}
adapter: lora
lora_r: {r}
datasets:
  - path: org/data@{commit}
    type: alpaca
micro_batch_size: 2
gradient_accumulation_steps: 2
learning_rate: 0.001
"""
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}


def wall(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
    )
    return time.perf_counter() - start


def median(cmd: list[str], cwd: Path, runs: int, before: object = None) -> float:
    times = []
    for _ in range(runs):
        if callable(before):
            before()
        times.append(wall(cmd, cwd))
    return statistics.median(times)


def bench_check(tmp: Path, n: int, runs: int) -> None:
    root = tmp / "many"
    (root / "recipes").mkdir(parents=True)
    (root / ".git").mkdir()
    for i in range(n):
        text = RECIPE.format(commit="a" * 40, r=i % 64 + 1)
        (root / "recipes" / f"r{i:04d}.yaml").write_text(text)
    ftctl = [sys.executable, "-m", "ftctl"]
    wall([*ftctl, "lock"], root)
    baseline = median([sys.executable, "-c", "pass"], root, runs)
    warm = median([*ftctl, "lock", "--check"], root, runs)
    cold = median(
        [*ftctl, "lock", "--check"],
        root,
        runs,
        before=lambda: shutil.rmtree(root / ".ftctl", ignore_errors=True),
    )
    wall([*ftctl, "lock", "--check"], root)  # leave the caches warm
    print(f"(a) lock --check, {n} recipes, unchanged (median of {runs})")
    print(f"    python -c pass (baseline)     {baseline * 1000:8.1f} ms")
    print(
        f"    warm (.ftctl caches)          {warm * 1000:8.1f} ms  {warm / baseline:5.1f}x baseline  target < 1000 ms: {'met' if warm < 1 else 'MISSED'}"
    )
    print(
        f"    cold (no .ftctl)              {cold * 1000:8.1f} ms  {cold / baseline:5.1f}x baseline"
    )


def make_file(path: Path, gib: float) -> None:
    block = os.urandom(16 * 1024 * 1024)
    with path.open("wb") as handle:
        for _ in range(int(gib * 64)):
            handle.write(block)


def bench_relock(tmp: Path, data: Path, runs: int) -> None:
    from ftctl.cache.parse import ParseCache
    from ftctl.cache.stat import StatCache
    from ftctl.lock.resolve import compute_locks, load_workspace_recipes
    from ftctl.workspace import discover

    root = tmp / "dvcrepo"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True, env=ENV)
    (root / "data").mkdir()
    os.link(
        data, root / "data" / "big.bin"
    ) if data.stat().st_dev == root.stat().st_dev else shutil.copy(data, root / "data" / "big.bin")
    subprocess.run(
        [sys.executable, "-m", "dvc", "add", "-q", "data/big.bin"], cwd=root, check=True, env=ENV
    )
    (root / "models" / "tiny").mkdir(parents=True)
    (root / "models" / "tiny" / "config.json").write_text("{}")
    (root / "recipes").mkdir()
    (root / "recipes" / "big.yaml").write_text(
        RECIPE.format(commit="a" * 40, r=8).replace(f"org/data@{'a' * 40}", "data/big.bin")
    )
    workspace = discover(root)

    def lock_once() -> float:
        start = time.perf_counter()
        stat = StatCache(root / ".ftctl" / "statcache.json")
        parsed = ParseCache(root / ".ftctl" / "parsed.json")
        report = compute_locks(
            workspace, load_workspace_recipes(workspace, parsed), cache=stat, parse_cache=parsed
        )
        stat.save()
        parsed.save()
        assert report.outcomes[0].new is not None
        return time.perf_counter() - start

    first = lock_once()
    again = statistics.median(lock_once() for _ in range(runs))
    process = median([sys.executable, "-m", "ftctl", "lock"], root, runs)
    size = (root / "data" / "big.bin").stat().st_size / 2**30
    print(f"(b) re-lock, unchanged {size:.2f} GiB DVC-tracked dataset")
    print(f"    first lock (md5 of the data)  {first * 1000:8.1f} ms  (baseline)")
    print(
        f"    re-lock, in process           {again * 1000:8.1f} ms  {first / again:6.0f}x faster  target < 200 ms: {'met' if again < 0.2 else 'MISSED'}"
    )
    print(
        f"    re-lock, whole `ftctl lock`   {process * 1000:8.1f} ms  (interpreter start-up included)"
    )


def bench_hash(data: Path, runs: int) -> None:
    from ftctl.cache.stat import StatCache
    from ftctl.hashing import file_digest

    size = data.stat().st_size
    subprocess.run(["cat", str(data)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    print(f"(c) cold hashing of {size / 2**30:.2f} GiB (page cache warm, best of {runs})")
    for algorithm, tool in (("sha256", "sha256sum"), ("md5", "md5sum")):
        ours, theirs = [], []
        for _ in range(runs):
            start = time.perf_counter()
            ours_hex = file_digest(data, algorithm, StatCache.disabled())
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            out = subprocess.run(
                [tool, str(data)], check=True, capture_output=True, text=True
            ).stdout
            theirs.append(time.perf_counter() - start)
            assert out.split()[0] == ours_hex
        mine, base = size / min(ours) / 2**20, size / min(theirs) / 2**20
        print(
            f"    {tool:<10} {base:8.0f} MiB/s (baseline)   ftctl {algorithm:<6} {mine:8.0f} MiB/s   "
            f"{mine / base:4.2f}x  target >= 0.8x: {'met' if mine / base >= 0.8 else 'MISSED'}"
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--recipes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ftctl-bench-") as name:
        tmp = Path(name)
        bench_check(tmp, args.recipes, args.runs)
        data = tmp / "big.bin"
        make_file(data, args.gib)
        bench_hash(data, args.runs)
        bench_relock(tmp, data, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
