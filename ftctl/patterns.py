"""String fields that must match a pattern, with messages people can act on.

pydantic's own pattern error prints the regex; these say what to write
instead, and still publish the regex in the JSON Schema for editors.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field


def matching(regex: str, expected: str) -> object:
    """Metadata for ``Annotated[str, *matching(...)]``-style use via :func:`pattern_str`."""
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.search(value):
            raise ValueError(f"'{value}' is not {expected}")
        return value

    return AfterValidator(check)


def pattern_str(regex: str, expected: str) -> type[str]:
    """A ``str`` type that must match ``regex``; the error says it must be ``expected``."""
    return Annotated[  # type: ignore[return-value]
        str, Field(json_schema_extra={"pattern": regex}), matching(regex, expected)
    ]


NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
ExecutorNameStr = pattern_str(NAME_PATTERN, "a name of lowercase letters, digits, '.', '_', '-'")
AcceleratorsStr = pattern_str(
    r"^[A-Za-z0-9_.-]+(:[0-9]+)?$", "an accelerator type and count such as 'H100:1'"
)
DeepSpeedPathStr = pattern_str(r"\.json$", "the path of a DeepSpeed JSON config (*.json)")
MemoryStr = pattern_str(
    r"^[0-9]+(\.[0-9]+)?\s*(GiB|GB|MiB|MB)?$", "a memory size such as '20GiB'"
)
ModelClassStr = pattern_str(
    r"^[A-Z][A-Za-z0-9]*ForCausalLM$", "a transformers causal-LM class name such as LlamaForCausalLM"
)
TokenizerClassStr = pattern_str(
    r"^[A-Z][A-Za-z0-9]*Tokenizer(Fast)?$", "a transformers tokenizer class name such as AutoTokenizer"
)
