"""Training benchmark: the ftctl worker against a bare TRL script doing the same tiny SFT.

    python bench/train.py [--runs 5]

(a) Whole-process wall time of `ftctl train tiny-alpaca` next to a plain TRL
    script (same tiny model, same alpaca rows, prompt masked, LoRA r=8 on
    q/k/v/o, batch 8, 2 epochs, lr 0.002, seed 42, fp32 without gradient
    checkpointing as the recipe says: trl's SFTConfig defaults to bf16 and
    gradient checkpointing, which the script turns off), median of --runs,
    interleaved. Target: at most 1.10x.
(b) Packing against no packing on short samples: the same recipe with
    sample_packing true and false (800 completion rows of 2 to ~150 tokens,
    median ~20, sequence_len 256, batch 8), tokens of the rows trained per
    second of training (result.json), median of --runs. Target: at least 2x.
(c) The GPU figures need a GPU machine; none was lent to the session that
    wrote this (see the issue note).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BARE_TRL = r"""
import json, sys
import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
from trl import SFTConfig, SFTTrainer

set_seed(42)
tok = AutoTokenizer.from_pretrained("models/tiny-llama")
template = ("Below is an instruction that describes a task{ctx}. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\n{instruction}\n\n{input}### Response:\n")
rows = []
for line in open("data/alpaca-tiny.jsonl"):
    r = json.loads(line)
    ctx = ", paired with an input that provides further context" if r["input"] else ""
    extra = f"### Input:\n{r['input']}\n\n" if r["input"] else ""
    rows.append({"prompt": template.format(ctx=ctx, instruction=r["instruction"], input=extra),
                 "completion": r["output"] + tok.eos_token})
model = AutoModelForCausalLM.from_pretrained("models/tiny-llama", dtype=torch.float32)
args = SFTConfig(output_dir=sys.argv[1], per_device_train_batch_size=8, num_train_epochs=2, learning_rate=0.002,
                 lr_scheduler_type="constant", optim="adamw_torch", logging_steps=1, save_strategy="no", report_to=[],
                 seed=42, use_cpu=True, max_length=256, disable_tqdm=True, dataloader_num_workers=0,
                 bf16=False, gradient_checkpointing=False)  # trl defaults both to True; the recipe has neither
lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                  task_type="CAUSAL_LM")
trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok, peft_config=lora)
trainer.train()
trainer.model.save_pretrained(sys.argv[1] + "/adapter")
"""


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "dvc", "pull", "-q"], cwd=REPO, check=True)
    ours, bare = [], []
    with tempfile.TemporaryDirectory(prefix="ftctl-bench-") as name:
        tmp = Path(name)
        script = tmp / "bare_trl.py"
        script.write_text(BARE_TRL)
        for i in range(args.runs):
            ours.append(
                timed(
                    [
                        sys.executable,
                        "-m",
                        "ftctl",
                        "train",
                        "tiny-alpaca",
                        "--output",
                        str(tmp / f"ftctl-{i}"),
                    ]
                )
            )
            bare.append(timed([sys.executable, str(script), str(tmp / f"bare-{i}")]))
        mine, base = statistics.median(ours), statistics.median(bare)
        print(f"(a) tiny SFT, whole process, median of {args.runs} interleaved runs")
        print(f"    bare TRL script (baseline)  {base:6.2f} s")
        print(
            f"    ftctl train tiny-alpaca     {mine:6.2f} s   {mine / base:5.2f}x  target <= 1.10x: "
            f"{'met' if mine / base <= 1.10 else 'MISSED'}"
        )
        packing(tmp, args.runs)
    return 0


SHORT_RECIPE = """\
base_model: ./models/tiny-llama
adapter: lora
lora_target_modules: [q_proj, k_proj, v_proj, o_proj]
datasets:
  - path: data/zz-bench-short.jsonl
    type: completion
sequence_len: 256
sample_packing: {packed}
micro_batch_size: 8
gradient_accumulation_steps: 1
num_epochs: 1
optimizer: adamw_torch
lr_scheduler: constant
learning_rate: 0.002
seed: 42
"""


def short_rows(count: int = 800) -> str:
    """Short texts of very different lengths (2 to ~150 tokens, median ~20): what packing is for."""
    import random

    rng = random.Random(0)
    rows = [
        json.loads(line) for line in (REPO / "data" / "alpaca-tiny.jsonl").read_text().splitlines()
    ]
    words = " ".join(f"{r['instruction']} {r['output']}" for r in rows).split()
    out = []
    for _ in range(count):
        n = max(2, int(rng.lognormvariate(2.3, 0.8)))
        start = rng.randrange(len(words) - n)
        out.append(json.dumps({"text": " ".join(words[start : start + n])}) + "\n")
    return "".join(out)


def packing(tmp: Path, runs: int) -> None:
    data = REPO / "data" / "zz-bench-short.jsonl"
    data.write_text(short_rows())
    rates: dict[bool, list[float]] = {False: [], True: []}
    steps: dict[bool, int] = {}
    try:
        for i in range(runs):
            for packed in (False, True):
                name = f"zz-bench-packing-{'on' if packed else 'off'}"
                path = REPO / "recipes" / f"{name}.yaml"
                path.write_text(SHORT_RECIPE.format(packed=str(packed).lower()))
                try:
                    out = tmp / f"{name}-{i}"
                    subprocess.run(
                        [sys.executable, "-m", "ftctl", "train", name, "--output", str(out)],
                        cwd=REPO,
                        check=True,
                        capture_output=True,
                    )
                finally:
                    path.unlink()
                result = json.loads((out / "result.json").read_text())
                rates[packed].append(result["tokens_per_second"])
                steps[packed] = result["steps"]
    finally:
        data.unlink()
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    print(
        f"(b) packing, 800 short completion rows (2-150 tokens), sequence_len 256, batch 8, median of {runs}"
    )
    print(f"    no packing (baseline)  {off:9.0f} tokens/s  ({steps[False]} steps)")
    print(
        f"    sample_packing         {on:9.0f} tokens/s  ({steps[True]} steps)   {on / off:5.2f}x  "
        f"target >= 2x: {'met' if on / off >= 2 else 'MISSED'}"
    )


if __name__ == "__main__":
    sys.exit(main())
