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
        "plugin system",
        "plugins",
        "remove it: ftctl never imports code named in a recipe",
    ),
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
        "merging after training", "merge_lora", "remove it: merge the adapter into its base after training"
    ),
    **_same("model config overrides", "model_config_type_override"),
}

# Keys ftctl spells differently or handles itself: the hint says how.
RENAMED_KEYS: dict[str, str] = {
    "revision_of_model": "write the revision into base_model as 'org/name@<revision>'",
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
