"""Startup benchmark: how long the light commands take, next to a bare interpreter.

    python bench/startup.py [--runs N]

Prints the median wall time and CPU time (user+sys) over N runs (default 10)
of `python -c pass` (the baseline), `ftctl --version` and `ftctl validate` on
this repository's recipes and examples, and each command's ratio to the
baseline. The cases are interleaved run by run, so machine noise falls on all
of them alike. Target: validate of a handful of recipes under 0.25 s.

Bytecode is compiled first (`compileall`), as it is for an installed package:
an editable checkout under PYTHONDONTWRITEBYTECODE=1 would otherwise
recompile ftctl on every run, which no installed ftctl does.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_VALIDATE_S = 0.25


def run_once(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    compileall.compile_dir(str(REPO / "ftctl"), quiet=1)
    ftctl = [sys.executable, "-m", "ftctl"]
    n_recipes = len(list((REPO / "recipes").glob("*.yaml")))
    n_examples = len(list((REPO / "examples").glob("*.yaml")))
    cases = [
        ("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
        ("ftctl --version", [*ftctl, "--version"]),
        (f"ftctl validate recipes/ ({n_recipes} recipes)", [*ftctl, "validate", "recipes/"]),
        (f"ftctl validate examples/ ({n_examples} recipes)", [*ftctl, "validate", "examples/"]),
    ]
    for _, cmd in cases:  # warm the file cache
        run_once(cmd)
    walls: dict[str, list[float]] = {label: [] for label, _ in cases}
    cpus: dict[str, list[float]] = {label: [] for label, _ in cases}
    for _ in range(args.runs):
        for label, cmd in cases:
            wall, cpu = run_once(cmd)
            walls[label].append(wall)
            cpus[label].append(cpu)
    base_wall = statistics.median(walls[cases[0][0]])
    base_cpu = statistics.median(cpus[cases[0][0]])
    print(f"median over {args.runs} interleaved runs (wall | cpu user+sys)")
    for label, _ in cases:
        wall, cpu = statistics.median(walls[label]), statistics.median(cpus[label])
        print(
            f"  {label:<36} {wall * 1000:7.1f} ms {wall / base_wall:5.1f}x"
            f"  | {cpu * 1000:7.1f} ms {cpu / base_cpu:5.1f}x baseline"
        )
    worst = max(statistics.median(walls[label]) for label, _ in cases[2:])
    verdict = "met" if worst < TARGET_VALIDATE_S else "MISSED"
    print(
        f"target: validate under {TARGET_VALIDATE_S * 1000:.0f} ms wall -> {verdict} ({worst * 1000:.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
