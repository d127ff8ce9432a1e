"""Apply benchmarks, each against its baseline measured in the same run.

    python bench/apply.py [--runs 3] [--gib 1] [--skip-training]

(a) A no-op apply on this repository's recipes (everything recorded): whole
    process, median of --runs. Target: under 1 s.
(b) Apply of one tiny recipe (train, check, sign, publish to the file
    registry, record) against the bare TRL script of bench/train.py doing the
    same training: whole-process wall time, median of --runs, interleaved.
    Target: at most 1.10x.
(c) Restore of a ~1 GiB artifact from the file registry (copy and check
    every digest) against `cp -r` (bench/_restore.py). Target: at most 1.5x.
(d) Publish of a ~1 GiB adapter to the Hub test server against a bare
    `create_commit` of the same files (bench/_publish.py). Target: at most 1.10x.
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
sys.path.insert(0, str(REPO / "bench"))

from train import BARE_TRL  # noqa: E402  (the bare TRL script bench/train.py times)


def workspace(tmp: Path, env: dict[str, str]) -> Path:
    """A git workspace with this repository's tiny model, data and tiny-alpaca recipe, locked."""
    root = tmp / "ws"
    shutil.copytree(REPO / "models", root / "models")
    (root / "data").mkdir()
    shutil.copy(REPO / "data" / "alpaca-tiny.jsonl", root / "data")
    (root / "recipes").mkdir()
    shutil.copy(REPO / "recipes" / "tiny-alpaca.yaml", root / "recipes")
    (root / ".gitignore").write_text(".ftctl/\nregistry/\noutputs/\n")
    for command in (
        ["git", "init", "-q"],
        [sys.executable, "-m", "ftctl", "keygen", "bench"],
        [sys.executable, "-m", "ftctl", "lock"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "bench"],
    ):
        subprocess.run(command, cwd=root, env=env, check=True, capture_output=True)
    return root


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def fresh_state(root: Path) -> None:
    for name in ("manifests", "registry", ".ftctl"):
        shutil.rmtree(root / name, ignore_errors=True)


def verdict(ratio: float, target: float) -> str:
    return "met" if ratio <= target else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "dvc", "pull", "-q"], cwd=REPO, check=True)
    apply = [sys.executable, "-m", "ftctl", "apply", "--auto-approve"]
    with tempfile.TemporaryDirectory(prefix="ftctl-bench-apply-") as name:
        tmp = Path(name)
        env = {**os.environ, "XDG_CONFIG_HOME": str(tmp / "home")}
        root = workspace(tmp, env)
        env["FTCTL_SIGNING_KEY"] = str(tmp / "home" / "ftctl" / "keys" / "bench.key")
        if not args.skip_training:
            script = tmp / "bare_trl.py"
            script.write_text(BARE_TRL)
            ours, bare = [], []
            for i in range(args.runs):
                fresh_state(root)
                ours.append(timed(apply, root, env))
                bare.append(timed([sys.executable, str(script), str(tmp / f"bare-{i}")], REPO, env))
            mine, base = statistics.median(ours), statistics.median(bare)
            print(
                f"(b) apply of one tiny recipe, whole process, median of {args.runs} interleaved runs"
            )
            print(f"    bare TRL script (baseline)      {base:6.2f} s")
            print(f"    ftctl apply (train+sign+publish) {mine:6.2f} s  {mine / base:5.2f}x  "
                  f"target <= 1.10x: {verdict(mine / base, 1.10)}")  # fmt: skip
        else:
            subprocess.run(apply, cwd=root, env=env, check=True, capture_output=True)
        noop = statistics.median(timed(apply, root, env) for _ in range(max(args.runs, 5)))
        print("(a) no-op apply (everything recorded), whole process, median")
        print(f"    ftctl apply  {noop:6.3f} s   target < 1 s: {'met' if noop < 1 else 'MISSED'}")
    size = int(args.gib * (1 << 30))
    from _restore import measure_restore

    restore = measure_restore(size)
    print(f"(c) restore of a {args.gib:g} GiB artifact from the file registry, best of 3")
    print(f"    cp -r (baseline)  {restore['cp_s']:6.2f} s")
    print(f"    ftctl restore     {restore['ftctl_s']:6.2f} s  {restore['ratio']:5.2f}x  "
          f"target <= 1.5x: {verdict(restore['ratio'], 1.5)}")  # fmt: skip
    from _publish import measure_publish

    publish = measure_publish(size)
    print(f"(d) publish of a {args.gib:g} GiB adapter to the Hub test server")
    print(f"    bare create_commit (baseline)  {publish['bare_s']:6.2f} s")
    print(f"    ftctl publish                  {publish['ftctl_s']:6.2f} s  {publish['ratio']:5.2f}x  "
          f"target <= 1.10x: {verdict(publish['ratio'], 1.10)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
