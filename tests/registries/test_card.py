"""ftctl's model card: Hub metadata, a provenance table, deterministic and escaped."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML

from ftctl.provenance.statement import Statement
from ftctl.registries.card import model_card
from tests.registries.artifacts import BASE_COMMIT, DATA_COMMIT, statement_body

FILES = {"adapter_model.safetensors": b"w", "adapter_config.json": b"{}"}
DIGEST = "sha256:" + "5" * 64


def statement(**kw: Any) -> Statement:
    return Statement.model_validate(statement_body(FILES, **kw))


def front(card: str) -> tuple[dict[str, Any], str]:
    assert card.startswith("---\n")
    head, _, body = card[4:].partition("\n---\n")
    return YAML(typ="safe", pure=True).load(io.StringIO(head)), body


def test_the_card_carries_the_hub_metadata_and_provenance() -> None:
    card = model_card(
        statement(license="apache-2.0", metrics={"train_loss": 0.5, "eval_loss": 2}), DIGEST
    )
    meta, body = front(card)
    assert meta == {
        "base_model": "org/base",
        "base_model_relation": "adapter",
        "library_name": "peft",
        "datasets": ["org/chats"],  # the DVC dataset is not a Hub id
        "license": "apache-2.0",
        "tags": ["ftctl"],
    }
    rows = [line for line in body.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows == [
        "| Recipe | support-bot |",
        "| Base model | org/base |",
        f"| Base model version | {BASE_COMMIT} |",
        f"| Dataset 1 | org/chats@v2 @ {DATA_COMMIT} |",
        f"| Dataset 2 | data/local.jsonl @ md5:{'b' * 32} |",
        f"| Recipe digest | sha256:{'1' * 64} |",
        f"| Fingerprint | sha256:{'f' * 64} |",
        "| Finished | 2026-11-24T22:01:00Z |",
        "| Metric eval\\_loss | 2 |",
        "| Metric train\\_loss | 0.5 |",
        f"| Manifest digest | {DIGEST} |",
    ]
    assert "ftctl verify hf://acme/support-bot@ftctl-ffffffffffff" in body
    assert card.endswith("|\n") and model_card(statement(license="apache-2.0",
        metrics={"eval_loss": 2, "train_loss": 0.5}), DIGEST) == card  # fmt: skip


def test_a_local_or_upstream_base_model_has_no_hub_id() -> None:
    for base in ("./models/tiny", "recipe:upstream"):
        meta, body = front(model_card(statement(base_model=base), DIGEST))
        assert "base_model" not in meta and "license" not in meta
        assert f"| Base model | {base} |" in body


def test_nothing_from_the_statement_breaks_the_yaml_or_the_table() -> None:
    hostile = 'x"\\|y\n---\n<script>*[a](b)*\u2028\x00'
    card = model_card(statement(license=hostile, metrics={hostile: hostile}), DIGEST)
    meta, body = front(card)
    assert meta["license"] == hostile  # every character survives, escaped
    table = [line for line in body.splitlines() if line.startswith("|")]
    assert all(line.count("|") - line.count("\\|") == 3 for line in table), table
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert "[a](b)" not in body and "\\[a\\](b)" in body
    assert card.count("\n---\n") == 1 and "\u2028" not in body
