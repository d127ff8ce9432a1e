"""Axolotl keys ftctl knows but does not take, each with what to do instead.

An unknown key gets a did-you-mean; a key listed here gets a message naming
the Axolotl feature, so nobody wonders whether a typo or a missing feature is
to blame.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Unsupported:
    feature: str
    hint: str


_NOT_SUPPORTED = "remove it"


def _same(feature: str, keys: str, hint: str = _NOT_SUPPORTED) -> dict[str, Unsupported]:
    return {key: Unsupported(feature, hint) for key in keys.split()}


# Newer Axolotl features ftctl does not train: accepted while inactive (see ftctl.recipe.keys).
_MORE: dict[str, Unsupported] = {
    **_same("custom trainer classes", "trainer_cls", "remove it: ftctl never imports code"),
    **_same("optimizer arguments", "optim_args optim_target_modules adam_beta3 adam_epsilon2"),
    **_same("per-group learning rates", "embedding_lr embedding_lr_scale lr_groups"),
    **_same("LoRA+", "loraplus_lr_ratio loraplus_lr_embedding"),
    **_same("Dion optimizer", "dion_lr dion_momentum dion_rank_fraction dion_rank_multiple_of"),
    **_same(
        "Q-GaLore",
        "qgalore_cos_threshold qgalore_gamma_proj qgalore_proj_bits qgalore_proj_group_size "
        "qgalore_proj_quant qgalore_proj_type qgalore_queue_size qgalore_rank qgalore_scale "
        "qgalore_update_proj_gap",
    ),
    **_same(
        "scheduler options",
        "jagged_restart_steps jagged_restart_warmup_steps jagged_restart_anneal_steps "
        "lr_quadratic_warmup lr_div_factor cosine_constant_lr_ratio lr_scheduler_kwargs",
    ),
    **_same("PoSE", "use_pose pose_max_context_len pose_num_chunks pose_split_on_token_ids"),
    **_same("entropy-adaptive fine-tuning (EAFT)", "use_eaft eaft_alpha eaft_k"),
    **_same("energy-based fine-tuning (EBFT)", "ebft"),
    **_same("chunked cross-entropy", "chunked_cross_entropy chunked_cross_entropy_num_chunks"),
    **_same("tiled MLP", "tiled_mlp tiled_mlp_num_shards tiled_mlp_use_original_mlp"),
    **_same("selective activation checkpointing", "selective_checkpointing"),
    **_same(
        "mixture-of-experts kernels",
        "experts_implementation quantize_moe_experts llama4_linearized_experts",
    ),
    **_same("fp32 norm layers", "fp32_norms fp32_norm_classes"),
    **_same(
        "model loading overrides",
        "model_config model_kwargs cls_model_config bnb_config_kwargs model_quantization_config "
        "model_quantization_config_kwargs rope_scaling",
    ),
    **_same("device mesh settings", "dp_replicate_size dp_shard_size deepcompile"),
    **_same(
        "embedding resizing options",
        "mean_resizing_embeddings shrink_embeddings embeddings_skip_upcast reinit_weights "
        "fix_untrained_tokens added_tokens_overrides",
    ),
    **_same(
        "packing options",
        "sample_packing_bin_size sample_packing_group_size sample_packing_eff_est "
        "sample_packing_sequentially multipack_real_batches pretrain_multipack_attn "
        "pretrain_multipack_buffer_size streaming_multipack_buffer_size batch_flattening "
        "pretraining_sample_concatenation pad_to_multiple_of curriculum_sampling",
    ),
    **_same(
        "dataset preprocessing options",
        "dataset_shard_num dataset_shard_idx dataset_exact_deduplication "
        "shuffle_before_merging_datasets min_sample_len excess_length_strategy eval_sequence_len",
    ),
    **_same("reward-model options", "center_rewards_coefficient num_labels"),
    **_same("CPO and SimPO", "cpo_alpha simpo_gamma"),
    **_same(
        "DPO options",
        "dpo_use_weighting dpo_padding_free dpo_use_liger_kernel precompute_ref_log_probs "
        "dpo_norm_loss dpo_use_logits_to_keep dpo_generate_during_eval rpo_alpha",
    ),
    **_same(
        "attention patches",
        "flash_attn_d512 large_head_attention sdpa_varlen sage_attention "
        "gemma4_hybrid_attn_impl scaling_softmax scaling_softmax_bias scaling_softmax_factor",
    ),
    **_same("fp8 training", "fp8_config"),
    **_same("OneBitLLMs", "use_onebitllms"),
    **_same(
        "Hub kernels", "use_kernels", "remove it: ftctl does not load kernel code from the Hub"
    ),
    **_same(
        "tokenizer options", "tokenizer_use_mistral_common tokenizer_legacy tokenizer_use_fast"
    ),
    **_same("automatic batch size search", "auto_find_batch_size"),
    **_same("model dtype loading options", "bfloat16 float16 float32"),
    **_same("dataloader options", "dataloader_drop_last"),
    **_same("checkpoint selection options", "greater_is_better"),
    **_same("QLoRA sharded loading", "qlora_sharded_model_loading"),
    **_same("post-training quantization", "quantization"),
    **_same("multimodal training", "freeze_mm_modules processor_kwargs role_boundaries"),
    **_same(
        "PEFT options",
        "lora_alpha_pattern lora_rank_pattern lora_target_parameters peft "
        "peft_autocast_adapter_dtype peft_ensure_weight_tying peft_init_lora_weights "
        "peft_layer_replication peft_layers_pattern peft_layers_to_transform "
        "peft_trainable_token_indices",
    ),
    **_same("ReLoRA", "relora relora_prune_method"),
    **_same("merging after training", "merge_method"),
    **_same("torch.compile", "torch_compile_options"),
    **_same("Ray training", "use_ray ray_num_workers ray_run_name resources_per_worker"),
    **_same("vLLM generation", "vllm"),
    **_same(
        "liger kernel options", "liger_rms_norm_gated liger_use_token_scaling liger_kernel_impl"
    ),
}


# Features ftctl does not implement (keys as Axolotl spells them).
UNSUPPORTED_KEYS: dict[str, Unsupported] = {
    **_same(
        "multimodal training",
        "processor_type processor_config image_size image_resize_algorithm is_multimodal",
    ),
    **_same("quantization-aware training (QAT)", "qat"),
    **_same("fp8 training", "fp8 fp8_enable_fsdp_float8_all_gather"),
    **_same(
        "ReLoRA",
        "relora_steps relora_warmup_steps relora_anneal_steps relora_prune_ratio "
        "relora_cpu_offload",
    ),
    **_same("GPTQ models", "gptq gptq_groupsize gptq_model_v1 gptq_bits gptq_disable_exllama"),
    **_same("reward and process-reward models", "reward_model process_reward_model"),
    **_same(
        "Unsloth kernels",
        "unsloth_lora_mlp unsloth_lora_qkv unsloth_lora_o unsloth_rms_norm unsloth_rope "
        "unsloth_cross_entropy_loss",
    ),
    **_same("LISA layer sampling", "lisa_n_layers lisa_step_interval lisa_layers_attribute"),
    **_same(
        "sequence/context parallelism",
        "sequence_parallel_degree context_parallel_size heads_k_stride ring_attn_func",
    ),
    **_same("tensor parallelism", "tensor_parallel_size"),
    **_same(
        "xformers attention", "xformers_attention", "use flash_attention or sdp_attention instead"
    ),
    **_same(
        "shifted-sparse attention", "s2_attention", "use flash_attention or sdp_attention instead"
    ),
    **_same("torch.compile", "torch_compile torch_compile_backend torch_compile_mode"),
    **_same("LLaMA-Adapter", "peft_adapter adapter_layers adapter_len"),
    **_same(
        "GRPO trainer block", "trl", "remove it: GRPO and its reward functions are not supported"
    ),
    **_same(
        "merging after training",
        "merge_lora",
        "remove it: merge the adapter into its base after training",
    ),
    **_same("model config overrides", "model_config_type_override"),
    **_MORE,
}

# Keys ftctl spells differently or handles itself: the hint says how.
RENAMED_KEYS: dict[str, str] = {
    "hub_model_id": "set ftctl.publish: hf://ORG/REPO, the adapter's publish target",
    "hub_strategy": "remove it; ftctl publishes once per run, see ftctl.publish",
    "push_dataset_to_hub": "remove it; ftctl does not upload datasets",
    "hf_use_auth_token": "remove it; ftctl reads HF_TOKEN from the environment",
    "resume_from_checkpoint": "remove it; a recipe describes a training, not where to resume one",
    "auto_resume_from_checkpoints": "remove it; a recipe describes a training, not where to resume one",
    "max_packed_sequence_len": "use sample_packing: true with sequence_len",
    "message_field_role": "use message_property_mappings: {role: ...}",
    "message_field_content": "use message_property_mappings: {content: ...}",
    "revision": "write the revision into path as 'org/name@<revision>'",
    "base_model_revision": "write the revision into base_model as 'org/name@<revision>'",
}
