"""The tensor comparison (worker side, its own process) and replay's classification of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ftctl.replay.replay import Tolerance, compare_tensor_files

torch = pytest.importorskip("torch", reason="comparing tensors needs the train extra")
safetensors_torch = pytest.importorskip("safetensors.torch")


def _save(path: Path, tensors: dict[str, object], metadata: dict[str, str] | None = None) -> Path:
    safetensors_torch.save_file(tensors, str(path), metadata=metadata)
    return path


def test_tensor_classes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    a = torch.randn(4, 8, dtype=torch.float32)
    b = torch.randn(8, 4, dtype=torch.bfloat16)
    recorded = _save(tmp_path / "a.safetensors", {"lora_A": a, "lora_B": b})
    tol = Tolerance(abs=1e-6, rel=1e-4)

    def classify(
        tensors: dict[str, object], meta: dict[str, str] | None = None
    ) -> tuple[str, list[dict[str, Any]]]:
        replayed = _save(tmp_path / "b.safetensors", tensors, meta)
        outcome, figures = compare_tensor_files(
            recorded, replayed, tol, "adapter_model.safetensors"
        )
        return outcome.verdict, figures

    verdict, _ = classify({"lora_A": a.clone(), "lora_B": b.clone()}, {"other": "metadata"})
    assert verdict == "tensor-exact"
    one_ulp = torch.nextafter(a, torch.full_like(a, float("inf")))
    verdict, figures = classify({"lora_A": one_ulp, "lora_B": b.clone()})
    assert verdict == "within-tolerance"
    [figure] = [f for f in figures if f["name"] == "lora_A"]
    assert 0 < figure["max_abs"] < 1e-6 and figure["status"] == "within"
    verdict, figures = classify({"lora_A": a + 1e-2, "lora_B": b.clone()})
    assert verdict == "diverged"
    assert abs(next(f for f in figures if f["name"] == "lora_A")["max_abs"] - 1e-2) < 1e-4
    # bf16 widened to float64 by torch: a one-step change of a bf16 value is seen exactly.
    bumped = torch.nextafter(b, torch.full_like(b, float("inf")))
    verdict, figures = classify({"lora_A": a.clone(), "lora_B": bumped})
    assert verdict == "diverged"
    assert next(f for f in figures if f["name"] == "lora_B")["max_rel"] > 1e-3
    verdict, figures = classify({"lora_A": a.reshape(8, 4).clone(), "lora_B": b.clone()})
    assert verdict == "diverged" and figures[0]["status"] == "shape or dtype differs"
    verdict, _ = classify({"lora_A": a.clone()})
    assert verdict == "diverged"


def test_tolerance_parsing() -> None:
    from ftctl.errors import UsageError

    assert Tolerance.parse("abs=1e-3,rel=0") == Tolerance(1e-3, 0.0)
    assert Tolerance.parse("rel=0.5") == Tolerance(1e-6, 0.5)
    for bad in ("abs=-1", "abs=x", "foo=1", "abs=inf", "abs=nan"):
        with pytest.raises(UsageError):
            Tolerance.parse(bad)
