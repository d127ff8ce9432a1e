"""Rules on FSDP settings: what transformers' FSDP arguments cannot take as written."""

from __future__ import annotations

from collections.abc import Iterator

from ftctl.recipe.fsdp import fsdp_refusals
from ftctl.recipe.model import Recipe
from ftctl.recipe.rules.engine import Violation, rule


@rule
def fsdp_settings_transformers_reads(r: Recipe) -> Iterator[Violation]:
    """The worker refuses these on every machine (ftctl.worker.distributed checks the same)."""
    if r.fsdp_config is None:
        return
    for refused in fsdp_refusals(r.fsdp_config):
        yield Violation(("fsdp_config", refused.key), refused.message, refused.hint)
