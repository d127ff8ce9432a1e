"""The Hub registry's fixtures: the test Hub set up as a publisher sees it, and an adapter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hubserver import HubServer
from tests.registries.artifacts import Adapter, make_adapter

WEIGHTS = os.urandom(300_000)  # binary: the LFS path (batch, PUT, verify)
FILES = {
    "adapter_model.safetensors": WEIGHTS,
    "adapter_config.json": b'{"r": 8, "lora_alpha": 16}\n',
    "tokenizer/tokenizer.json": b'{"version": "1.0"}\n',
}


@pytest.fixture
def hubenv(hub: HubServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> HubServer:
    """``hub`` with the LFS upload path (no Xet), no stored token and a throwaway HF_HOME."""
    import huggingface_hub.constants as constants

    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # read once at import
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))  # never a real login
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    hub.state.slow_seconds = 1.5
    return hub


@pytest.fixture
def adapter(tmp_path: Path) -> Adapter:
    return make_adapter(tmp_path / "adapter", FILES)
