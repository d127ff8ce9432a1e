"""Settings the widened schema accepts: how the worker honours each, or refuses it in one line."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ftctl.errors import FtctlError
from ftctl.recipe.load import load_recipe
from ftctl.recipe.model import Recipe
from ftctl.worker.preflight import check_hardware
from tests.conftest import REPO, RunCLI, write

pytest.importorskip("torch", reason="the worker tests need the train extra")

LIGER = "plugins: [axolotl.integrations.liger.LigerPlugin]\n"
CCE = "plugins: [axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin]\n"


def recipe_with(extra: str, tmp_path: Path) -> Recipe:
    # The base recipe's lines for keys the test sets are left out (a key may appear once).
    keys = set(re.findall(r"^(\w+):", extra, re.MULTILINE)) | {"val_set_size"}
    base = (REPO / "recipes" / "tiny-alpaca.yaml").read_text().splitlines(keepends=True)
    text = "".join(line for line in base if line.split(":")[0] not in keys) + extra
    loaded = load_recipe(write(tmp_path / "r.yaml", text))
    assert loaded.recipe is not None, loaded
    from ftctl.recipe.derived import derive

    return derive(loaded.recipe)


def arguments(recipe: Recipe, cuda: bool = True, **options: Any) -> dict[str, Any]:
    from ftctl.worker.trainer import training_arguments

    return training_arguments(
        recipe, cuda, Path("/out"), bf16_supported=True, has_eval=False, **options
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("attn_implementation: flash_attention_2\n", "flash_attention_2 needs a CUDA GPU"),
        ("attn_implementation: flash_attention_3\n", "flash_attention_3 needs a CUDA GPU"),
        ("attn_implementation: flex_attention\n", "flex_attention needs a CUDA GPU"),
        ("flex_attention: true\n", "flex_attention needs a CUDA GPU"),
        (LIGER + "liger_rms_norm: true\n", "Liger kernels (Triton) need a CUDA GPU"),
        ("liger_fused_linear_cross_entropy: true\n", "Liger kernels"),
        (CCE, "cut_cross_entropy: cut cross-entropy (Triton kernels) needs a CUDA GPU"),
        ("cut_cross_entropy: true\n", "cut_cross_entropy: cut cross-entropy"),
        ("optimizer: adamw_torch_4bit\n", "adamw_torch_4bit is a torchao low-bit optimizer"),
        ("optimizer: adamw_torch_8bit\n", "adamw_torch_8bit is a torchao low-bit optimizer"),
        ("fsdp_config: {fsdp_version: 2}\n", "fsdp_config: FSDP needs a CUDA GPU"),
        ("gpu_memory_limit: 20GiB\n", "gpu_memory_limit: a GPU memory limit needs a CUDA GPU"),
    ],
)
def test_gpu_only_settings_refused_on_the_cpu(tmp_path: Path, extra: str, message: str) -> None:
    recipe = recipe_with(extra, tmp_path)
    with pytest.raises(FtctlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_hardware(recipe, cuda=False)
    check_hardware(recipe, cuda=True)  # a GPU host goes on to load it


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "chat_template_kwargs: {tokenize: true}\n",
            "ftctl sets this parameter of the chat template",
        ),
        (
            "liger_fused_linear_cross_entropy: true\ncut_cross_entropy: true\n",
            "liger_fused_linear_cross_entropy and cut_cross_entropy each replace the loss",
        ),
        (
            "attn_implementation: eager\nflash_attention: true\n",
            "eager contradicts flash_attention: true",
        ),
        ("tokenizer_config: ./elsewhere\n", "ftctl loads the model and tokenizer from base_model"),
        ("save_safetensors: false\n", "saves adapters and models as safetensors only"),
        ("unfrozen_parameters: ['lm_head.*']\n", "selects weights for a full fine-tune"),
    ],
)
def test_what_no_machine_trains_is_a_validate_error(
    tmp_path: Path, extra: str, message: str
) -> None:
    """validate and the worker agree: these fail before anything is trained, with their line."""
    with pytest.raises(FtctlError, match=message) as info:
        recipe_with(extra, tmp_path)
    assert info.value.problems[0].location is not None


FSDP_REFUSED = [
    (
        "fsdp_config: {fsdp_version: 2, fsdp_use_orig_params: true}\n",
        "fsdp_use_orig_params: FSDP1 only",
    ),
    (
        "fsdp_config: {fsdp_version: 2, fsdp_sharding_strategy: HYBRID_SHARD}\n",
        "HYBRID_SHARD is FSDP1 only",
    ),
    ("fsdp_config: {fsdp_reshard_after_forward: true}\n", "FSDP2 only"),
    ("fsdp_config: {fsdp_cpu_offload_pin_memory: true}\n", "have no such setting"),
    ("fsdp_config: {fsdp_final_state_dict_type: SHARDED_STATE_DICT}\n", "writes the final"),
    (
        "fsdp_config: {version: 2, sharding_strategy: FULL_SHARD, reshard_after_forward: false}\n",
        "false contradicts fsdp_sharding_strategy FULL_SHARD",
    ),
]


@pytest.mark.parametrize(("extra", "message"), FSDP_REFUSED)
def test_fsdp_the_worker_refuses_is_a_validate_error(
    tmp_path: Path, extra: str, message: str
) -> None:
    with pytest.raises(FtctlError, match=message) as info:
        recipe_with(extra, tmp_path)
    problem = info.value.problems[0]
    assert problem.location is not None and problem.location.line is not None
    assert problem.key_path[0] == "fsdp_config"


@pytest.mark.parametrize(("extra", "message"), FSDP_REFUSED)
def test_the_worker_still_refuses_fsdp_it_cannot_pass(extra: str, message: str) -> None:
    # A recipe built without validate's rules (the model alone): the worker's own check.
    from ftctl.recipe.prepare import prepare
    from ftctl.worker.distributed import fsdp_arguments
    from ftctl.yamlio import parse_yaml

    document, _ = prepare(parse_yaml(extra, "r.yaml"), frozenset(Recipe.model_fields))
    recipe = Recipe.model_validate({**document.data, "base_model": "./m", "learning_rate": 1e-3})
    with pytest.raises(FtctlError, match=message):
        fsdp_arguments(recipe)


def test_agreeing_fsdp2_sharding_spellings_are_accepted(tmp_path: Path) -> None:
    # FULL_SHARD means reshard after forward: writing both, as FSDP2 configs do, is one setting.
    both = "fsdp_config: {version: 2, sharding_strategy: FULL_SHARD, reshard_after_forward: true}\n"
    assert arguments(recipe_with(both, tmp_path))["fsdp_config"] == {
        "version": 2,
        "reshard_after_forward": True,
    }


def test_attention_mapping(tmp_path: Path) -> None:
    from ftctl.worker.model import model_kwargs, uses_flash

    def attention(extra: str, **options: Any) -> Any:
        recipe = recipe_with(extra, tmp_path)
        return model_kwargs(recipe, cuda=True, **options).get("attn_implementation")

    assert attention("") is None
    assert attention("attn_implementation: eager\n") == "eager"
    assert attention("eager_attention: true\n") == "eager"
    assert attention("sdp_attention: true\n") == "sdpa"
    assert attention("flash_attention: true\n", flash_installed=True) == "flash_attention_2"
    assert attention("attn_implementation: sdpa\nsdp_attention: true\n") == "sdpa"
    assert (
        attention("attn_implementation: flash_attention_3\n", flash_installed=True)
        == "flash_attention_3"
    )
    with pytest.raises(FtctlError, match="attn_implementation: the flash-attn-3 package"):
        attention("attn_implementation: flash_attention_3\n", flash_installed=False)
    with pytest.raises(FtctlError, match="flash_attention: the flash-attn package"):
        attention("flash_attention: true\n", flash_installed=False)
    assert uses_flash(recipe_with("attn_implementation: flash_attention_2\n", tmp_path))
    assert not uses_flash(recipe_with("attn_implementation: sdpa\n", tmp_path))


def test_liger_arguments(tmp_path: Path) -> None:
    from ftctl.worker.kernels import idle_plugins, liger_arguments

    assert liger_arguments(recipe_with("", tmp_path)) == {}
    args = liger_arguments(
        recipe_with(LIGER + "liger_rms_norm: true\nliger_glu_activation: true\n", tmp_path)
    )
    assert args == {
        "use_liger_kernel": True,
        "liger_kernel_config": {
            "rope": False,
            "rms_norm": True,
            "layer_norm": False,
            "swiglu": True,
            "geglu": True,
            "cross_entropy": False,
            "fused_linear_cross_entropy": False,
        },
    }
    assert arguments(recipe_with("liger_rope: true\n", tmp_path))["use_liger_kernel"] is True
    assert idle_plugins(recipe_with(LIGER, tmp_path)) == [
        "axolotl.integrations.liger.LigerPlugin turns nothing on without a liger_* key; it is ignored"
    ]
    from transformers import TrainingArguments

    accepted = inspect.signature(TrainingArguments).parameters
    assert {"use_liger_kernel", "liger_kernel_config"} <= set(accepted)


def test_liger_refuses_kernels_a_model_lacks() -> None:
    from ftctl.worker.kernels import liger_problem

    def apply_to_llama(
        model: Any = None,
        rope: bool = True,
        rms_norm: bool = True,
        swiglu: bool = True,
        fused_linear_cross_entropy: bool = True,
    ) -> None: ...

    table = {"llama": apply_to_llama}
    assert liger_problem({"rope": True, "swiglu": True, "geglu": True}, "llama", table) is None
    assert liger_problem({"layer_norm": True}, "llama", table) == (
        "Liger has no layer_norm kernel for model type llama"
    )
    assert (
        liger_problem({"rope": True}, "gpt2", table) == "Liger has no kernels for model type gpt2"
    )


def test_cut_cross_entropy_is_derived_from_its_plugin(tmp_path: Path) -> None:
    assert recipe_with(CCE, tmp_path).cut_cross_entropy is True
    assert recipe_with(CCE + "cut_cross_entropy: false\n", tmp_path).cut_cross_entropy is False
    from ftctl.worker.kernels import apply_cut_cross_entropy

    model = object()
    assert apply_cut_cross_entropy(recipe_with("", tmp_path), model) is model


def test_fsdp_arguments(tmp_path: Path) -> None:
    assert "fsdp" not in arguments(recipe_with("", tmp_path))
    alone = arguments(
        recipe_with(
            "fsdp_config:\n  fsdp_version: 2\n  fsdp_offload_params: true\n"
            "  fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer\n"
            "  fsdp_state_dict_type: SHARDED_STATE_DICT\n  fsdp_reshard_after_forward: false\n"
            "  fsdp_cpu_ram_efficient_loading: true\n  fsdp_activation_checkpointing: true\n",
            tmp_path,
        )
    )
    assert alone["fsdp"] is True  # fsdp_config alone means FSDP
    assert alone["fsdp_config"] == {
        "version": 2,
        "cpu_offload": True,
        "transformer_layer_cls_to_wrap": "LlamaDecoderLayer",
        "state_dict_type": "SHARDED_STATE_DICT",
        "reshard_after_forward": False,
        "cpu_ram_efficient_loading": True,
        "activation_checkpointing": True,
    }
    top_level = arguments(recipe_with("fsdp_version: 2\nfsdp: [full_shard]\n", tmp_path))
    assert top_level["fsdp_config"] == {"version": 2} and top_level["fsdp"] == "full_shard"
    v1 = arguments(
        recipe_with(
            "fsdp_config:\n  fsdp_sharding_strategy: SHARD_GRAD_OP\n  fsdp_use_orig_params: false\n"
            "  fsdp_backward_prefetch: BACKWARD_PRE\n  fsdp_final_state_dict_type: FULL_STATE_DICT\n",
            tmp_path,
        )
    )
    assert v1["fsdp_config"] == {
        "version": 1,
        "reshard_after_forward": "shard_grad_op",
        "use_orig_params": False,
        "backward_prefetch": "BACKWARD_PRE",
    }
    v2 = arguments(
        recipe_with(
            "fsdp_config: {fsdp_version: 2, fsdp_sharding_strategy: FULL_SHARD}\n", tmp_path
        )
    )
    assert v2["fsdp_config"]["reshard_after_forward"] is True


def test_fsdp_keys_are_what_transformers_reads() -> None:
    """Every key ftctl hands over is one transformers 5's _process_fsdp_args reads."""
    from transformers import TrainingArguments

    from ftctl.recipe.fsdp import FSDP1_ONLY, SHARED

    source = inspect.getsource(TrainingArguments._process_fsdp_args)
    for key in [*SHARED.values(), *FSDP1_ONLY.values(), "reshard_after_forward", "version"]:
        assert f'"{key}"' in source, key


def test_precision_and_optimizers(tmp_path: Path) -> None:
    from ftctl.worker.model import tf32_enabled

    auto = recipe_with("tf32: auto\n", tmp_path)
    assert arguments(auto, has_tf32=True)["tf32"] is True
    assert arguments(auto, has_tf32=False)["tf32"] is False
    assert arguments(auto, cuda=False, has_tf32=True)["tf32"] is False
    assert not tf32_enabled(auto, supported=False)
    assert arguments(recipe_with("tf32: true\n", tmp_path))["tf32"] is True
    assert arguments(recipe_with("", tmp_path))["tf32"] is False
    four = recipe_with("optimizer: adamw_torch_4bit\n", tmp_path)
    assert arguments(four)["optim"] == "adamw_torch_4bit"
    from transformers.training_args import OptimizerNames

    assert {"adamw_torch_4bit", "adamw_torch_8bit"} <= {o.value for o in OptimizerNames}


def test_lora_target_modules_as_a_regex(tmp_path: Path) -> None:
    from ftctl.worker.trainer import lora_config

    pattern = r".*\.(q|v)_proj"
    config = lora_config(recipe_with(f"lora_target_modules: '{pattern}'\n", tmp_path))
    assert config.target_modules == pattern  # a string: peft full-matches it as a regex
    listed = lora_config(recipe_with("", tmp_path))
    assert set(listed.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}


def test_qlora_trains_an_adapter(tmp_path: Path) -> None:
    from ftctl.worker.trainer import lora_config

    text = "adapter: qlora\nload_in_4bit: true\n"
    recipe = recipe_with(text, tmp_path).model_copy(update={"adapter": "qlora"})
    assert lora_config(recipe) is not None  # never a full fine-tune of a 4-bit model


def test_evaluation_without_an_evaluation_set_is_skipped(tmp_path: Path) -> None:
    from ftctl.worker.trainer import ignored_settings

    recipe = recipe_with("evals_per_epoch: 4\n", tmp_path)
    assert arguments(recipe)["eval_strategy"] == "no"
    (line,) = ignored_settings(recipe, has_eval=False)
    assert line.startswith("evals_per_epoch/eval_strategy: there is no evaluation set")
    assert ignored_settings(recipe, has_eval=True) == []
    assert len(ignored_settings(recipe_with("eval_strategy: epoch\n", tmp_path), False)) == 1
    assert ignored_settings(recipe_with("", tmp_path), False) == []


def test_tracking_and_grouping(tmp_path: Path) -> None:
    from ftctl.worker.trainer import tracking_environment

    recipe = recipe_with(
        "wandb_project: p\nwandb_entity: e\nwandb_mode: offline\nmlflow_experiment_name: x\n",
        tmp_path,
    )
    assert tracking_environment(recipe) == {
        "WANDB_PROJECT": "p",
        "WANDB_ENTITY": "e",
        "WANDB_MODE": "offline",
        "MLFLOW_EXPERIMENT_NAME": "x",
    }
    assert arguments(recipe_with("group_by_length: true\n", tmp_path))["group_by_length"] is True
    assert "group_by_length" not in arguments(recipe_with("", tmp_path))


def test_memory_limits(tmp_path: Path) -> None:
    from ftctl.worker.model import memory_limits

    assert memory_limits(recipe_with("", tmp_path), 2) is None
    assert memory_limits(recipe_with("gpu_memory_limit: 20\n", tmp_path), 2) == {
        0: "20GiB",
        1: "20GiB",
    }
    given = recipe_with("max_memory: {'0': 10GiB, cpu: 64GiB}\n", tmp_path)
    assert memory_limits(given, 1) == {0: "10GiB", "cpu": "64GiB"}


def test_unfrozen_parameters_train_only_matching(tmp_path: Path) -> None:
    import torch

    from ftctl.worker.model import freeze_all_but

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    freeze_all_but(model, [r"1\."])
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["1.weight", "1.bias"]
    with pytest.raises(FtctlError, match="no parameter of the model matches"):
        freeze_all_but(model, ["nothing"])


@pytest.mark.slow
def test_eager_attention_trains_on_the_cpu(
    tmp_path: Path, run_cli: RunCLI, pulled_data: Path
) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path / "ftctl.yaml", f"allow_paths: ['{REPO / 'models'}']\n")  # the tiny model
    rows = (pulled_data / "alpaca-tiny.jsonl").read_text()
    write(tmp_path / "data" / "alpaca-tiny.jsonl", rows)
    text = (REPO / "recipes" / "tiny-alpaca.yaml").read_text()
    text = text.replace("./models/tiny-llama", str(REPO / "models" / "tiny-llama"))
    text = text.replace("num_epochs: 2\n", "max_steps: 3\n")
    write(
        tmp_path / "recipes" / "eager.yaml",
        text + "attn_implementation: eager\nevals_per_epoch: 2\n",
    )
    result = run_cli("train", "eager", "--output", str(tmp_path / "run"), cwd=tmp_path)
    assert result.code == 0, result.err
    # evals_per_epoch without an evaluation set: skipped with a warning, not refused.
    config = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"
    assert json.loads((tmp_path / "run" / "result.json").read_text())["steps"] == 3
