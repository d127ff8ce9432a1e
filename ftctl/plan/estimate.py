"""Estimates of what a training costs: tokens, parameters, GPU-hours. Always labelled as estimates.

FLOPs = 6 * N * T (forward and backward over N parameters for T tokens),
GPU-hours = FLOPs / (peak dense bf16 FLOP/s of the declared accelerator x 40%
utilisation) / 3600. N is read exactly from safetensors headers (a local base
model, or the Hugging Face cache at the locked commit: no network); T from the
locked datasets' sizes at ~4 bytes per token, times epochs. Anything that is
not known stays "unknown": no number is invented.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

from ftctl.lock.lockfile import DvcPin, HfPin, LocalPin, Lockfile
from ftctl.plan.planner import Estimate
from ftctl.workspace import resolve_path

UTILISATION = 0.40
BYTES_PER_TOKEN = 4
# Peak dense bf16 (fp16 for V100/T4) TFLOP/s per accelerator, from the vendors' data sheets.
PEAK_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,
    "GH200": 989.0,
    "A100": 312.0,
    "A100-80GB": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10G": 70.0,
    "A10": 125.0,
    "V100": 125.0,
    "T4": 65.0,
    "MI300X": 1307.0,
}


def safetensors_params(directory: Path) -> int | None:
    """Total tensor elements in every *.safetensors file of a directory (headers only)."""
    files = sorted(directory.glob("*.safetensors")) if directory.is_dir() else []
    if not files:
        return None
    total = 0
    for file in files:
        try:
            with file.open("rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                if length > 100_000_000:
                    return None
                header = json.loads(handle.read(length))
        except (OSError, ValueError, struct.error):
            return None
        for name, info in header.items():
            if name != "__metadata__" and isinstance(info, dict):
                total += math.prod(info.get("shape", []))
    return total


def _hf_cache_dir(repo: str, commit: str) -> Path:
    home = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", str(Path.home() / ".cache" / "huggingface")), "hub"
    )
    return Path(home) / f"models--{repo.replace('/', '--')}" / "snapshots" / commit


def base_params(lock: Lockfile, root: Path, upstream_params: int | None) -> int | None:
    pin = lock.base_model
    if isinstance(pin, LocalPin):
        return safetensors_params(resolve_path(root, pin.ref))
    if isinstance(pin, HfPin):
        return safetensors_params(_hf_cache_dir(pin.ref.partition("@")[0], pin.revision))
    return upstream_params  # recipe: the upstream's base model


def estimate(
    lock: Lockfile, config: dict[str, Any], accelerator: str | None, params: int | None
) -> Estimate:
    sizes = [p.size for p in lock.datasets if isinstance(p, (DvcPin, LocalPin))]
    tokens: int | None = None
    notes = []
    if config.get("max_steps"):
        batch = (config.get("micro_batch_size") or 1) * (
            config.get("gradient_accumulation_steps") or 1
        )
        tokens = int(config["max_steps"]) * int(batch) * int(config.get("sequence_len") or 2048)
        notes.append("tokens = max_steps x batch x sequence_len")
    elif sizes and len(sizes) == len(lock.datasets) and all(s is not None for s in sizes):
        per_epoch = sum(s or 0 for s in sizes) // BYTES_PER_TOKEN
        tokens = int(per_epoch * float(config.get("num_epochs") or 1))
        notes.append(f"tokens ~ dataset bytes / {BYTES_PER_TOKEN} x epochs")
    else:
        notes.append("tokens unknown (a Hub dataset's size is not in the lock)")
    kind = accelerator.split(":")[0].upper() if accelerator else None
    peak = PEAK_TFLOPS.get(kind) if kind else None
    gpu_hours = None
    if params is None:
        notes.append("parameters unknown (no safetensors of the base model on this machine)")
    elif tokens is not None and peak is not None:
        gpu_hours = 6 * params * tokens / (peak * 1e12 * UTILISATION) / 3600
        notes.append(f"6*N*T at {int(UTILISATION * 100)}% of {kind} peak")
    elif peak is None:
        notes.append(
            f"no peak FLOP/s known for {accelerator}" if accelerator else "no accelerator declared"
        )
    return Estimate(tokens, params, accelerator, gpu_hours, "; ".join(notes))
