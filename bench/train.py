"""Training benchmark: the ftctl worker against a bare TRL script doing the same tiny SFT.

    python bench/train.py [--runs 3]

(a) Whole-process wall time of `ftctl train tiny-alpaca` next to a plain TRL
    script (same tiny model, same alpaca rows, prompt masked, LoRA r=8 on
    q/k/v/o, batch 8, 2 epochs, lr 0.002, seed 42), median of --runs,
    interleaved. Target: at most 1.10x.
Packing (b) and the GPU figures (c) wait for packing and a GPU machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BARE_TRL = r'''
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
                 seed=42, use_cpu=True, max_length=256, disable_tqdm=True, dataloader_num_workers=0)
lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                  task_type="CAUSAL_LM")
trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok, peft_config=lora)
trainer.train()
trainer.model.save_pretrained(sys.argv[1] + "/adapter")
'''


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "dvc", "pull", "-q"], cwd=REPO, check=True)
    ours, bare = [], []
    with tempfile.TemporaryDirectory(prefix="ftctl-bench-") as name:
        tmp = Path(name)
        script = tmp / "bare_trl.py"
        script.write_text(BARE_TRL)
        for i in range(args.runs):
            ours.append(timed([sys.executable, "-m", "ftctl", "train", "tiny-alpaca", "--output", str(tmp / f"ftctl-{i}")]))
            bare.append(timed([sys.executable, str(script), str(tmp / f"bare-{i}")]))
    mine, base = statistics.median(ours), statistics.median(bare)
    print(f"(a) tiny SFT, whole process, median of {args.runs} interleaved runs")
    print(f"    bare TRL script (baseline)  {base:6.2f} s")
    print(f"    ftctl train tiny-alpaca     {mine:6.2f} s   {mine / base:5.2f}x  target <= 1.10x: "
          f"{'met' if mine / base <= 1.10 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
