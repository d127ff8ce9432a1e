"""apply without training: a finished run directory (as a killed apply leaves one) is recorded and
published; restore, republish and retire; saved plans; the closing summary.

The trainings themselves are in test_apply_training.py (slow).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.conftest import PLAN_RECIPE, write
from tests.conftest import ScenarioWorkspace as Workspace
from tests.rundirs import finished_run


def fingerprint(ws: Workspace, name: str) -> str:
    change = next(c for c in ws.plan()["changes"] if c["recipe"] == name)
    return str(change["fingerprint"])


def trained(ws: Workspace, name: str, weights: str = "weights") -> Path:
    """What a killed apply leaves after training: a finished run in .ftctl/runs/<fp>/."""
    fp = fingerprint(ws, name).removeprefix("sha256:")
    return finished_run(ws.root, ws.root / ".ftctl" / "runs" / fp, name, weights=weights)


def digests(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def manifests(ws: Workspace, name: str) -> list[Path]:
    return sorted((ws.root / "manifests" / name).glob("*.intoto.json"))


def test_a_finished_run_is_recorded_and_published(ws: Workspace) -> None:
    run = trained(ws, "alpha")
    result = ws.ftctl("apply", "--auto-approve")
    assert result.code == 0, result.err
    [manifest] = manifests(ws, "alpha")
    assert result.out.strip() == manifest.relative_to(ws.root).as_posix()
    assert "alpha: trained in" in result.err
    assert "Apply complete: 1 trained, 0 restored" in result.err
    fp = fingerprint(ws, "alpha").removeprefix("sha256:")
    published = ws.root / "registry" / "alpha" / fp
    assert (published / "adapter_model.safetensors").read_bytes() == (
        run / "adapter" / "adapter_model.safetensors"
    ).read_bytes()
    assert (published / ".ftctl" / "provenance.intoto.json").is_file()
    assert "base_model_relation: adapter" in (published / "README.md").read_text()
    verified = ws.ftctl("verify", str(manifest), "--artifacts", str(published))
    assert verified.code == 0, verified.out + verified.err
    ws.commit()
    assert [c["action"] for c in ws.plan()["changes"]] == ["no-op"]
    again = ws.ftctl("apply", "--auto-approve")
    assert again.code == 0 and "No changes" in again.err and again.out == ""
    assert len(manifests(ws, "alpha")) == 1


def test_apply_asks_and_refuses_without_a_terminal(ws: Workspace) -> None:
    trained(ws, "alpha")
    result = ws.ftctl("apply")
    assert result.code == 1
    assert "there is no terminal to ask on" in result.err
    assert not (ws.root / "manifests").exists()


def test_the_signing_key_must_be_trusted(ws: Workspace, tmp_path: Path) -> None:
    trained(ws, "alpha")
    (ws.root / "keys" / "ci.pub").unlink()
    result = ws.ftctl("apply", "--auto-approve")
    assert (
        result.code == 1
        and "the signing key (FTCTL_SIGNING_KEY) is not one of the keys" in result.err
    )


def test_a_rename_restores_instead_of_training(ws: Workspace) -> None:
    trained(ws, "alpha")
    assert ws.ftctl("apply", "--auto-approve").code == 0
    ws.commit()
    (ws.root / "recipes" / "alpha.yaml").rename(ws.root / "recipes" / "gamma.yaml")
    (ws.root / "lockfiles" / "alpha.lock").unlink()
    ws.lock()
    plan = {c["recipe"]: c["action"] for c in ws.plan()["changes"]}
    assert plan == {"gamma": "restore", "alpha": "retire"}
    result = ws.ftctl("apply", "--auto-approve")
    assert result.code == 0, result.err
    assert "1 restored" in result.err and "1 retired" in result.err
    fp = fingerprint(ws, "gamma").removeprefix("sha256:")
    assert (
        digests(ws.root / "registry" / "gamma" / fp)["adapter_model.safetensors"]
        == digests(ws.root / "registry" / "alpha" / fp)["adapter_model.safetensors"]
    )
    [restored] = manifests(ws, "gamma")
    assert (
        ws.ftctl(
            "verify", str(restored), "--artifacts", str(ws.root / "registry" / "gamma" / fp)
        ).code
        == 0
    )
    ws.commit()
    assert {c["recipe"]: c["action"] for c in ws.plan()["changes"]} == {"gamma": "no-op"}
    assert not list((ws.root / ".ftctl" / "runs").glob("*/checkpoints"))


def test_republish_to_a_new_target(ws: Workspace) -> None:
    trained(ws, "alpha")
    assert ws.ftctl("apply", "--auto-approve").code == 0
    write(
        ws.root / "recipes" / "alpha.yaml",
        PLAN_RECIPE + "ftctl: {publish: 'file://elsewhere/alpha'}\n",
    )
    ws.lock()
    assert [c["action"] for c in ws.plan()["changes"]] == ["republish"]
    result = ws.ftctl("apply", "--auto-approve")
    assert result.code == 0, result.err
    fp = fingerprint(ws, "alpha").removeprefix("sha256:")
    assert (ws.root / "elsewhere" / "alpha" / fp / "adapter_model.safetensors").is_file()
    assert len(manifests(ws, "alpha")) == 2
    ws.commit()
    assert [c["action"] for c in ws.plan()["changes"]] == ["no-op"]


def test_a_saved_plan_is_applied_exactly_and_refused_once_stale(ws: Workspace) -> None:
    trained(ws, "alpha")
    assert ws.ftctl("plan", "--out", "plan.json").code == 0
    shown = ws.ftctl("show", "plan.json")
    assert shown.code == 0 and "Plan: 1 to train" in shown.out
    write(ws.root / "recipes" / "beta.yaml", PLAN_RECIPE.replace("lora_r: 8", "lora_r: 4"))
    stale = ws.ftctl("apply", "plan.json")
    assert stale.code == 1
    assert "plan.json is stale: recipes/beta.yaml was added" in stale.err
    (ws.root / "recipes" / "beta.yaml").unlink()
    result = ws.ftctl("apply", "plan.json")
    assert result.code == 0, result.err
    assert len(manifests(ws, "alpha")) == 1
    # Once state exists, a plan made from the empty state is stale.
    again = ws.ftctl("apply", "plan.json")
    assert again.code == 1 and "stale" in again.err


def test_a_saved_plan_with_target_is_a_usage_error(ws: Workspace) -> None:
    assert ws.ftctl("plan", "--out", "plan.json").code == 0
    result = ws.ftctl("apply", "plan.json", "--target", "alpha")
    assert result.code == 1 and "a saved plan is applied as it is" in result.err


def test_keep_going_skips_dependants_of_a_failure(ws: Workspace) -> None:
    write(ws.root / "recipes" / "beta.yaml", PLAN_RECIPE.replace("./models/tiny", "recipe:alpha"))
    write(ws.root / "recipes" / "delta.yaml", PLAN_RECIPE.replace("lora_r: 8", "lora_r: 4"))
    ws.lock()
    trained(ws, "delta")
    # alpha's run directory holds a damaged result.json: recording it fails at once.
    fp = fingerprint(ws, "alpha").removeprefix("sha256:")
    write(ws.root / ".ftctl" / "runs" / fp / "result.json", "{not json")
    result = ws.ftctl("apply", "--auto-approve", "--keep-going")
    assert result.code == 1
    assert "beta: skipped: its upstream alpha failed" in result.err
    assert "alpha: failed:" in result.err
    assert manifests(ws, "delta") and not manifests(ws, "alpha") and not manifests(ws, "beta")
    assert (
        "Apply failed: 1 trained, 0 restored, 0 published, 0 retired, 1 failed, 1 skipped"
        in result.err
    )


@pytest.mark.parametrize("point", ["prepublication", "published"])
def test_a_kill_after_training_loses_nothing(ws: Workspace, point: str) -> None:
    """A kill between training and the manifest: the next apply records the same run once."""
    run = trained(ws, "alpha")
    fp = fingerprint(ws, "alpha")
    if point == "published":  # killed after publishing, before the manifest: as the first apply got
        assert ws.ftctl("apply", "--auto-approve").code == 0
        for manifest in manifests(ws, "alpha"):
            manifest.unlink()
    result = ws.ftctl("apply", "--auto-approve")
    assert result.code == 0, result.err
    assert len(manifests(ws, "alpha")) == 1
    hexfp = fp.removeprefix("sha256:")
    assert (ws.root / "registry" / "alpha" / hexfp / "adapter_model.safetensors").read_bytes() == (
        run / "adapter" / "adapter_model.safetensors"
    ).read_bytes()


HOLD = """
import sys, time
from pathlib import Path
from ftctl.apply.statelock import state_lock
with state_lock(Path(sys.argv[1]), "apply", timeout=0):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_concurrent_apply_is_refused_and_a_dead_holder_taken_over(ws: Workspace) -> None:
    import subprocess
    import sys

    trained(ws, "alpha")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(ws.root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = ws.ftctl("apply", "--auto-approve", "--lock-timeout", "1s")
        assert refused.code == 1
        assert f"pid {holder.pid}" in refused.err and "force-unlock" in refused.err
        assert "waiting up to 1s for the state lock" in refused.err
        assert not (ws.root / "manifests").exists()
    finally:
        holder.kill()
        holder.wait()
    taken = ws.ftctl("apply", "--auto-approve")
    assert taken.code == 0, taken.err
    assert "took over the state lock" in taken.err
    assert not (ws.root / ".ftctl" / "state.lock").exists()


def test_a_failed_publish_keeps_the_run_and_the_next_apply_publishes_it(ws: Workspace) -> None:
    run = trained(ws, "alpha")
    write(ws.root / "registry", "a file where the registry folder should be\n")
    failed = ws.ftctl("apply", "--auto-approve")
    assert failed.code == 1
    assert "alpha: failed: registry" in failed.err and "is not a directory" in failed.err
    assert failed.err.count("Traceback") == 0 and not (ws.root / "manifests").exists()
    assert (run / "result.json").is_file()  # the trained run is kept
    (ws.root / "registry").unlink()
    result = ws.ftctl("apply", "--auto-approve")
    assert result.code == 0, result.err
    assert "alpha: trained in" in result.err
    assert not (run / "worker.log").exists()  # recorded without training again
    assert len(manifests(ws, "alpha")) == 1


@pytest.mark.parametrize(
    "content",
    [
        "{}",
        '{"saved_plan_format": 1, "plan": {"changes": 5}}',
        '{"saved_plan_format": 1, "plan": {"changes": [{"recipe": 5, "action": "create"}]}}',
        "\u0000" * 10,
        "[" * 100000,
    ],
)
def test_a_hostile_plan_file_is_one_line(ws: Workspace, content: str) -> None:
    write(ws.root / "plan.json", content)
    result = ws.ftctl("apply", "plan.json")
    assert result.code == 1
    assert result.err.count("\n") <= 2 and "ftctl: error:" in result.err
    assert not (ws.root / "manifests").exists()


@pytest.mark.parametrize("same_size", [False, True])
def test_a_tampered_registry_artifact_is_never_restored(ws: Workspace, same_size: bool) -> None:
    import os

    trained(ws, "alpha")
    assert ws.ftctl("apply", "--auto-approve").code == 0
    ws.commit()
    fp = fingerprint(ws, "alpha").removeprefix("sha256:")
    weights = ws.root / "registry" / "alpha" / fp / "adapter_model.safetensors"
    before = weights.stat()
    if same_size:  # what the stat cache could miss, but for ctime: same size, mtime put back
        weights.write_bytes(b"X" * before.st_size)
        os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    else:
        weights.write_text("backdoored")
    (ws.root / "recipes" / "alpha.yaml").rename(ws.root / "recipes" / "gamma.yaml")
    (ws.root / "lockfiles" / "alpha.lock").unlink()
    ws.lock()
    result = ws.ftctl("apply", "--auto-approve")
    assert result.code == 1
    assert "adapter_model.safetensors differs from the recorded digest" in result.err
    assert not manifests(ws, "gamma")
    assert not (ws.root / "registry" / "gamma").exists()


def test_a_kill_during_publishing_or_restore_leaves_nothing_half_done(ws: Workspace) -> None:
    from ftctl.registries.tree import TEMP_PREFIX

    trained(ws, "alpha")
    staging = ws.root / "registry" / "alpha" / f"{TEMP_PREFIX}killed"  # a publish killed midway
    write(staging / "adapter_model.safetensors", "half of the weights")
    assert ws.ftctl("apply", "--auto-approve").code == 0
    assert not staging.exists() and len(manifests(ws, "alpha")) == 1
    ws.commit()
    (ws.root / "recipes" / "alpha.yaml").rename(ws.root / "recipes" / "gamma.yaml")
    (ws.root / "lockfiles" / "alpha.lock").unlink()
    ws.lock()
    fp = fingerprint(ws, "gamma").removeprefix("sha256:")
    partial = ws.root / ".ftctl" / "runs" / fp / "restored"  # a restore killed while fetching
    write(partial / "adapter_model.safetensors", "half")
    result = ws.ftctl("apply", "--auto-approve")
    assert result.code == 0, result.err
    [restored] = manifests(ws, "gamma")
    assert ws.ftctl("verify", str(restored), "--artifacts", str(partial)).code == 0
    assert (
        ws.ftctl(
            "verify", str(restored), "--artifacts", str(ws.root / "registry" / "gamma" / fp)
        ).code
        == 0
    )


def test_replace_trains_again_instead_of_recording_the_old_run_twice(ws: Workspace) -> None:
    trained(ws, "alpha")
    assert ws.ftctl("apply", "--auto-approve").code == 0
    ws.commit()
    result = ws.ftctl("apply", "--auto-approve", "--replace", "alpha")
    # The recorded run is not reused: the worker starts (and fails here, as this workspace's
    # model is a stub), so --replace can never re-record the old run as a new one.
    assert result.code == 1
    assert "alpha: failed: training alpha failed" in result.err
    assert len(manifests(ws, "alpha")) == 1
