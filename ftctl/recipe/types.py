"""String fields that must match a pattern, with messages people can act on.

pydantic's own pattern error prints the regex; these say what to write
instead, and still publish the regex in the JSON Schema for editors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, Field


def _matching(regex: str, expected: str) -> AfterValidator:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.search(value):
            shown = value if len(value) <= 60 else value[:60] + "..."
            raise ValueError(f"'{shown}' is not {expected}")
        return value

    func: Callable[[str], str] = check
    return AfterValidator(func)


NAME_RE = r"^[a-z0-9][a-z0-9._-]{0,63}$"
ACCELERATORS_RE = r"^[A-Za-z0-9_.-]+(:[0-9]+)?$"
DEEPSPEED_RE = r"\.json$"
MEMORY_RE = r"^[0-9]+(\.[0-9]+)?\s*(GiB|GB|MiB|MB)?$"
MODEL_CLASS_RE = r"^[A-Z][A-Za-z0-9]*ForCausalLM$"
TOKENIZER_CLASS_RE = r"^[A-Z][A-Za-z0-9]*Tokenizer(Fast)?$"

ExecutorNameStr = Annotated[
    str,
    Field(json_schema_extra={"pattern": NAME_RE}),
    _matching(NAME_RE, "a name of lowercase letters, digits, '.', '_', '-'"),
]
AcceleratorsStr = Annotated[
    str,
    Field(json_schema_extra={"pattern": ACCELERATORS_RE}),
    _matching(ACCELERATORS_RE, "an accelerator type and count such as 'H100:1'"),
]
DeepSpeedPathStr = Annotated[
    str,
    Field(json_schema_extra={"pattern": DEEPSPEED_RE}),
    _matching(DEEPSPEED_RE, "the path of a DeepSpeed JSON config (*.json)"),
]
MemoryStr = Annotated[
    str,
    Field(json_schema_extra={"pattern": MEMORY_RE}),
    _matching(MEMORY_RE, "a memory size such as '20GiB'"),
]
ModelClassStr = Annotated[
    str,
    Field(json_schema_extra={"pattern": MODEL_CLASS_RE}),
    _matching(MODEL_CLASS_RE, "a transformers causal-LM class name such as LlamaForCausalLM"),
]
TokenizerClassStr = Annotated[
    str,
    Field(json_schema_extra={"pattern": TOKENIZER_CLASS_RE}),
    _matching(TOKENIZER_CLASS_RE, "a transformers tokenizer class name such as AutoTokenizer"),
]
