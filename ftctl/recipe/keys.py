"""Every key of Axolotl's input schema, classified: how ftctl treats each one.

A key is one of:

- *trained*: a field of :class:`~ftctl.recipe.model.Recipe`, trained as Axolotl trains it;
- *non-semantic*: logging, debugging, hub, speed-only and operations keys; accepted with
  any value, never part of the fingerprint, not handed to the worker;
- *unsupported*: a feature ftctl does not train (:data:`~ftctl.recipe.unsupported.UNSUPPORTED_KEYS`);
  accepted while inactive (null, false, empty or Axolotl's default), refused naming the feature
  when set;
- *mapped*: a deprecated or alternative spelling of exactly one trained setting;
- *refused with a pointer*: ftctl does that job itself (:data:`~ftctl.recipe.unsupported.RENAMED_KEYS`).

The key list comes from :mod:`ftctl.recipe.axolotl_schema` (generated from Axolotl's schema
files); tests/recipe/test_keys.py fails when a key there is not classified here.
"""

from __future__ import annotations

from typing import Literal

from ftctl.recipe.axolotl_schema import COMPUTED, PLUGINS, SFT_DATASET, TOP_LEVEL

Kind = Literal["trained", "non_semantic", "unsupported", "mapped", "refused", "unknown"]

# Accepted and ignored: they steer logging, evaluation samples, speed or the machine, never
# which weights come out (the kernels listed compute the same values, only faster).
NON_SEMANTIC_KEYS = frozenset(
    """
    accelerator_config axolotl_config_path bench_dataset bench_split do_bench_eval
    do_causal_lm_eval eval_causal_lm_metrics comet_api_key comet_experiment_config
    comet_experiment_key comet_mode comet_online comet_project_name comet_workspace use_comet
    trackio_project_name trackio_run_name trackio_space_id use_trackio use_wandb use_mlflow
    hf_mlflow_log_artifacts otel_metrics_host otel_metrics_port use_otel_metrics
    gradio_max_new_tokens gradio_server_name gradio_server_port gradio_share gradio_temperature
    gradio_title dataloader_num_workers dataloader_pin_memory dataloader_prefetch_factor
    dataset_keep_in_memory dataset_num_proc ddp ddp_broadcast_buffers ddp_bucket_cap_mb
    ddp_find_unused_parameters ddp_timeout device device_map local_rank world_size
    gc_collect_steps gc_steps torch_empty_cache_steps include_tkps include_tokens_per_second
    profiler_steps profiler_steps_start loss_watchdog_patience loss_watchdog_threshold
    skip_prepare_dataset remove_unused_columns is_preprocess num_dataset_shards_to_save
    hub_revision save_first_step save_only_model tokenizer_save_jinja_files dynamic_checkpoint
    experimental_skip_move_to_device low_cpu_mem_usage torchdistx_path lora_mlp_kernel
    lora_qkv_kernel lora_o_kernel lora_embedding_kernel activation_offloading layer_offloading
    ple_cpu_offload generate_samples generation_do_sample generation_max_new_tokens
    generation_prompt_ratio generation_temperature generation_top_k generation_top_p
    num_generation_samples eval_max_new_tokens preprocess_iterable total_num_tokens
    total_supervised_tokens lora_on_cpu is_falcon_derived_model is_llama_derived_model
    is_mistral_derived_model is_qwen_derived_model sample_packing_mp_start_method
    flex_attn_compile_kwargs fsdp_final_state_dict_type
    flash_attn_rms_norm flash_attn_fuse_mlp flash_attn_cross_entropy fused_attn_kernel
    flash_optimum debug
    """.split()
)
# Keys Axolotl's code reads that its schema does not declare (debug prints tokenized samples).
OUTSIDE_SCHEMA = frozenset({"debug"})

# Non-semantic keys that ask for speed or memory savings ftctl does not make: accepted with a
# warning, since training runs without them (same values, more memory or time).
SPEED_ONLY_KEYS: dict[str, str] = {
    **dict.fromkeys(
        "lora_mlp_kernel lora_qkv_kernel lora_o_kernel lora_embedding_kernel".split(),
        "Axolotl's fused LoRA kernels",
    ),
    **dict.fromkeys(
        "flash_attn_rms_norm flash_attn_fuse_mlp flash_attn_cross_entropy".split(),
        "flash-attn's fused kernels",
    ),
    "fused_attn_kernel": "Axolotl's fused RMSNorm+RoPE kernel",
    "flash_optimum": "BetterTransformer",
    **dict.fromkeys(
        "activation_offloading layer_offloading ple_cpu_offload".split(), "CPU offloading"
    ),
}
# gradient_checkpointing values that also offload the checkpoints: checkpointing, no offload.
OFFLOADED_CHECKPOINTING = frozenset({"offload", "offload_disk"})


def ignored_settings(data: dict[str, object]) -> list[tuple[str, str]]:
    """(key, message) for each speed or memory setting that is on but that ftctl does not apply."""
    found = []
    for key, value in data.items():
        if key in SPEED_ONLY_KEYS and value not in (None, False, [], {}):
            found.append(
                (key, f"accepted and ignored: ftctl trains without {SPEED_ONLY_KEYS[key]}")
            )
        elif key == "gradient_checkpointing" and str(value) in OFFLOADED_CHECKPOINTING:
            found.append((key, f"{value}: ftctl checkpoints but keeps activations in GPU memory"))
    return found


# Deprecated or alternative spellings of one recipe field (the target is where it is read).
MAPPED_KEYS: dict[str, str] = {
    "noisy_embedding_alpha": "neftune_noise_alpha",
    "dpo_beta": "rl_beta",
    "evaluation_strategy": "eval_strategy",
    "peft_use_rslora": "use_rslora",
    "peft_use_dora": "use_dora",
}

# Older boolean attention keys: true means this attn_implementation.
ATTENTION_FLAGS: dict[str, str] = {
    "eager_attention": "eager",
    "flex_attention": "flex_attention",
}

# Keys mapped with a rule of their own (see ftctl.recipe.prepare).
SPECIAL_KEYS = frozenset({"hub_model_id", "fsdp_version", "model_revision", "revision_of_model"})

# Plugins by the name Axolotl gives them, mapped onto what ftctl does for each.
LIGER_PLUGIN = "axolotl.integrations.liger.LigerPlugin"
CCE_PLUGIN = "axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin"
# Plugins whose keys only log or evaluate: accepted, their keys non-semantic.
OBSERVING_PLUGINS = frozenset(
    {"axolotl.integrations.swanlab.SwanLabPlugin", "axolotl.integrations.lm_eval.LMEvalPlugin"}
)
TRAINED_PLUGINS = frozenset({LIGER_PLUGIN, CCE_PLUGIN})
KNOWN_PLUGINS = TRAINED_PLUGINS | OBSERVING_PLUGINS

# Which plugin a plugin-provided key belongs to.
PLUGIN_OF_KEY: dict[str, str] = {key: name for name, keys in PLUGINS.items() for key in keys}

# Dataset-entry keys Axolotl reads that ftctl's dataset models do not hold.
DATASET_UNSUPPORTED: dict[str, str] = {
    **dict.fromkeys(
        "field_thinking template_thinking_key split_thinking".split(), "reasoning-trace fields"
    ),
    **dict.fromkeys("field_tools".split(), "tool-call fields"),
    **dict.fromkeys("shards shards_idx preprocess_shards".split(), "dataset sharding"),
    **dict.fromkeys(
        "input_format input_transform field_human field_model".split(), "custom prompt formats"
    ),
    "logprobs_field": "distillation logprobs",
    "message_field_training_detail": "per-token training masks",
    "temperature": "distillation temperature",
    "train_on_eot": "train_on_eot",
    "trust_remote_code": "dataset loading scripts",
}
# Mapped onto the chat_template entry's fields (old sharegpt-style spellings).
DATASET_MAPPED = frozenset({"conversation", "message_field_role", "message_field_content"})


def axolotl_default(key: str) -> object:
    """Axolotl's default for a top-level or plugin key (None when it has none)."""
    if key in TOP_LEVEL:
        return TOP_LEVEL[key]
    plugin = PLUGIN_OF_KEY.get(key)
    return PLUGINS[plugin][key] if plugin is not None else None


def inactive(value: object, default: object) -> bool:
    """Whether a value leaves a feature off: null, Axolotl's default, or false/empty."""
    same_kind = isinstance(value, bool) == isinstance(default, bool)  # True == 1 in Python
    if value is None or (default != COMPUTED and same_kind and value == default):
        return True
    return value in (False, [], {}) and default in (None, False, [], {}, COMPUTED)


def kind_of(key: str, trained: frozenset[str]) -> Kind:
    """How ftctl treats a top-level key, given the Recipe's field names."""
    from ftctl.recipe.unsupported import RENAMED_KEYS, UNSUPPORTED_KEYS

    if key in trained:
        return "trained"
    if key in NON_SEMANTIC_KEYS:
        return "non_semantic"
    if key in MAPPED_KEYS or key in ATTENTION_FLAGS or key in SPECIAL_KEYS:
        return "mapped"
    if key in UNSUPPORTED_KEYS:
        return "unsupported"
    if key in RENAMED_KEYS:
        return "refused"
    plugin = PLUGIN_OF_KEY.get(key)
    if plugin in OBSERVING_PLUGINS:
        return "non_semantic"
    if plugin is not None:
        return "unsupported"
    return "unknown"


def dataset_kind(key: str, trained: frozenset[str]) -> Kind:
    """How ftctl treats a key of a datasets: entry, given the dataset models' field names."""
    if key in trained:
        return "trained"
    if key in DATASET_MAPPED:
        return "mapped"
    if key in DATASET_UNSUPPORTED:
        return "unsupported"
    if key in SFT_DATASET:
        return "refused"
    return "unknown"


def all_axolotl_keys() -> list[str]:
    """Every top-level key Axolotl knows, its plugins' keys included."""
    return sorted(set(TOP_LEVEL) | set(PLUGIN_OF_KEY) | OUTSIDE_SCHEMA)
