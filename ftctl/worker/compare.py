"""Compare the tensors of two safetensors files: ``python -P -m ftctl.worker.compare A B ABS REL``.

Prints one JSON object: per tensor, whether the values are identical and the
maximum absolute and relative difference computed in float64 (bf16 and fp16
are widened by torch itself, never through numpy), and whether every element
is within ``|a - b| <= ABS + REL * |a|``. Tensors only in one file, or of
another shape or dtype, are listed as such. Exit 0 when it compared, 1 when a
file cannot be read.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def compare(a_path: str, b_path: str, tol_abs: float, tol_rel: float) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_file

    a, b = load_file(a_path), load_file(b_path)
    tensors: list[dict[str, Any]] = []
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            tensors.append(
                {"name": name, "status": "only in " + ("replay" if name in b else "recorded")}
            )
            continue
        x, y = a[name], b[name]
        if x.shape != y.shape or x.dtype != y.dtype:
            tensors.append({
                "name": name,
                "status": "shape or dtype differs",
                "recorded": f"{str(x.dtype).removeprefix('torch.')}{list(x.shape)}",
                "replay": f"{str(y.dtype).removeprefix('torch.')}{list(y.shape)}",
            })  # fmt: skip
            continue
        if torch.equal(x, y):
            tensors.append({"name": name, "status": "equal", "max_abs": 0.0, "max_rel": 0.0})
            continue
        x64, y64 = x.to(torch.float64), y.to(torch.float64)
        diff = (x64 - y64).abs()
        scale = torch.maximum(x64.abs(), y64.abs())
        rel = torch.where(scale > 0, diff / scale, torch.zeros_like(diff))
        within = bool(torch.all(diff <= tol_abs + tol_rel * x64.abs()).item())
        tensors.append({
            "name": name,
            "status": "within" if within else "differs",
            "max_abs": float(diff.max().item()) if diff.numel() else 0.0,
            "max_rel": float(rel.max().item()) if rel.numel() else 0.0,
        })  # fmt: skip
    return {"tensors": tensors}


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: python -m ftctl.worker.compare A B ABS REL", file=sys.stderr)
        return 2
    try:
        result = compare(argv[0], argv[1], float(argv[2]), float(argv[3]))
    except Exception as exc:  # an unreadable file: one line for the controller to report
        print(
            json.dumps(
                {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
            )
        )
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
