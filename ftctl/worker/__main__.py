"""``python -m ftctl.worker SPEC.json``: train the run the spec describes.

Exit codes as every worker process (ftctl.worker.process): 0 trained, 1 an
error, 130 interrupted.
"""

from __future__ import annotations

import sys

from ftctl.worker.process import run_process


def main() -> int:
    return run_process(_main)


def _main() -> int:
    from ftctl.render.terminal import error

    if len(sys.argv) != 2:
        error("usage: python -m ftctl.worker SPEC.json  (or - to read the spec on stdin)")
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
        from pathlib import Path

        text = Path(sys.argv[1]).read_bytes()
    from ftctl.runspec import RunSpec
    from ftctl.worker.train import run

    run(RunSpec.model_validate_json(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
