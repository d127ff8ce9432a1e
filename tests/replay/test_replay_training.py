"""Replay end to end: apply trains the tiny recipe, bundle it, replay it offline: bitwise on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trainws import ONE_EPOCH, ftctl, make_workspace

pytest.importorskip("torch", reason="training needs the train extra")


@pytest.mark.slow
def test_apply_bundle_replay_is_bitwise(tmp_path: Path) -> None:
    from ftctl.provenance.keys import load_trusted
    from ftctl.replay.record import verify_record

    root = tmp_path / "ws"
    env = make_workspace(root, tmp_path / "home", ONE_EPOCH)
    ftctl(root, env, "apply", "--auto-approve")
    bundle = tmp_path / "tiny.tar"
    made = ftctl(root, env, "bundle", "tiny-alpaca", "-o", str(bundle))
    assert "base model" in made.stderr and "datasets" in made.stderr
    replayed = ftctl(root, env, "replay", str(bundle), "--offline")
    assert "tiny-alpaca: bitwise" in replayed.stderr, replayed.stderr
    [record] = (root / "manifests" / "tiny-alpaca" / "replays").glob("*.replay.json")
    assert replayed.stdout.strip() == record.relative_to(root).as_posix()
    statement = verify_record(record, load_trusted(sorted((root / "keys").glob("*.pub"))))
    assert statement.predicate.verdict == "bitwise"
    [manifest] = (root / "manifests" / "tiny-alpaca").glob("*.intoto.json")
    assert statement.subject[0].name == manifest.relative_to(root).as_posix()
    assert made.stdout.strip() == str(bundle)  # stdout carries only the bundle's path
    # plan ignores the record: nothing to do
    plan = ftctl(root, env, "plan")
    assert "No changes" in plan.stderr + plan.stdout
