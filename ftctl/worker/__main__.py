"""``python -m ftctl.worker SPEC.json``: train the run the spec describes."""

from __future__ import annotations

import sys
from pathlib import Path

from ftctl.errors import FtctlError


def main() -> int:
    if len(sys.argv) != 2:
        print(
            "usage: python -m ftctl.worker SPEC.json  (or - to read the spec on stdin)",
            file=sys.stderr,
        )
        return 1
    if sys.argv[1] == "-":
        # Started before the caller has read the recipe: import what every run needs meanwhile.
        import datasets  # noqa: F401
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import trl  # noqa: F401

        text = sys.stdin.buffer.read()
        if not text.strip():
            return 0  # the caller stopped before training (e.g. an invalid recipe)
    else:
        text = Path(sys.argv[1]).read_bytes()
    from ftctl.runspec import RunSpec
    from ftctl.worker.train import run

    try:
        spec = RunSpec.model_validate_json(text)
        run(spec)
    except FtctlError as exc:
        for problem in exc.problems:
            print(f"ftctl: error: {problem.render()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
