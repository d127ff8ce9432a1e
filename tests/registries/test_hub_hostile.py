"""A Hub that answers what the Hub never would: every case one line, nothing written outside.

Also: the token never appears in a message, HF_HUB_OFFLINE stops every call in one
line, and a malformed target is refused before any request.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftctl.errors import FtctlError
from ftctl.registries.base import PROVENANCE_FILE, Found
from ftctl.registries.hf import HubRegistry, parse_target, tag_of, verify_published
from tests.hubserver import HubServer, Reply, Step
from tests.registries.artifacts import Adapter
from tests.registries.test_hf import REPO, TARGET, publish

TOKEN = "hf_SECRETSECRETSECRETSECRET"


def one_line_error(call: object, *args: object) -> str:
    assert callable(call)
    with pytest.raises(FtctlError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_refs_that_are_not_json(hubenv: HubServer, adapter: Adapter) -> None:
    publish(adapter)
    hubenv.state.faults["refs"] = ["garbage"]
    message = one_line_error(HubRegistry(TARGET).find, adapter.fingerprint)
    assert message.startswith(
        "hf://acme/support-bot: the Hub's answer is malformed: the refs is not valid JSON"
    )


def test_refs_of_the_wrong_shape(hubenv: HubServer, adapter: Adapter) -> None:
    publish(adapter)
    bad = {"branches": [{"name": "main", "targetCommit": "../../etc"}], "tags": []}
    hubenv.state.faults["refs"] = [Reply(200, json.dumps(bad).encode())]
    message = one_line_error(HubRegistry(TARGET).find, adapter.fingerprint)
    assert "an entry of the branches is not a name with a 40-hex commit" in message


def test_a_huge_provenance_is_not_read_whole(hubenv: HubServer, adapter: Adapter) -> None:
    _, commit = publish(adapter)
    huge = hubenv.state.put_file(REPO, PROVENANCE_FILE, b" " * (17 * 1024 * 1024))
    hubenv.state.models[REPO].tags[tag_of(adapter.fingerprint)] = huge
    message = one_line_error(HubRegistry(TARGET).find, adapter.fingerprint)
    assert (
        message == f"hf://acme/support-bot@{huge}: the Hub's answer is larger than 16,777,216 bytes"
    )
    assert commit != huge


def test_a_provenance_that_is_not_json(hubenv: HubServer, adapter: Adapter) -> None:
    publish(adapter)
    bad = hubenv.state.put_file(REPO, PROVENANCE_FILE, b'{"payloadType": 1, "payloadType": 2}')
    hubenv.state.models[REPO].tags[tag_of(adapter.fingerprint)] = bad
    message = one_line_error(HubRegistry(TARGET).find, adapter.fingerprint)
    assert message.startswith(f"hf://acme/support-bot@{bad}: {PROVENANCE_FILE} is unusable: ")
    assert "duplicate key 'payloadType'" in message


def test_a_listing_with_a_path_out_of_the_download(
    hubenv: HubServer, adapter: Adapter, tmp_path: Path
) -> None:
    registry, _ = publish(adapter)
    found = registry.find(adapter.fingerprint)
    assert found is not None
    evil = [{"type": "file", "oid": "0" * 40, "size": 4, "path": "../../escaped.txt"}]
    hubenv.state.faults["tree"] = [Reply(200, json.dumps(evil).encode())]
    dest = tmp_path / "in" / "dest"
    message = one_line_error(registry.fetch, found, dest)
    assert message.endswith(
        "the file listing names '../../escaped.txt', not a path inside the repository"
    )
    assert not dest.exists() and not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "in").exists()  # refused before anything was made


def test_a_file_longer_than_its_listing(
    hubenv: HubServer, adapter: Adapter, tmp_path: Path
) -> None:
    registry, _ = publish(adapter)
    found = registry.find(adapter.fingerprint)
    assert found is not None
    # The provenance comes first, then adapter_config.json (27 bytes listed): 400 kB arrive.
    hubenv.state.faults["resolve"] = [None, Reply(200, b"x" * 400_000)]
    message = one_line_error(registry.fetch, found, tmp_path / "dest")
    assert message.endswith(
        "@" + found.uri.split("@")[1] + ": the Hub's answer is larger than 27 bytes"
    )
    assert not (tmp_path / "dest").exists()


def test_a_non_json_answer_to_the_commit(hubenv: HubServer, adapter: Adapter) -> None:
    hubenv.state.faults["commit"] = ["garbage"]
    message = one_line_error(publish, adapter)
    assert message.startswith("hf://acme/support-bot: the Hub's answer is malformed (")
    assert hubenv.state.models[REPO].tags == {}


def test_the_token_is_sent_and_never_shown(
    hubenv: HubServer, adapter: Adapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    publish(adapter)
    assert f"Bearer {TOKEN}" in hubenv.state.authorization
    messages = []
    echo = Reply(
        401, json.dumps({"error": f"bad token {TOKEN}"}).encode(), {"X-Error-Message": TOKEN}
    )
    steps: list[tuple[str, Step]] = [
        ("refs", echo),
        ("refs", "garbage"),
        ("create", Reply(403, b"{}")),
    ]
    for i, (endpoint, step) in enumerate(steps):
        hubenv.state.faults[endpoint] = [step]
        try:
            HubRegistry(f"{TARGET}-{i}").publish(
                adapter.name, adapter.fingerprint, adapter.files, adapter.provenance, None
            )
        except FtctlError as exc:
            messages.append(str(exc))
        hubenv.state.faults.clear()
    assert len(messages) == 3
    assert all(TOKEN not in m for m in messages)
    assert "not authorized (403); set HF_TOKEN to a token that can write to it" in messages[2]


def test_offline_mode_is_one_line(
    hubenv: HubServer, adapter: Adapter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import huggingface_hub.constants as constants

    registry, commit = publish(adapter)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    calls = len(hubenv.state.calls)
    message = one_line_error(registry.find, adapter.fingerprint)
    assert message == (
        "hf://acme/support-bot: HF_HUB_OFFLINE is set, so the Hub cannot be asked; "
        "unset HF_HUB_OFFLINE where the Hub is reachable"
    )
    dest = tmp_path / "dest"
    message = one_line_error(
        registry.fetch, Found(f"{TARGET}@{commit}", adapter.name, commit), dest
    )
    assert message.startswith(f"{TARGET}@{commit}: HF_HUB_OFFLINE is set")
    assert len(hubenv.state.calls) == calls and not dest.exists()  # nothing left the machine


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("hf://acme", "it has no ORG/"),
        ("hf://acme/../x", "'acme/../x' is not a Hugging Face id"),
        ("file://acme/x", "it does not start with hf://"),
        ("hf://acme/x@", "nothing follows '@'"),
        ("hf://acme/x@a..b", "revision 'a..b' is not a valid branch, tag or commit"),
    ],
)
def test_malformed_targets(target: str, reason: str) -> None:
    with pytest.raises(FtctlError) as info:
        parse_target(target, revision=True)
    assert reason in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_publish_refuses_a_revision(hubenv: HubServer, adapter: Adapter) -> None:
    message = one_line_error(publish, adapter, "hf://acme/support-bot@main")
    assert "a publication goes to the repository, not a revision" in message
    assert hubenv.state.calls == []


def test_a_listing_naming_a_file_and_a_folder_alike(hubenv: HubServer, adapter: Adapter) -> None:
    publish(adapter)
    clash = [
        {"type": "file", "oid": "0" * 40, "size": 1, "path": "x"},
        {"type": "file", "oid": "0" * 40, "size": 1, "path": "x/y"},
    ]
    hubenv.state.put_file(REPO, "x", b"1")
    hubenv.state.faults["tree"] = [Reply(200, json.dumps(clash).encode())]
    message = one_line_error(verify_published, TARGET, adapter.trusted)
    assert "cannot write the download" in message


def test_a_branch_that_keeps_moving(hubenv: HubServer, adapter: Adapter) -> None:
    hubenv.state.faults["commit"] = ["move", "move", "move"]
    message = one_line_error(publish, adapter)
    assert message == (
        f"{TARGET}: the branch kept moving while committing (412); "
        "someone else is committing to the repository; publish again"
    )
    assert hubenv.state.models[REPO].tags == {}
