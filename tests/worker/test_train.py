"""The training worker on the CPU: refusals before loading, a real tiny training, reproducibility."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ftctl.errors import INTERRUPTED, FtctlError
from ftctl.launch import Worker, default_output, run_worker
from ftctl.recipe.load import load_recipe
from ftctl.recipe.model import Recipe
from ftctl.worker.preflight import check_hardware
from tests.conftest import REPO, RunCLI, write

pytest.importorskip("torch", reason="the worker tests need the train extra")

# A workspace in a temp dir reads the repository's tiny model and data through absolute paths.
ALLOW_REPO = f"allow_paths: ['{REPO / 'models'}', '{REPO / 'data'}']\n"


def recipe_with(extra: str, tmp_path: Path) -> Recipe:
    # val_set_size: 0 is the default; dropping it lets a test set it.
    text = (REPO / "recipes" / "tiny-alpaca.yaml").read_text().replace(
        "val_set_size: 0\n", ""
    ) + extra
    return load_recipe(write(tmp_path / "r.yaml", text)).recipe


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "load_in_4bit: true\n",
            "load_in_4bit: QLoRA (bitsandbytes 4-bit) needs a CUDA GPU, and this machine has none",
        ),
        ("flash_attention: true\n", "flash_attention: flash attention needs a CUDA GPU"),
        ("deepspeed: ds.json\n", "deepspeed: DeepSpeed needs a CUDA GPU"),
        ("fp16: true\n", "bf16/fp16 training needs a GPU here"),
    ],
)
def test_cpu_refusals_before_loading(tmp_path: Path, extra: str, message: str) -> None:
    recipe = recipe_with(extra, tmp_path)
    with pytest.raises(FtctlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_hardware(recipe, cuda=False)
    check_hardware(recipe, cuda=True)  # on a GPU host it would proceed


@pytest.mark.slow
def test_qlora_recipe_through_the_cli_is_one_line(
    tmp_path: Path, run_cli: RunCLI, pulled_data: Path
) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path / "ftctl.yaml", ALLOW_REPO)
    text = (
        (REPO / "recipes" / "tiny-alpaca.yaml")
        .read_text()
        .replace("adapter: lora", "adapter: qlora\nload_in_4bit: true")
        .replace("./models/tiny-llama", str(REPO / "models" / "tiny-llama"))
        .replace("data/alpaca-tiny.jsonl", str(pulled_data / "alpaca-tiny.jsonl"))
    )
    write(tmp_path / "recipes" / "q.yaml", text)
    proc = subprocess.run(
        [sys.executable, "-m", "ftctl", "train", "q", "--output", str(tmp_path / "run")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("ftctl: error: load_in_4bit: QLoRA (bitsandbytes 4-bit) needs a CUDA GPU")
    )


def digests(run: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((run / "adapter").iterdir())
    }


@pytest.mark.slow
def test_train_is_real_and_reproducible(tmp_path: Path, run_cli: RunCLI, pulled_data: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    for out in (first, second):
        result = run_cli("train", "tiny-alpaca", "--output", str(out), cwd=REPO)
        assert result.code == 0, result.err
    assert sorted(p.name for p in first.iterdir()) == [
        "adapter",
        "environment.json",
        "result.json",
        "train-log.jsonl",
    ]
    log = [json.loads(line) for line in (first / "train-log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"] - 0.3  # the loss goes down
    assert digests(first) == digests(second)  # bitwise-identical adapter files
    config = json.loads((first / "adapter" / "adapter_config.json").read_text())
    assert (
        config["base_model_name_or_path"] == "./models/tiny-llama"
    )  # the reference, not a temp path
    result = json.loads((first / "result.json").read_text())
    assert result["steps"] == 24 and result["determinism"]["seed"] == 42
    assert (
        run_cli("train", "tiny-alpaca", "--output", str(first), cwd=REPO).code == 1
    )  # refuses a used run dir


PAIRS = [("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow")] * 4
PREFERENCE_DATA: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "dpo": (
        "dpo",
        [
            {"prompt": f"Opposite of {w}?", "chosen": f" {o}.", "rejected": f" {w}."}
            for w, o in PAIRS
        ],
    ),
    "chatml.intel": (
        "chatml.intel",
        [
            {"system": "Be brief.", "question": f"Opposite of {w}?", "chosen": o, "rejected": w}
            for w, o in PAIRS
        ],
    ),
    "kto": (
        "kto",
        [
            {"prompt": f"Opposite of {w}?", "completion": c, "label": good}
            for w, o in PAIRS
            for c, good in ((f" {o}.", True), (f" {w}.", False))
        ],
    ),
}


def test_preference_rows() -> None:
    from ftctl.recipe.datasets import IntelPreferenceDataset, KTODataset, PairedPreferenceDataset
    from ftctl.worker.preference import preference_row

    dpo = PairedPreferenceDataset.model_validate({"path": "p", "type": "dpo", "field_prompt": "q"})
    assert preference_row(dpo, {"q": "Hi?", "chosen": "Hello.", "rejected": "No."}, "d") == {
        "prompt": "Hi?",
        "chosen": "Hello.",
        "rejected": "No.",
    }
    intel = IntelPreferenceDataset.model_validate({"path": "p", "type": "chatml.intel"})
    row = preference_row(
        intel, {"system": "S", "question": "Q", "chosen": "C", "rejected": "R"}, "d"
    )
    assert (
        row["prompt"]
        == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    )
    assert row["chosen"] == "C<|im_end|>"
    kto = KTODataset.model_validate({"path": "p", "type": "kto"})
    assert (
        preference_row(kto, {"prompt": "P", "completion": "C", "label": 0}, "d")["label"] is False
    )
    with pytest.raises(FtctlError, match="row has no field 'rejected'"):
        preference_row(dpo, {"q": "Hi?", "chosen": "Hello."}, "datasets[0]")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rl", "data"), [("dpo", "dpo"), ("ipo", "dpo"), ("orpo", "chatml.intel"), ("kto", "kto")]
)
def test_preference_trainers_learn(tmp_path: Path, run_cli: RunCLI, rl: str, data: str) -> None:
    kind, rows = PREFERENCE_DATA[data]
    write(tmp_path / "data" / "prefs.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / ".git").mkdir()
    write(tmp_path / "ftctl.yaml", ALLOW_REPO)
    write(
        tmp_path / "recipes" / "pref.yaml",
        f"""\
base_model: {REPO / "models" / "tiny-llama"}
adapter: lora
lora_target_modules: [q_proj, v_proj]
rl: {rl}
datasets:
  - path: data/prefs.jsonl
    type: {kind}
sequence_len: 128
micro_batch_size: 4
gradient_accumulation_steps: 1
num_epochs: 3
optimizer: adamw_torch
learning_rate: 0.005
seed: 0
""",
    )
    result = run_cli("train", "pref", "--output", str(tmp_path / "run"), cwd=tmp_path)
    assert result.code == 0, result.err
    log = [
        json.loads(line) for line in (tmp_path / "run" / "train-log.jsonl").read_text().splitlines()
    ]
    assert log[-1]["loss"] < log[0]["loss"]
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()


def test_training_arguments_map_the_recipe(tmp_path: Path) -> None:
    from ftctl.worker.trainer import training_arguments

    cpu = training_arguments(
        recipe_with("", tmp_path), False, tmp_path, bf16_supported=False, has_eval=False
    )
    assert (cpu["bf16"], cpu["fp16"], cpu["tf32"], cpu["use_cpu"]) == (False, False, False, True)
    assert cpu["report_to"] == [] and cpu["eval_strategy"] == "no"
    assert cpu["per_device_train_batch_size"] == 8 and cpu["gradient_accumulation_steps"] == 1
    gpu = training_arguments(
        recipe_with(
            "bf16: auto\ntf32: true\nwarmup_ratio: 0.1\nwandb_project: p\nwandb_run_name: r\nuse_tensorboard: true\n"
            "val_set_size: 0.1\nevals_per_epoch: 4\n",
            tmp_path,
        ),
        True,
        tmp_path,
        bf16_supported=True,
        has_eval=True,
    )
    assert (gpu["bf16"], gpu["tf32"], gpu["use_cpu"]) == (True, True, False)
    assert gpu["warmup_steps"] == 0.1  # a ratio, as transformers 5 takes it
    assert gpu["report_to"] == ["wandb", "tensorboard"] and gpu["run_name"] == "r"
    assert gpu["eval_strategy"] == "steps" and gpu["eval_steps"] == pytest.approx(1 / 8)
    no_bf16 = training_arguments(
        recipe_with("bf16: auto\n", tmp_path),
        True,
        tmp_path,
        bf16_supported=False,
        has_eval=False,
    )
    assert no_bf16["bf16"] is False  # auto: only where the GPU supports it


@pytest.mark.slow
def test_the_prestarted_worker_ends_with_its_caller() -> None:
    """`ftctl train` starts the worker before reading the recipe; it never outlives a failed command."""
    with pytest.raises(RuntimeError), Worker.start() as worker:
        raise RuntimeError("an invalid recipe")
    assert worker.proc is not None and worker.proc.returncode == -9  # killed, not left importing
    quiet = subprocess.run(
        [sys.executable, "-m", "ftctl.worker", "-"], input=b"", capture_output=True, timeout=300
    )
    assert quiet.returncode == 0  # closed without a spec: nothing to train


# Stands in for the worker: writes part of a run, then exits with the code it is given.
PARTIAL_RUN = """\
import json, pathlib, sys
out = pathlib.Path(json.loads(sys.stdin.read())["output_dir"])
(out / "checkpoints").mkdir()
(out / "checkpoints" / "step-1.bin").write_text("weights")
if sys.argv[2] == "finished":
    (out / "result.json").write_text("{}")
sys.exit(int(sys.argv[1]))
"""


def stub_worker(code: int, finished: bool = False) -> Worker:
    argv = [sys.executable, "-c", PARTIAL_RUN, str(code), "finished" if finished else "partial"]
    return Worker(subprocess.Popen(argv, stdin=subprocess.PIPE))


def test_an_unfinished_run_leaves_no_run_directory(tmp_path: Path) -> None:
    loaded = load_recipe(REPO / "recipes" / "tiny-alpaca.yaml")

    def run(output: Path, worker: Worker) -> int:
        return run_worker(tmp_path, loaded, output, worker=worker)

    assert run(tmp_path / "failed", stub_worker(1)) == 1
    assert not (tmp_path / "failed").exists()  # made for the run, removed
    (tmp_path / "given").mkdir()
    assert run(tmp_path / "given", stub_worker(INTERRUPTED)) == INTERRUPTED
    assert list((tmp_path / "given").iterdir()) == []  # given empty: emptied, not removed
    assert run(tmp_path / "late", stub_worker(1, finished=True)) == 1
    assert (tmp_path / "late" / "result.json").is_file()  # a finished run is kept
    assert run(tmp_path / "ok", stub_worker(0)) == 0
    assert (tmp_path / "ok" / "checkpoints").is_dir()


def test_an_unknown_home_in_output_dir_is_a_path_in_the_workspace(
    tmp_path: Path, run_cli: RunCLI
) -> None:
    """``~nosuchuser/x`` is no home directory: read as the confinement check reads it, not a crash."""
    (tmp_path / ".git").mkdir()
    up = (REPO / "recipes" / "tiny-alpaca.yaml").read_text()
    up = up.replace("output_dir: ./outputs/tiny-alpaca", "output_dir: ~nosuchuser/x")
    write(tmp_path / "recipes" / "up.yaml", up)
    assert default_output(tmp_path, load_recipe(tmp_path / "recipes" / "up.yaml")) == (
        tmp_path / "~nosuchuser" / "x"
    )
    down = up.replace("./models/tiny-llama", "recipe:up").replace("~nosuchuser/x", "./down")
    write(tmp_path / "recipes" / "down.yaml", down)
    result = run_cli("train", "down", cwd=tmp_path)  # finds the upstream's output through it
    assert result.code == 1
    assert result.err.strip().splitlines() == [
        "ftctl: error: recipes/down.yaml: base_model recipe:up: ~nosuchuser/x/adapter does not "
        "exist; train it first: ftctl train up"
    ]


@pytest.mark.slow
def test_ctrl_c_stops_training_in_one_line(tmp_path: Path, pulled_data: Path) -> None:
    """Ctrl-C during `ftctl train`: exit 130, one line, no traceback, no run directory left."""
    (tmp_path / ".git").mkdir()
    write(tmp_path / "ftctl.yaml", ALLOW_REPO)
    text = (
        (REPO / "recipes" / "tiny-alpaca.yaml")
        .read_text()
        .replace("./models/tiny-llama", str(REPO / "models" / "tiny-llama"))
        .replace("data/alpaca-tiny.jsonl", str(pulled_data / "alpaca-tiny.jsonl"))
        .replace("num_epochs: 2", "num_epochs: 100")  # still training when the signal comes
    )
    write(tmp_path / "recipes" / "t.yaml", text)
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ftctl", "train", "t", "--output", str(run)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job has
    )
    try:
        assert proc.stderr is not None
        before = []
        for line in proc.stderr:
            before.append(line)
            if line.startswith("step "):
                break
        assert before and before[-1].startswith("step "), "".join(before)
        assert run.is_dir()
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: SIGINT to ftctl and its worker
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in "".join(before) + err
    assert [line for line in err.splitlines() if not line.startswith("step ")] == [
        "ftctl: interrupted"
    ], err
    assert out == ""
    assert not run.exists()
