"""hf:// publishing through the real huggingface_hub client against the test Hub.

publish makes one commit and one tag; find and fetch read them back byte for byte;
publishing again changes nothing; a moved branch, 5xx answers, a timeout and a
connection cut mid-upload are retried without a second commit; what cannot succeed
fails in one line and leaves the repository as it was (or with the commit and no tag).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ftctl.errors import FtctlError
from ftctl.provenance.manifest import verify_artifacts, verify_bytes
from ftctl.registries.base import PROVENANCE_FILE, Found
from ftctl.registries.hf import HubRegistry, tag_of
from tests.hubserver import HubServer, HubState
from tests.registries.artifacts import Adapter, make_adapter

TARGET = "hf://acme/support-bot"
REPO = "acme/support-bot"


def publish(adapter: Adapter, target: str = TARGET) -> tuple[HubRegistry, str]:
    registry = HubRegistry(target)
    published = registry.publish(
        adapter.name, adapter.fingerprint, adapter.files, adapter.provenance, None
    )
    assert published.commit is not None
    assert published.uri == f"{target}@{published.commit}"
    return registry, published.commit


def commits(state: HubState) -> int:
    """Commit requests the Hub accepted or refused (the initial commit of a repo aside)."""
    return sum(1 for method, path in state.calls if method == "POST" and "/commit/" in path)


def test_publish_find_fetch_round_trip(hubenv: HubServer, adapter: Adapter, tmp_path: Path) -> None:
    registry, commit = publish(adapter)
    state = hubenv.state
    repo = state.models[REPO]
    assert repo.refs["main"] == commit and repo.tags == {tag_of(adapter.fingerprint): commit}
    assert commits(state) == 1
    files = state.commit_files(REPO)
    assert files[PROVENANCE_FILE] == adapter.provenance
    assert set(files) == {*adapter.contents(), PROVENANCE_FILE, "README.md", ".gitattributes"}
    assert repo.commits[commit]["adapter_model.safetensors"].lfs is not None  # went through LFS
    assert files["README.md"].startswith(b'---\nbase_model: "org/base"\n')

    found = registry.find(adapter.fingerprint)
    assert found == Found(f"{TARGET}@{commit}", "support-bot", commit)
    dest = tmp_path / "restored" / "artifact"
    registry.fetch(found, dest)
    fetched = {p.relative_to(dest).as_posix(): p for p in dest.rglob("*") if p.is_file()}
    assert {n: p.read_bytes() for n, p in fetched.items()} == {
        **adapter.contents(),
        PROVENANCE_FILE: adapter.provenance,
    }
    assert not any(p.is_symlink() for p in dest.rglob("*"))
    assert [p.name for p in dest.parent.iterdir()] == ["artifact"]  # no temp dir left
    verified = verify_bytes(adapter.provenance, adapter.trusted, Path("m"))
    verify_artifacts(verified, dest)
    assert registry.find("sha256:" + "0" * 64) is None
    assert HubRegistry("hf://acme/nothing-here").find(adapter.fingerprint) is None


def test_publishing_again_is_a_no_op(hubenv: HubServer, adapter: Adapter) -> None:
    _, first = publish(adapter)
    calls = len(hubenv.state.calls)
    _, again = publish(adapter)
    assert again == first and commits(hubenv.state) == 1
    later = hubenv.state.calls[calls:]
    assert all(method == "GET" for method, _ in later), later  # found by its tag: nothing written


def test_a_new_publication_replaces_the_last_on_main_only(
    hubenv: HubServer, adapter: Adapter, tmp_path: Path
) -> None:
    registry, first = publish(adapter)
    hubenv.state.put_file(REPO, "notes.txt", b"someone else's file\n")
    second = make_adapter(
        tmp_path / "second", {"adapter_model.safetensors": b"\0new weights"},
        fingerprint="sha256:" + "9" * 64, invocation="run-2",
    )  # fmt: skip
    _, commit = publish(second)
    main = hubenv.state.commit_files(REPO)
    assert main["adapter_model.safetensors"] == b"\0new weights"
    assert "adapter_config.json" not in main and "tokenizer/tokenizer.json" not in main
    assert main["notes.txt"] == b"someone else's file\n"  # not ftctl's: kept
    assert hubenv.state.commit_files(REPO, first)["adapter_config.json"]  # history keeps it
    found = registry.find(adapter.fingerprint)
    assert found is not None and found.commit == first
    dest = tmp_path / "old"
    registry.fetch(found, dest)
    assert (dest / "tokenizer" / "tokenizer.json").read_bytes() == b'{"version": "1.0"}\n'
    assert commit != first


def test_a_moved_branch_is_read_again(hubenv: HubServer, adapter: Adapter) -> None:
    hubenv.state.faults["commit"] = ["move"]  # another commit lands just before ours: 412
    _, commit = publish(adapter)
    files = hubenv.state.commit_files(REPO)
    assert files["someone-else.txt"] == b"moved\n" and files[PROVENANCE_FILE] == adapter.provenance
    assert commits(hubenv.state) == 2
    assert hubenv.state.models[REPO].tags[tag_of(adapter.fingerprint)] == commit


def test_server_errors_are_retried(hubenv: HubServer, adapter: Adapter) -> None:
    state = hubenv.state
    state.faults |= {"create": [500], "refs": [503], "validate": [502], "tag": [500]}
    state.faults["commit"] = [500]  # the commit did not land: read the branch, commit again
    state.faults["preupload"] = [500]  # retried inside huggingface_hub (after 1 s)
    _, commit = publish(adapter)
    assert state.models[REPO].tags[tag_of(adapter.fingerprint)] == commit
    assert sum(state.models[REPO].commits[c].get(PROVENANCE_FILE) is not None
               for c in state.models[REPO].commits) == 1  # fmt: skip
    assert not any(state.faults.values())  # every scripted failure was met


def test_a_commit_whose_answer_is_lost_is_not_made_twice(
    hubenv: HubServer, adapter: Adapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FTCTL_HF_TIMEOUT", "0.5")
    hubenv.state.faults["commit"] = ["late"]  # it lands, then the answer comes too late
    _, commit = publish(adapter)
    assert commits(hubenv.state) == 1
    assert hubenv.state.models[REPO].refs["main"] == commit


def test_slow_answers_time_out_and_are_retried(
    hubenv: HubServer, adapter: Adapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FTCTL_HF_TIMEOUT", "0.5")
    hubenv.state.faults |= {"refs": ["slow"], "tag": ["slow"], "resolve": ["slow"]}
    registry, commit = publish(adapter)
    assert registry.find(adapter.fingerprint) is not None
    assert hubenv.state.models[REPO].tags[tag_of(adapter.fingerprint)] == commit


def test_a_connection_cut_mid_upload_is_retried(hubenv: HubServer, adapter: Adapter) -> None:
    hubenv.state.faults["lfs-upload"] = ["drop"]  # half the weights arrive, then it hangs up
    publish(adapter)
    assert (
        hubenv.state.commit_files(REPO)["adapter_model.safetensors"]
        == adapter.contents()["adapter_model.safetensors"]
    )
    puts = [p for m, p in hubenv.state.calls if m == "PUT"]
    assert len(puts) == 2


def test_a_download_cut_halfway_starts_again(
    hubenv: HubServer, adapter: Adapter, tmp_path: Path
) -> None:
    registry, _ = publish(adapter)
    found = registry.find(adapter.fingerprint)
    assert found is not None
    hubenv.state.faults["resolve"] = ["drop"]
    registry.fetch(found, tmp_path / "dest")
    assert (tmp_path / "dest" / "adapter_model.safetensors").read_bytes() == adapter.contents()[
        "adapter_model.safetensors"
    ]


def test_a_commit_that_keeps_failing_is_one_line_and_commits_nothing(
    hubenv: HubServer, adapter: Adapter
) -> None:
    hubenv.state.faults["commit"] = [500, 500, 500]
    with pytest.raises(FtctlError) as info:
        publish(adapter)
    message = str(info.value)
    assert message == (
        "hf://acme/support-bot: the Hub answered 500 after 3 attempts; "
        "check the network (and HF_ENDPOINT), then run it again"
    )
    repo = hubenv.state.models[REPO]
    assert repo.tags == {} and set(hubenv.state.commit_files(REPO)) == {".gitattributes"}
    _, commit = publish(adapter)  # the Hub is back: publishing again succeeds
    assert commits(hubenv.state) == 4 and repo.tags[tag_of(adapter.fingerprint)] == commit


def test_a_failed_tag_leaves_the_commit_and_the_next_publish_only_tags(
    hubenv: HubServer, adapter: Adapter
) -> None:
    hubenv.state.faults["tag"] = [503, 503, 503]
    with pytest.raises(FtctlError, match=r"answered 503 after 3 attempts"):
        publish(adapter)
    repo = hubenv.state.models[REPO]
    assert repo.tags == {} and hubenv.state.commit_files(REPO)[PROVENANCE_FILE]
    _, commit = publish(adapter)
    assert commit == repo.refs["main"] and commits(hubenv.state) == 1


def test_an_earlier_publication_of_the_fingerprint_is_returned(
    hubenv: HubServer, adapter: Adapter, tmp_path: Path
) -> None:
    _, first = publish(adapter)
    resigned = make_adapter(tmp_path / "again", adapter.contents(), invocation="run-2")
    _, again = publish(resigned)  # the same fingerprint, another run: the tag answers
    assert again == first and commits(hubenv.state) == 1


def test_a_tag_made_meanwhile_by_another_publisher_is_checked(
    hubenv: HubServer, adapter: Adapter, tmp_path: Path
) -> None:
    other = make_adapter(
        tmp_path / "other", {"adapter_model.safetensors": b"\0other"},
        fingerprint="sha256:" + "7" * 64, name="other",
    )  # fmt: skip
    _, elsewhere = publish(other)
    tag = tag_of(adapter.fingerprint)

    def tag_it(state: HubState) -> None:  # someone tags another commit with our name
        state.models[REPO].tags[tag] = elsewhere

    hubenv.state.faults["tag"] = [tag_it]
    with pytest.raises(FtctlError) as info:
        publish(adapter)
    assert str(info.value) == (
        f"hf://acme/support-bot: tag {tag} points at commit {elsewhere[:12]}, which holds "
        "fingerprint 777777777777; move or delete the tag "
        f"{tag} on the Hub, then publish again"
    )
    assert HubRegistry(TARGET).find(adapter.fingerprint) is None  # a moved tag is not ours


def test_a_tag_on_another_fingerprint_stops_publish_before_committing(
    hubenv: HubServer, adapter: Adapter, tmp_path: Path
) -> None:
    other = make_adapter(
        tmp_path / "other", {"adapter_model.safetensors": b"\0other"},
        fingerprint="sha256:" + "7" * 64, name="other",
    )  # fmt: skip
    _, elsewhere = publish(other)
    hubenv.state.models[REPO].tags[tag_of(adapter.fingerprint)] = elsewhere
    before = commits(hubenv.state)
    with pytest.raises(FtctlError, match="which holds fingerprint 777777777777"):
        publish(adapter)
    assert commits(hubenv.state) == before


def test_only_the_files_the_manifest_records_are_published(
    hubenv: HubServer, adapter: Adapter
) -> None:
    (adapter.files / "stray.bin").write_bytes(b"\0")
    with pytest.raises(FtctlError) as info:
        publish(adapter)
    assert str(info.value) == (
        f"{adapter.files}: not the files the manifest records: stray.bin is not in the manifest; "
        "publish the adapter directory the manifest was signed for"
    )
    (adapter.files / "stray.bin").unlink()
    (adapter.files / "adapter_config.json").write_bytes(b'{"r": 64}\n')  # changed after signing
    with pytest.raises(FtctlError, match=r"adapter_config.json differ from the manifest's digests"):
        publish(adapter)
    assert commits(hubenv.state) == 0 and hubenv.state.models[REPO].tags == {}


def test_an_adapter_with_its_own_readme_keeps_it(hubenv: HubServer, tmp_path: Path) -> None:
    own = make_adapter(tmp_path / "own", {"README.md": b"# mine\n", "w.safetensors": b"\0w"})
    publish(own)
    assert hubenv.state.commit_files(REPO)["README.md"] == b"# mine\n"


def test_publish_prints_nothing(
    hubenv: HubServer, adapter: Adapter, capfd: pytest.CaptureFixture[str]
) -> None:
    publish(adapter)
    assert capfd.readouterr() == ("", "")  # no progress bars, no retry warnings of the library
