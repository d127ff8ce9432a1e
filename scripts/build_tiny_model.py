"""Build the tiny Llama model the repository's recipes train (deterministic, CPU).

    python scripts/build_tiny_model.py [OUT_DIR]    # default: models/tiny-llama

A byte-level BPE tokenizer trained on the tiny datasets (the rows of
scripts/build_tiny_data.py, so a fresh clone needs no `dvc pull`) with a
ChatML chat template, and a 2-layer Llama with random weights from a fixed
seed. The result is committed under models/; tests/test_tiny_model.py
rebuilds it and checks the bytes are the same. Needs the `train` extra.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def corpus() -> list[str]:
    """Every string in the tiny datasets, in file order (the tokenizer's training text)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from build_tiny_data import datasets

    texts: list[str] = []
    for rows in datasets().values():
        # The same rows the jsonl files hold, as they read back from JSON.
        for row in json.loads(json.dumps(rows)):
            if "messages" in row:
                texts.extend(m["role"] + "\n" + m["content"] for m in row["messages"])
            else:
                texts.extend(str(row[k]) for k in sorted(row))
    return texts


def build_tokenizer(texts: list[str]):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
        chat_template=CHATML,
        model_max_length=512,
    )


def build_model(vocab_size: int, eos_id: int, pad_id: int):  # type: ignore[no-untyped-def]
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).to(torch.float32)


def main(out: Path) -> None:
    tokenizer = build_tokenizer(corpus())
    model = build_model(
        len(tokenizer), tokenizer.convert_tokens_to_ids("<|endoftext|>"), tokenizer.pad_token_id
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "models" / "tiny-llama")
