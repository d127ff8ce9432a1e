"""Dependency pins: normalization, digest stability, errors with a line."""

from __future__ import annotations

import pytest

from ftctl.errors import ConfigError
from ftctl.lock.pins import parse_pins, pins_from_environment

BASE = "torch==2.13.0\ntransformers==5.24.0\npeft==0.21.2\n"


@pytest.mark.parametrize(
    "variant",
    [
        "peft==0.21.2\ntorch==2.13.0\ntransformers==5.24.0\n",  # order
        "# pins\n\nTorch==2.13.0  # the CPU build\ntransformers == 5.24.0\nPEFT==0.21.2\n",  # comments, case, spaces
        "--index-url https://example.invalid/simple\n" + BASE,  # where from, not what
        "torch==2.13.0 \\\n\ntransformers==5.24.0\npeft==0.21.2\n",  # continuation
    ],
)
def test_formatting_does_not_change_the_digest(variant: str) -> None:
    assert parse_pins(variant, "p").digest == parse_pins(BASE, "p").digest


@pytest.mark.parametrize(
    "variant",
    [
        BASE.replace("2.13.0", "2.14.1"),
        BASE + "trl==1.16.0\n",
        BASE.replace("torch==2.13.0", "torch==2.13.0 --hash=sha256:" + "a" * 64),
        BASE.replace("torch==2.13.0", "torch[cpu]==2.13.0"),
        BASE.replace("torch==2.13.0", "torch==2.13.0; sys_platform == 'linux'"),
    ],
)
def test_what_gets_installed_changes_the_digest(variant: str) -> None:
    assert parse_pins(variant, "p").digest != parse_pins(BASE, "p").digest


def test_names_are_canonical() -> None:
    pins = parse_pins("Flash_Attn==2.8.3\nTorch>=2.3,<3\n", "p")
    assert pins.packages == {"flash-attn": "==2.8.3", "torch": "<3,>=2.3"}


def test_hashes_sorted() -> None:
    a = parse_pins("torch==2.13.0 --hash=sha256:bbb --hash=sha256:aaa\n", "p")
    b = parse_pins("torch==2.13.0 --hash=sha256:aaa --hash=sha256:bbb\n", "p")
    assert a.packages == b.packages == {"torch": "==2.13.0 --hash=sha256:aaa --hash=sha256:bbb"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("torch==2.13.0\n-r other.txt\n", "p:2: '-r' is not supported in pins; list every package"),
        ("torch==2.13.0\nnot a requirement!\n", "p:2: not a requirement"),
        ("torch==2.13.0\nTORCH==2.14\n", "p:2: torch is pinned twice; keep one line"),
        (
            "pkg @ https://example.invalid/pkg.whl\n",
            "p:1: URL requirements cannot be pinned by version",
        ),
    ],
)
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_pins(text, "p")
    assert str(info.value).startswith(message)


def test_pins_from_environment_lists_installed_training_packages() -> None:
    text = pins_from_environment()
    pins = parse_pins(text, "p")
    assert "ftctl" in pins.packages and "click" not in pins.packages
    assert all(spec.startswith("==") for spec in pins.packages.values())
