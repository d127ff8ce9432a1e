"""Turn pydantic validation errors into one-line problems a user can act on.

pydantic reports *what* failed with a ``loc`` that includes union branches and
tags; users need *where* in their file (``line:col``) and *what to write*.
This module does that translation for every ftctl file format.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ftctl.errors import Problem
from ftctl.yamlio import Document

KeyPath = tuple[str | int, ...]
KeyHook = Callable[[str], "tuple[str, str] | None"]


def describe_errors(
    exc: ValidationError,
    document: Document,
    root: type[BaseModel],
    special_key: KeyHook | None = None,
    type_pointers: Mapping[str, str] | None = None,
    top_level_names: Iterable[str] = (),
) -> list[Problem]:
    """One problem per offending value of ``document``, sorted by position.

    ``special_key`` names keys the format knows but refuses (with its own
    message); ``type_pointers`` maps retired ``type:`` values to what to use;
    ``top_level_names`` are more keys a top-level typo may be meant for.
    """
    describer = _Describer(root, special_key, type_pointers or {}, frozenset(top_level_names))
    merged: dict[KeyPath, list[tuple[ErrorDetails, str, str | None]]] = {}
    key_errors: set[KeyPath] = set()
    for error in exc.errors(include_url=False):
        path = data_path(document.data, error["loc"])
        if error["type"] == "missing":
            path = (*path, error["loc"][-1])
        elif error["type"] == "union_tag_invalid":
            path = (*path, "type")
        message, hint = describer.describe(error)
        if error["type"] in ("extra_forbidden", "missing"):
            key_errors.add(path)
        merged.setdefault(path, []).append((error, message, hint))
    problems = []
    for path, entries in merged.items():
        if len(entries) > 1:
            # A union field: every branch failed; say once what the branches accept.
            wanted = list(dict.fromkeys(_expectation(error) for error, _, _ in entries))
            given = entries[0][0].get("input")
            message, hint = f"{_show(given)} is not valid; expected {' or '.join(wanted)}", None
        else:
            message, hint = entries[0][1], entries[0][2]
        location = document.location(path, key=path in key_errors)
        problems.append(Problem(message, location, path, hint))
    return sorted(problems, key=_position)


def data_path(data: Any, loc: tuple[int | str, ...]) -> KeyPath:
    """The part of pydantic's ``loc`` that exists in the data (drops union tags and branches)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        found, child = _child(node, part)
        if found:
            node = child
            path.append(part)
    return tuple(path)


def _child(node: Any, part: int | str) -> tuple[bool, Any]:
    if isinstance(node, dict) and isinstance(part, str) and part in node:
        return True, node[part]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return True, node[part]
    return False, None


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A suggestion only for a near miss: a typo, a swapped pair, a missing letter or two.

    A loose similarity score would send ``eval_max_new_tokens`` to ``special_tokens``; an edit
    distance bounded by the word's length (or a unique abbreviation) never points that far.
    """
    match = closest(word, candidates)
    return f"did you mean '{match}'?" if match else None


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate within a small edit distance of ``word`` (the nearest), or None."""
    folded = word.lower()
    limit = 1 if len(word) <= 4 else 2 if len(word) <= 9 else 3
    best: tuple[int, float, str] | None = None
    prefixed: list[str] = []
    for candidate in dict.fromkeys(candidates):
        if candidate == word:
            continue
        other = candidate.lower()
        if len(folded) >= 5 and other.startswith(folded):
            prefixed.append(candidate)
        if abs(len(other) - len(folded)) > limit:
            continue
        distance = edit_distance(folded, other, limit)
        if distance <= limit:
            # ties: the one difflib finds more alike (a shared run of letters)
            rank = (distance, -difflib.SequenceMatcher(None, folded, other).ratio(), candidate)
            best = rank if best is None or rank < best else best
    if best is not None:
        return best[2]
    return prefixed[0] if len(prefixed) == 1 else None  # adam_eps -> adam_epsilon


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a swap of neighbours counts once), capped at limit+1."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return min(previous[-1], limit + 1)


def _position(problem: Problem) -> tuple[int, int]:
    loc = problem.location
    return (loc.line or 0, loc.col or 0) if loc is not None else (0, 0)


def _show(value: Any) -> str:
    """A value as quoted in a message, cut short so one bad value is one short line."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = str(value)
    return f"'{text[:60]}...'" if len(text) > 60 else f"'{text}'"


_SIMPLE = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string (quote it)",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "finite_number": "must be a finite number",
}


def _expectation(error: ErrorDetails) -> str:
    """What one branch of a union accepts, in words."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind.startswith("bool_"):
        return "true or false"
    if kind == "literal_error":
        return " or ".join(f"'{c}'" for c in _literal_choices(str(ctx.get("expected", ""))))
    if kind.startswith("int_"):
        return "a whole number"
    if kind.startswith("float_"):
        return "a number"
    if kind == "string_type":
        return "a string"
    if kind == "string_pattern_mismatch":
        return f"a string matching {ctx.get('pattern')}"
    if kind in _SIMPLE:
        return "a value that " + _SIMPLE[kind].format(**ctx)
    return error["msg"]


def _literal_choices(expected: str) -> list[str]:
    # pydantic renders Literal choices as "'a', 'b' or 'c'"
    return [part.strip().strip("'") for part in expected.replace(" or ", ", ").split(", ") if part]


class _Describer:
    def __init__(
        self,
        root: type[BaseModel],
        special_key: KeyHook | None,
        type_pointers: Mapping[str, str],
        top_level_names: frozenset[str],
    ) -> None:
        self.root = root
        self.special_key = special_key
        self.type_pointers = type_pointers
        self.top_level_names = top_level_names

    def describe(self, error: ErrorDetails) -> tuple[str, str | None]:
        kind = error["type"]
        ctx = error.get("ctx") or {}
        given = error.get("input")
        loc = error["loc"]
        if kind == "missing":
            return "required key is missing", f"add {loc[-1]}: ..."
        if kind == "extra_forbidden":
            return self._unknown_key(str(loc[-1]), loc[:-1])
        if kind == "union_tag_invalid":
            tag = str(ctx.get("tag"))[:60]
            tags = _literal_choices(str(ctx.get("expected_tags", "")))
            if tag in self.type_pointers:
                return f"{tag} is not supported", self.type_pointers[tag]
            return f"unknown type '{tag}'", did_you_mean(
                tag, tags
            ) or f"use one of: {', '.join(tags)}"
        if kind == "union_tag_not_found":
            _, members = self._model_at(tuple(loc))
            tags = [_type_tag(m) for m in members]
            return (
                "needs a type",
                f"add type: one of {', '.join(tags)}" if tags else "add type: ...",
            )
        if kind == "literal_error":
            expected = _literal_choices(str(ctx.get("expected", "")))
            return f"{_show(given)} is not one of: {', '.join(expected)}", did_you_mean(
                str(given), expected
            )
        if kind in _SIMPLE:
            return _SIMPLE[kind].format(**ctx), None
        if kind == "value_error":
            return str(ctx.get("error", error["msg"])), None
        if kind == "string_pattern_mismatch":
            return (
                f"{_show(given)} does not have the expected form",
                f"it must match {ctx.get('pattern')}",
            )
        return error["msg"], None

    def _unknown_key(self, key: str, parent_loc: tuple[int | str, ...]) -> tuple[str, str | None]:
        special = self.special_key(key) if self.special_key else None
        if special is not None:
            return special
        model, siblings = self._model_at(parent_loc)
        fields = sorted(model.model_fields) if model is not None else []
        if not parent_loc:
            fields = sorted({*fields, *self.top_level_names})
        hint = did_you_mean(key, fields)
        if hint is None:
            owners = sorted(_type_tag(m) for m in siblings if key in m.model_fields)
            if owners:
                hint = f"only type: {' or '.join(owners)} takes it"
        return "unknown key", hint or "remove it (`ftctl schema` lists every key)"

    def _model_at(
        self, loc: tuple[int | str, ...]
    ) -> tuple[type[BaseModel] | None, list[type[BaseModel]]]:
        """The model class validating ``loc`` and, inside a tagged union, its sibling classes."""
        current: Any = self.root
        siblings: list[type[BaseModel]] = []
        for part in loc:
            if _is_model(current):
                field = current.model_fields.get(str(part))
                if field is None:
                    return None, []
                current = field.annotation
                continue
            tagged = [m for m in siblings if _type_tag(m) == part]
            if tagged:
                current = tagged[0]
                continue
            containers = [m for m in _unwrap(current) if typing.get_origin(m) in (list, dict)]
            if not containers:
                return None, []
            current = typing.get_args(containers[0])[-1]
            members = _unwrap(current)
            siblings = [m for m in members if _is_model(m)] if len(members) > 1 else []
        models = [m for m in _unwrap(current) if _is_model(m)]
        return (models[0] if len(models) == 1 else None), siblings


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _type_tag(model: type[BaseModel]) -> str:
    field = model.model_fields.get("type")
    if field is None:
        return ""
    return str(typing.get_args(field.annotation)[0])


def _unwrap(annotation: Any) -> list[Any]:
    """Strip Annotated/Optional: ``Annotated[A | B | None, ...]`` -> [A, B]."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                out.extend(_unwrap(arg))
        return out
    return [annotation]
