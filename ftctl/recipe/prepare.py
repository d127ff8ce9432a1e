"""Read an Axolotl config's keys as Axolotl reads them, before the recipe model checks values.

One pass over the parsed document, driven by the key table in :mod:`ftctl.recipe.keys`:
null means unset (the key is dropped), non-semantic keys are dropped, keys of unsupported
features are dropped while inactive, deprecated spellings are moved onto the one setting they
mean, and old-style ``type: sharegpt`` entries become the ``chat_template`` entries Axolotl's
migration gives. Moved values keep their position, so a problem still points at what the user
wrote. Everything left (typos, active unsupported features) is reported by the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ftctl.errors import Problem
from ftctl.recipe.axolotl_schema import PLUGINS, TOP_LEVEL
from ftctl.recipe.keys import (
    ATTENTION_FLAGS,
    KNOWN_PLUGINS,
    MAPPED_KEYS,
    NON_SEMANTIC_KEYS,
    OFFLOADED_CHECKPOINTING,
    PLUGIN_OF_KEY,
    axolotl_default,
    inactive,
)
from ftctl.recipe.names import AXOLOTL_OPTIMIZERS, UNSUPPORTED_ATTENTION
from ftctl.recipe.unsupported import RENAMED_KEYS, UNSUPPORTED_KEYS
from ftctl.yamlio import Document

KeyPath = tuple[str | int, ...]
REQUIRED = frozenset({"base_model", "learning_rate"})
# Axolotl reads 0 here as "never" (no evaluation or save inside an epoch).
ZERO_MEANS_UNSET = frozenset({"evals_per_epoch", "saves_per_epoch"})

# Axolotl's migration of ``type: sharegpt``: its rows, its default role names.
SHAREGPT_MAPPINGS = {"role": "from", "content": "value"}
SHAREGPT_ROLES = {"user": ["human", "user"], "assistant": ["gpt", "assistant"]}


@dataclass
class _Pass:
    document: Document
    problems: list[Problem] = field(default_factory=list)
    values: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def move(self, old: KeyPath, new: KeyPath) -> None:
        """``new`` is reported where ``old`` was written."""
        for source, target in ((self.document.value_positions, self.values),
                               (self.document.key_positions, self.keys)):  # fmt: skip
            if old in source:
                target[new] = source[old]
                if len(new) > 1 and new[:1] not in source:
                    target.setdefault(new[:1], source[old])

    def refuse(self, path: KeyPath, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(message, self.document.location(path, key=True), path, hint))


def prepare(document: Document, fields: frozenset[str]) -> tuple[Document, list[Problem]]:
    """The document as the model should read it, and the problems found on the way."""
    if not isinstance(document.data, dict):
        return document, []
    run = _Pass(document)
    data = _top_level(run, document.data, fields)
    _revision_of_model(run, document.data, data)
    checkpointing = data.get("gradient_checkpointing")
    if isinstance(checkpointing, str) and checkpointing in OFFLOADED_CHECKPOINTING:
        data["gradient_checkpointing"] = True  # the offload is memory only (a warning says)
    for list_key in ("datasets", "test_datasets"):
        entries = data.get(list_key)
        if isinstance(entries, list):
            data[list_key] = [
                _dataset(run, (list_key, i), e) if isinstance(e, dict) else e
                for i, e in enumerate(entries)
            ]
    if isinstance(data.get("fsdp_config"), dict):
        data["fsdp_config"] = _fsdp_config(run, data["fsdp_config"])
    _refuse_values(run, data)
    moved = replace(
        document,
        data=data,
        value_positions={**document.value_positions, **run.values},
        key_positions={**document.key_positions, **run.keys},
    )
    return moved, run.problems


def _top_level(run: _Pass, data: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        known = key in fields or key in TOP_LEVEL or key in PLUGIN_OF_KEY
        known = known or key in UNSUPPORTED_KEYS or key in RENAMED_KEYS
        if value is None and key not in REQUIRED and known:
            continue  # null means unset, as Axolotl reads it
        if value == 0 and key in ZERO_MEANS_UNSET and value is not False:
            continue
        if key in fields:
            out[key] = _merged(out.get(key), value)
        elif key in NON_SEMANTIC_KEYS or PLUGIN_OF_KEY.get(key, "").endswith(
            ("SwanLabPlugin", "LMEvalPlugin")
        ):
            continue
        elif key in MAPPED_KEYS:
            _move_to(run, data, out, key, MAPPED_KEYS[key], value)
        elif key in ATTENTION_FLAGS:
            if value is True:
                _move_to(run, data, out, key, "attn_implementation", ATTENTION_FLAGS[key])
            elif value is not False:
                out[key] = value  # not a bool: the model reports it as unknown
        elif key in _SPECIAL:
            _SPECIAL[key](run, data, out, value)
        elif (key in UNSUPPORTED_KEYS or key in PLUGIN_OF_KEY) and inactive(
            value, axolotl_default(key)
        ):
            continue
        else:
            out[key] = value  # unknown, refused or an active unsupported feature: reported
    return out


def plugin_feature(name: str) -> str:
    """The feature an Axolotl plugin name stands for, in words."""
    parts = name.split(".")
    return (
        f"{parts[2]} plugin"
        if len(parts) > 3 and parts[:2] == ["axolotl", "integrations"]
        else name
    )


def _refuse_values(run: _Pass, data: dict[str, Any]) -> None:
    """Values naming a feature ftctl does not train: refused by that feature's name."""
    attention = data.get("attn_implementation")
    if isinstance(attention, str) and (attention in UNSUPPORTED_ATTENTION or "/" in attention):
        feature = UNSUPPORTED_ATTENTION.get(attention, "attention kernels from the Hub")
        run.refuse(
            ("attn_implementation",),
            f"{attention}: not supported by ftctl (Axolotl's {feature})",
            "use sdpa, flash_attention_2, flash_attention_3, flex_attention or eager",
        )
        del data["attn_implementation"]
    optimizer = data.get("optimizer")
    if isinstance(optimizer, str) and optimizer in AXOLOTL_OPTIMIZERS:
        run.refuse(
            ("optimizer",),
            f"{optimizer}: not supported by ftctl (Axolotl's own optimizers)",
            "use an optimizer transformers provides, e.g. adamw_torch_fused",
        )
        del data["optimizer"]
    plugins = data.get("plugins")
    if isinstance(plugins, list):
        kept = []
        for i, name in enumerate(plugins):
            if not isinstance(name, str) or name in KNOWN_PLUGINS:
                kept.append(name)
            elif name in PLUGINS:
                run.refuse(
                    ("plugins", i),
                    f"not supported by ftctl (Axolotl's {plugin_feature(name)})",
                    "remove it",
                )
            else:
                run.refuse(
                    ("plugins", i),
                    f"unknown plugin '{name[:60]}'",
                    "ftctl never imports code named in a recipe; known plugins: "
                    + ", ".join(sorted(KNOWN_PLUGINS)),
                )
        data["plugins"] = kept


def _merged(earlier: Any, value: Any) -> Any:
    """A block given both directly and through a mapped key written above it."""
    if isinstance(earlier, dict) and isinstance(value, dict):
        return {**value, **earlier}
    return value


def _move_to(
    run: _Pass, data: dict[str, Any], out: dict[str, Any], key: str, target: str, value: Any
) -> None:
    if target in data and data[target] is not None and data[target] != value:
        run.refuse((key,), f"means {target}, which is also set", f"keep only {target}")
        return
    out[target] = value
    run.move((key,), (target,))


def _hub_model_id(run: _Pass, data: dict[str, Any], out: dict[str, Any], value: Any) -> None:
    """``hub_model_id`` is the publish target unless ftctl.publish says otherwise."""
    block = data.get("ftctl")
    publish = block.get("publish") if isinstance(block, dict) else None
    target = f"hf://{value}"
    if publish is not None and publish != target:
        run.refuse(
            ("hub_model_id",),
            f"conflicts with ftctl.publish: {publish}",
            "keep one publish target: remove hub_model_id or make them agree",
        )
        return
    if not isinstance(block, dict) and block is not None:
        return  # ftctl: is not a mapping; the model reports that
    merged = dict(block or {})
    merged["publish"] = target
    out["ftctl"] = merged
    run.move(("hub_model_id",), ("ftctl", "publish"))


def _fsdp_version(run: _Pass, data: dict[str, Any], out: dict[str, Any], value: Any) -> None:
    """Top-level ``fsdp_version`` is ``fsdp_config.fsdp_version``."""
    config = data.get("fsdp_config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        return
    inner = config.get("fsdp_version", config.get("version"))
    if inner is not None and inner != value:
        run.refuse(("fsdp_version",), f"conflicts with fsdp_config version {inner}", "keep one")
        return
    merged = {**config, "fsdp_version": value}
    merged.pop("version", None)
    out["fsdp_config"] = merged
    run.move(("fsdp_version",), ("fsdp_config", "fsdp_version"))


def _revision_later(run: _Pass, data: dict[str, Any], out: dict[str, Any], value: Any) -> None:
    """Read by :func:`_revision_of_model` once base_model is known."""


def _revision_of_model(run: _Pass, data: dict[str, Any], out: dict[str, Any]) -> None:
    """``revision_of_model`` (alias ``model_revision``) is the ``@revision`` of base_model."""
    given = [k for k in REVISION_KEYS if data.get(k) is not None]
    if not given:
        return
    key = given[0]
    revision, base = data[key], out.get("base_model")
    if len(given) > 1 and data[given[1]] != revision:
        run.refuse((given[1],), f"conflicts with {key}", "keep one")
        return
    if not isinstance(revision, str) or not revision:
        run.refuse((key,), "must be a branch, tag or commit (a string)", "quote it")
        return
    if not isinstance(base, str):
        return  # base_model missing or not a string: the model reports it
    if base.startswith(("recipe:", "./", "../", "/", "~")):
        run.refuse((key,), "base_model is not a Hub model, so it has no revision", "remove it")
        return
    name, at, written = base.partition("@")
    if at and written != revision:
        run.refuse((key,), f"conflicts with base_model's @{written}", "keep one")
        return
    out["base_model"] = f"{name}@{revision}"


_SPECIAL = {
    "hub_model_id": _hub_model_id,
    "fsdp_version": _fsdp_version,
    "model_revision": _revision_later,
    "revision_of_model": _revision_later,
}
REVISION_KEYS = ("revision_of_model", "model_revision")


def _fsdp_config(run: _Pass, config: dict[str, Any]) -> dict[str, Any]:
    """FSDP2 spells the keys without the ``fsdp_`` prefix; both mean the same setting."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if value is None:
            continue
        full = "fsdp_version" if key == "version" else key
        if isinstance(key, str) and not key.startswith("fsdp_") and key != "version":
            full = f"fsdp_{key}"
        if full != key:
            if full in config and config[full] is not None and config[full] != value:
                run.refuse(("fsdp_config", key), f"conflicts with {full}", "keep one")
                continue
            run.move(("fsdp_config", key), ("fsdp_config", full))
        out[full] = value
    return out


def _dataset(run: _Pass, where: KeyPath, entry: dict[str, Any]) -> dict[str, Any]:
    from ftctl.recipe.keys import DATASET_UNSUPPORTED

    out: dict[str, Any] = {}
    for key, value in entry.items():
        if value is None and key not in ("path", "type"):
            continue
        if key in DATASET_UNSUPPORTED:
            if value not in (False, [], {}):
                run.refuse(
                    (*where, key),
                    f"not supported by ftctl (Axolotl's {DATASET_UNSUPPORTED[key]})",
                    "remove it",
                )
            continue
        out[key] = value
    if isinstance(out.get("type"), str) and out["type"].startswith("sharegpt"):
        out = _sharegpt(run, where, out)
    mappings = {
        name: out.pop(f"message_field_{name}") for name in ("role", "content")
        if f"message_field_{name}" in out
    }  # fmt: skip
    if mappings and out.get("type") in ("chat_template", "chat_template.default"):
        given = out.get("message_property_mappings")
        base = dict(given) if isinstance(given, dict) else {}
        out["message_property_mappings"] = {**mappings, **base}
        for name in mappings:
            run.move((*where, f"message_field_{name}"), (*where, "message_property_mappings", name))
    elif mappings:
        out.update({f"message_field_{k}": v for k, v in mappings.items()})  # reported
    return out


def _sharegpt(run: _Pass, where: KeyPath, entry: dict[str, Any]) -> dict[str, Any]:
    """Axolotl's own migration: sharegpt rows through type: chat_template."""
    out = {k: v for k, v in entry.items() if k != "conversation"}
    out["type"] = "chat_template"
    out.setdefault("field_messages", "conversations")
    out.setdefault("message_property_mappings", dict(SHAREGPT_MAPPINGS))
    out.setdefault("roles", {k: list(v) for k, v in SHAREGPT_ROLES.items()})
    if "conversation" in entry and "chat_template" not in entry:
        out["chat_template"] = entry["conversation"]
        run.move((*where, "conversation"), (*where, "chat_template"))
    return out
