"""``python -m ftctl.worker SPEC.json``: train the run the spec describes."""

from __future__ import annotations

import sys
from pathlib import Path

from ftctl.errors import FtctlError


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m ftctl.worker SPEC.json", file=sys.stderr)
        return 1
    from ftctl.worker.spec import RunSpec
    from ftctl.worker.train import run

    try:
        spec = RunSpec.model_validate_json(Path(sys.argv[1]).read_bytes())
        run(spec)
    except FtctlError as exc:
        for problem in exc.problems:
            print(f"ftctl: error: {problem.render()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
