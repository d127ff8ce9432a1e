"""Values Axolotl derives from other fields, filled in by one explicit step.

Validation never changes a recipe: a derived field is ``None`` on the model,
meaning "derive it". :func:`derive` returns a new frozen recipe with those
values filled in; the fingerprint and the worker both read that one result,
so what is hashed is what is trained (docs/recipes.md, "Defaults").
"""

from __future__ import annotations

from ftctl.recipe.keys import CCE_PLUGIN
from ftctl.recipe.model import Recipe


def derived_values(recipe: Recipe) -> dict[str, bool]:
    """The derived fields the recipe leaves to derivation, with their values."""
    out: dict[str, bool] = {}
    if recipe.pad_to_sequence_len is None:
        out["pad_to_sequence_len"] = recipe.sample_packing  # packed batches are padded
    if recipe.eval_sample_packing is None:
        out["eval_sample_packing"] = recipe.sample_packing
    if recipe.cut_cross_entropy is None and CCE_PLUGIN in (recipe.plugins or ()):
        out["cut_cross_entropy"] = True  # the plugin turns it on unless the key says otherwise
    return out


def derive(recipe: Recipe) -> Recipe:
    """The recipe with every derived value filled in (a new object; ``recipe`` is unchanged)."""
    values = derived_values(recipe)
    return recipe.model_copy(update=values) if values else recipe
