"""Records that cannot lie: a manifest says only what its run vouches for, and is written once.

Each sequence that used to produce a valid, trusted manifest for something that
never happened now fails with one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PLAN_RECIPE, write
from tests.conftest import ScenarioWorkspace as Workspace
from tests.rundirs import finished_run


def attest(ws: Workspace, run: Path, recipe: str, *extra: str) -> tuple[int, str, str]:
    result = ws.ftctl("attest", str(run), "--recipe", recipe, *extra)
    return result.code, result.out, result.err


def test_a_run_of_one_recipe_is_not_attested_as_another(ws: Workspace) -> None:
    write(ws.root / "recipes" / "beta.yaml", PLAN_RECIPE.replace("lora_r: 8", "lora_r: 4"))
    ws.lock()
    run = finished_run(ws.root, ws.root / ".runs" / "alpha", "alpha")
    code, _, err = attest(ws, run, "beta")
    assert code == 1
    assert err.splitlines() == [
        f"ftctl: error: {run}/adapter/adapter_config.json does not match recipe beta: r: 8 (recipe: 4); "
        "attest the run with the recipe it trained, or train it again"
    ]
    # Even with an adapter that claims beta's settings, the run's record says what it trained.
    (run / "adapter" / "adapter_config.json").write_text(
        json.dumps({"r": 4, "lora_alpha": 16, "base_model_name_or_path": "./models/tiny"})
    )
    code, _, err = attest(ws, run, "beta")
    assert code == 1 and err.splitlines() == [
        f"ftctl: error: {run} trained another training config than recipe beta locks; "
        "attest it with the recipe it trained, or train beta again"
    ]
    assert not (ws.root / "manifests" / "beta").exists()


def test_a_run_of_an_older_config_is_not_attested_after_a_relock(ws: Workspace) -> None:
    run = finished_run(ws.root, ws.root / ".runs" / "r8", "alpha")  # trained with lora_r: 8
    recipe = ws.root / "recipes" / "alpha.yaml"
    recipe.write_text(recipe.read_text().replace("lora_r: 8", "lora_r: 16"))
    ws.lock()
    code, _, err = attest(ws, run, "alpha")
    assert code == 1
    assert "adapter_config.json does not match recipe alpha: r: 8 (recipe: 16)" in err
    assert err.count("\n") == 1


def test_inputs_other_than_the_locked_ones_are_refused(ws: Workspace) -> None:
    run = finished_run(ws.root, ws.root / ".runs" / "a", "alpha")
    result = json.loads((run / "result.json").read_text())
    result["trained"]["inputs"]["datasets[0]"] = {"source": "local", "digest": "sha256:" + "0" * 64}
    (run / "result.json").write_text(json.dumps(result))
    code, _, err = attest(ws, run, "alpha")
    assert code == 1 and err.splitlines() == [
        f"ftctl: error: {run} trained other inputs than the lock pins: datasets[0]; "
        "train the run again from the current lock"
    ]


def test_a_run_trained_elsewhere_needs_external_and_says_so_everywhere(ws: Workspace) -> None:
    run = finished_run(ws.root, ws.root / ".runs" / "elsewhere", "alpha", external=True)
    code, _, err = attest(ws, run, "alpha")
    assert code == 1 and err.splitlines() == [
        f"ftctl: error: {run}/result.json records no inputs that ftctl verified (a run trained "
        "outside ftctl?); attest it with --external: the manifest then says its inputs were not verified"
    ]
    code, out, err = attest(ws, run, "alpha", "--external")
    assert code == 0, err
    ws.commit()
    manifest = ws.root / out.strip()
    statement = json.loads(
        __import__("base64").b64decode(json.loads(manifest.read_bytes())["payload"])
    )
    assert (
        statement["predicate"]["runDetails"]["builder"]["id"]
        == "https://ftctl.dev/builders/external"
    )
    assert "external" in ws.ftctl("log", "alpha").out
    assert "external" in ws.ftctl("audit").out
    plan = ws.plan()
    assert plan["changes"][0]["before"]["external"] is True


def test_external_is_refused_for_a_run_ftctl_verified(ws: Workspace) -> None:
    run = finished_run(ws.root, ws.root / ".runs" / "a", "alpha")
    code, _, err = attest(ws, run, "alpha", "--external")
    assert code == 1 and "was trained by ftctl from a lock; it is not external" in err


def test_a_run_is_recorded_once(ws: Workspace) -> None:
    run = finished_run(ws.root, ws.root / ".runs" / "a", "alpha")
    code, out, _ = attest(ws, run, "alpha")
    assert code == 0
    manifest = ws.root / out.strip()
    before = manifest.read_bytes()
    again = attest(ws, run, "alpha")  # the same bytes: nothing to do
    assert again[0] == 0 and again[1] == out
    ws.commit()  # a new commit changes the statement: a second record of one run is refused
    code, _, err = attest(ws, run, "alpha")
    assert code == 1 and "this run is already recorded in manifests/alpha/" in err
    assert manifest.read_bytes() == before
    assert len(list((ws.root / "manifests" / "alpha").iterdir())) == 1


def test_two_runs_finished_the_same_second_both_record_and_order_stably(ws: Workspace) -> None:
    first = finished_run(ws.root, ws.root / ".runs" / "a", "alpha", minute=3, weights="a")
    second = finished_run(ws.root, ws.root / ".runs" / "b", "alpha", minute=3, weights="b")
    paths = [ws.root / attest(ws, run, "alpha")[1].strip() for run in (first, second)]
    assert paths[0] != paths[1] and all(p.exists() for p in paths)
    ws.commit()
    log = ws.ftctl("log", "alpha").out.splitlines()
    assert log == ws.ftctl("log", "alpha").out.splitlines() and len(log) == 2


@pytest.mark.slow
def test_train_refuses_a_dvc_tracked_dataset_that_differs_from_its_record(
    ws: Workspace, tmp_path: Path
) -> None:
    import os

    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=ws.root, check=True, env=env)
    subprocess.run(["git", "rm", "-q", "--cached", "data/train.jsonl"], cwd=ws.root, check=True)
    subprocess.run(
        [sys.executable, "-m", "dvc", "add", "-q", "data/train.jsonl"],
        cwd=ws.root,
        check=True,
        env=env,
    )
    ws.lock()
    data = ws.root / "data" / "train.jsonl"
    clean = data.read_text()
    data.write_text(clean.replace('"a"', '"dirty"'))
    result = subprocess.run(
        [sys.executable, "-m", "ftctl", "train", "alpha", "--output", str(tmp_path / "run")],
        cwd=ws.root, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(
        "ftctl: error: recipe alpha: datasets[0].path: data/train.jsonl differs from what DVC recorded"
    )
    assert not (tmp_path / "run").exists()
