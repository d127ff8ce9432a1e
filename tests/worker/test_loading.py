"""Model loading choices, packing, added tokens and multi-GPU launch: the parts a CPU can check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ftctl.errors import FtctlError
from ftctl.launch import gpu_count, worker_command
from ftctl.recipe.load import load_recipe
from ftctl.worker.model import add_tokens, check_new_tokens_train, model_kwargs
from tests.conftest import REPO, RunCLI, write

pytest.importorskip("torch", reason="the worker tests need the train extra")

TINY = REPO / "models" / "tiny-llama"


def recipe_with(extra: str, tmp_path: Path) -> Any:
    text = (REPO / "recipes" / "tiny-alpaca.yaml").read_text().replace(
        "val_set_size: 0\n", ""
    ) + extra
    return load_recipe(write(tmp_path / "r.yaml", text)).recipe


def test_model_kwargs(tmp_path: Path) -> None:
    assert model_kwargs(recipe_with("", tmp_path), cuda=False) == {
        "dtype": "float32",
        "trust_remote_code": False,
    }
    assert (
        model_kwargs(recipe_with("sdp_attention: true\n", tmp_path), cuda=True)[
            "attn_implementation"
        ]
        == "sdpa"
    )
    flash = recipe_with("flash_attention: true\n", tmp_path)
    assert (
        model_kwargs(flash, cuda=True, flash_installed=True)["attn_implementation"]
        == "flash_attention_2"
    )
    with pytest.raises(FtctlError, match="flash-attn package is not installed"):
        model_kwargs(flash, cuda=True, flash_installed=False)
    qlora = recipe_with("load_in_4bit: true\nbnb_4bit_use_double_quant: true\n", tmp_path / "q")
    assert model_kwargs(qlora, cuda=True)["quantization"] == {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True,
        "bnb_4bit_compute_dtype": "bfloat16",
    }


def test_distributed_training_arguments(tmp_path: Path) -> None:
    from ftctl.worker.trainer import training_arguments

    deepspeed = recipe_with("deepspeed: deepspeed_configs/zero3.json\n", tmp_path / "ds")
    assert (
        training_arguments(
            deepspeed, True, tmp_path, bf16_supported=True, has_eval=False, root=Path("/ws")
        )["deepspeed"]
        == "/ws/deepspeed_configs/zero3.json"
    )
    recipe = recipe_with(
        "fsdp: [full_shard, auto_wrap]\nfsdp_config: {fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer}\n"
        "cosine_min_lr_ratio: 0.1\nadam_beta2: 0.95\n",
        tmp_path,
    ).model_copy(update={"lr_scheduler": "cosine"})  # tiny-alpaca's is constant
    args = training_arguments(
        recipe, True, tmp_path, bf16_supported=True, has_eval=False, root=Path("/ws")
    )
    assert "deepspeed" not in args
    assert args["fsdp"] == "full_shard auto_wrap"
    assert args["fsdp_config"] == {
        "version": 1,
        "transformer_layer_cls_to_wrap": "LlamaDecoderLayer",
    }
    assert args["lr_scheduler_type"] == "cosine_with_min_lr" and args["lr_scheduler_kwargs"] == {
        "min_lr_rate": 0.1
    }
    assert args["adam_beta2"] == 0.95 and "adam_beta1" not in args


def test_checkpoint_cadence_and_best_model(tmp_path: Path) -> None:
    from ftctl.worker.trainer import training_arguments

    plain = training_arguments(
        recipe_with("", tmp_path), False, tmp_path, bf16_supported=False, has_eval=False
    )
    assert plain["save_strategy"] == "no" and "load_best_model_at_end" not in plain
    recipe = recipe_with(
        "val_set_size: 0.1\neval_steps: 2\nsave_steps: 4\nearly_stopping_patience: 2\n", tmp_path
    )
    args = training_arguments(recipe, False, tmp_path, bf16_supported=False, has_eval=True)
    assert (args["eval_strategy"], args["eval_steps"]) == ("steps", 2)
    assert (args["save_strategy"], args["save_steps"]) == ("steps", 4)
    assert args["load_best_model_at_end"] is True and args["metric_for_best_model"] == "eval_loss"
    per_epoch = training_arguments(
        recipe_with("saves_per_epoch: 4\n", tmp_path),
        False,
        tmp_path,
        bf16_supported=False,
        has_eval=False,
    )
    assert (per_epoch["save_strategy"], per_epoch["save_steps"]) == ("steps", pytest.approx(1 / 8))


def test_multi_gpu_launch_through_accelerate(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    assert worker_command(spec, 1)[1:] == ["-P", "-m", "ftctl.worker", str(spec)]
    assert worker_command(spec, 4)[1:] == [
        "-P",
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        "4",
        "--module",
        "ftctl.worker",
        str(spec),
    ]
    assert gpu_count({"CUDA_VISIBLE_DEVICES": "0,1"}) == 2
    assert gpu_count({"CUDA_VISIBLE_DEVICES": ""}) == 0
    assert gpu_count({"CUDA_VISIBLE_DEVICES": "-1"}) == 0


def test_packed_rows_train_each_sample_alone(tmp_path: Path) -> None:
    """A packed row gives every sample the logits it has on its own: no attention across samples."""
    import torch

    from ftctl.worker.model import load_model
    from ftctl.worker.trainer import packed_rows_collator

    model = load_model(
        str(TINY), None, recipe_with("sample_packing: true\n", tmp_path), cuda=False
    ).eval()
    samples = [[5, 17, 42, 9, 80], [7, 7, 120, 3], [33, 64, 11]]
    packed = {
        "input_ids": [samples[0] + samples[1], samples[2]],
        "labels": [samples[0] + samples[1], samples[2]],
        "seq_lengths": [[5, 4], [3]],
    }
    rows = [{k: v[i] for k, v in packed.items()} for i in range(2)]
    batch = packed_rows_collator(pad_token_id=3, pad_to_multiple_of=16)(rows)
    assert "attention_mask" not in batch and batch["input_ids"].shape == (2, 16)
    assert batch["position_ids"][0, :9].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3]
    assert (batch["labels"][1, 3:] == -100).all()  # padding never trains
    with torch.no_grad():
        together = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        alone = [model(input_ids=torch.tensor([s])).logits[0] for s in samples]
        cached = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=True
        ).logits
    assert not torch.allclose(
        cached[0, 5:9], alone[1], atol=1e-3
    )  # why load_model turns the cache off
    torch.testing.assert_close(together[0, :5], alone[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together[0, 5:9], alone[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together[1, :3], alone[2], atol=1e-5, rtol=1e-5)


def test_added_tokens_grow_the_vocabulary(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(TINY)
    model: Any = AutoModelForCausalLM.from_pretrained(TINY, dtype=torch.float32)
    before = len(tokenizer)
    recipe = recipe_with("tokens: ['<tool>', '</tool>']\n", tmp_path)
    assert add_tokens(recipe, tokenizer, model) is True
    assert (
        len(tokenizer) == before + 2 and model.get_input_embeddings().weight.shape[0] == before + 2
    )
    with pytest.raises(FtctlError, match="lora_modules_to_save: \\[embed_tokens, lm_head\\]"):
        check_new_tokens_train(recipe, tokens_added=True)
    same = recipe_with(
        "special_tokens: {eos_token: '" + str(tokenizer.eos_token) + "'}\n", tmp_path / "s"
    )
    assert add_tokens(same, tokenizer, model) is False  # already the tokenizer's: nothing changes


@pytest.mark.slow
def test_packing_tokens_and_early_stopping_train(
    tmp_path: Path, run_cli: RunCLI, pulled_data: Path
) -> None:
    """One short real training with sample packing, two added tokens and early stopping on a validation split."""
    extra = (
        "sample_packing: true\ntokens: ['<tool>', '</tool>']\nlora_modules_to_save: [embed_tokens, lm_head]\n"
        "val_set_size: 0.2\neval_steps: 1\nsave_steps: 1\nearly_stopping_patience: 1\nsave_total_limit: 1\n"
    )
    text = (REPO / "recipes" / "tiny-alpaca.yaml").read_text().replace(
        "val_set_size: 0\n", ""
    ) + extra
    text = text.replace("./models/tiny-llama", str(TINY)).replace(
        "data/alpaca-tiny.jsonl", str(pulled_data / "alpaca-tiny.jsonl")
    )
    (tmp_path / "ws" / ".git").mkdir(parents=True)
    allow = f"allow_paths: ['{REPO / 'models'}', '{REPO / 'data'}']\n"  # the tiny model and data
    write(tmp_path / "ws" / "ftctl.yaml", allow)
    write(tmp_path / "ws" / "recipes" / "packed.yaml", text)
    result = run_cli("train", "packed", "--output", str(tmp_path / "run"), cwd=tmp_path / "ws")
    assert result.code == 0, result.err
    run = tmp_path / "run"
    summary = json.loads((run / "result.json").read_text())
    assert summary["packed"] is True and summary["tokens_per_second"] > 0
    assert "eval_loss" in summary["metrics"]
    assert (
        run / "adapter" / "tokenizer.json"
    ).is_file()  # the tokenizer changed: it ships with the adapter
    tokenizer = json.loads((run / "adapter" / "tokenizer.json").read_text())
    assert {"<tool>", "</tool>"} <= {t["content"] for t in tokenizer["added_tokens"]}
    config = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(TINY)
    assert set(config["modules_to_save"]) >= {"embed_tokens", "lm_head"}


def test_a_broken_model_directory_is_one_line(tmp_path: Path) -> None:
    import shutil

    from ftctl.worker.model import load_model, load_tokenizer

    recipe = recipe_with("", tmp_path)
    bad_json = shutil.copytree(TINY, tmp_path / "bad-json")
    (bad_json / "config.json").write_text("{not json")
    with pytest.raises(
        FtctlError, match=r"^base_model m: the tokenizer does not load from .*bad-json \("
    ):
        load_tokenizer(str(bad_json), None, recipe, "base_model m")
    cut = shutil.copytree(TINY, tmp_path / "cut")
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a download cut off
    with pytest.raises(
        FtctlError, match=r"^base_model m: the model does not load from .*cut \("
    ) as info:
        load_model(str(cut), None, recipe, False, "base_model m")
    assert "\n" not in str(info.value)
