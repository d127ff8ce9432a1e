"""Load YAML safely into plain data that remembers where every value came from.

ftctl reads YAML at the node level (ruamel.yaml's composer) instead of
constructing objects, for three reasons: every key and value keeps its
``line:col`` for error messages; duplicate keys, non-string keys and custom
tags become clear errors instead of silent overwrites or arbitrary objects;
and alias/merge-key expansion is bounded, so an alias bomb is an error and
not an out-of-memory kill.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftctl.errors import ConfigError, Location, excerpt
from ftctl.files import UnreadableInput, read_regular

if TYPE_CHECKING:
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

    from ftctl.cache.parse import ParseCache

# ruamel.yaml is imported when a document is first parsed, not with this module: a warm
# `ftctl plan` takes every recipe from its memo, and importing ruamel costs ~10 ms.

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}
_MERGE_TAG = f"{_CORE}merge"

Path_ = tuple[str | int, ...]
_DECIMAL_INT = re.compile(r"^[-+]?[0-9]+$")
_MAX_DIGITS = 4300  # sys.int_info.default_max_str_digits
_DECIMAL_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


@lru_cache(maxsize=1)
def _constructor() -> Any:
    """ruamel's YAML 1.2 scalar constructor, built once (building one costs ~0.1 ms)."""
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).constructor


@dataclass(frozen=True)
class Document:
    """Plain data (dict/list/str/int/float/bool/None) plus the position of every part."""

    data: Any
    file: str
    value_positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    from_cache: bool = False  # positions unknown: parse again before reporting a problem

    def location(self, path: Path_, *, key: bool = False) -> Location:
        """Where ``path`` is written (its key when ``key``); else the nearest written ancestor."""
        pos = self.key_positions.get(path) if key else None
        end = len(path)
        while pos is None and end >= 0:
            pos = self.value_positions.get(path[:end])
            end -= 1
        line, col = pos if pos is not None else (1, 1)
        return Location(self.file, line, col)


def display_path(path: Path, root: Path | None = None) -> str:
    """A path as the user should read it: relative to ``root`` (or cwd) when inside it."""
    base = root if root is not None else Path.cwd()
    try:
        return os.path.relpath(path, base) if path.is_absolute() else str(path)
    except ValueError:  # different drive on Windows
        return str(path)


def read_bytes(path: Path, shown: str) -> bytes:
    """A YAML file's bytes, refusing missing, unreadable, oversized or non-regular files."""
    try:
        return read_regular(
            path, MAX_FILE_BYTES, shown, expected="a YAML file",
            hint="a recipe is a small config; keep data in datasets, not in YAML",
        )  # fmt: skip
    except UnreadableInput as exc:
        raise ConfigError(
            exc.problem.message, location=exc.problem.location, hint=exc.problem.hint
        ) from None


def decode_text(raw: bytes, shown: str) -> str:
    """UTF-8 (an optional BOM is dropped); an invalid byte is reported by line and column."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise ConfigError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            location=Location(shown, line, col),
            hint="save the file as UTF-8",
        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ConfigError(
            "contains a NUL character", location=Location(shown, line), hint="save it as UTF-8 text"
        )
    return text


def load_yaml_file(
    path: Path, shown: str | None = None, cache: ParseCache | None = None
) -> Document:
    """Read and parse one YAML file holding one document (from ``cache`` when unchanged)."""
    shown = shown if shown is not None else display_path(path)
    raw = read_bytes(path, shown)
    if cache is None:
        return parse_yaml(decode_text(raw, shown), shown)
    key = cache.key(raw)
    hit, data = cache.get(key)
    if hit:
        return Document(data, shown, from_cache=True)
    document = parse_yaml(decode_text(raw, shown), shown)
    cache.put(key, document.data)
    return document


def compose(text: str, *, pure: bool = False) -> list[Node]:
    """The documents of ``text`` as node trees (libyaml's parser when installed)."""
    from ruamel.yaml import YAML

    return [n for n in YAML(typ="safe", pure=pure).compose_all(text) if n is not None]


def nesting_bound(text: str) -> int:
    """An upper bound on how deeply ``text`` can nest.

    Flow collections nest at most once per ``[`` or ``{``; block collections once per column
    of indentation, plus once per ``- `` or ``? `` written on one line (``- - - x``).
    """
    flow = text.count("[") + text.count("{")
    block = max(
        (
            len(line) - len(line.lstrip(" ")) + line.count("- ") + line.count("? ")
            for line in text.splitlines()
        ),
        default=0,
    )
    return flow + block


# libyaml composes recursively in C: tens of thousands of nesting levels overflow the C stack
# (a segfault, not an exception). Text that could nest this deeply goes to the Python parser,
# whose recursion limit makes it an error; every real recipe is far below the bound.
C_COMPOSER_SAFE = 10_000


def parse_yaml(text: str, shown: str) -> Document:
    """Parse YAML text holding exactly one document into a :class:`Document`."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        try:
            # libyaml (ruamel.yaml.clib) composes ~7x faster than the pure-Python parser.
            nodes = compose(text, pure=nesting_bound(text) > C_COMPOSER_SAFE)
        except YAMLError:
            # Errors are rare: re-parse in Python for its clearer messages (tabs, context).
            nodes = compose(text, pure=True)
    except MarkedYAMLError as exc:
        raise _marked_error(exc, shown) from None
    except YAMLError as exc:
        raise ConfigError(
            f"invalid YAML: {_one_line(str(exc))}", location=Location(shown)
        ) from None
    except RecursionError:
        raise ConfigError(
            f"nested more than {MAX_DEPTH} levels deep", location=Location(shown)
        ) from None
    if not nodes:
        return Document(None, shown)
    if len(nodes) > 1:
        second = nodes[1].start_mark
        raise ConfigError(
            "more than one YAML document (a second '---')",
            location=Location(shown, second.line + 1, second.column + 1),
            hint="put one recipe in each file",
        )
    converter = _Converter(shown)
    data = converter.convert(nodes[0], (), 0, ())
    return Document(data, shown, converter.value_positions, converter.key_positions)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _marked_error(exc: MarkedYAMLError, shown: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    loc = Location(shown, mark.line + 1, mark.column + 1) if mark is not None else Location(shown)
    problem = _one_line(exc.problem or exc.context or "invalid YAML")
    if "'\\t'" in problem:
        return ConfigError(
            "tab character in indentation", location=loc, hint="indent YAML with spaces only"
        )
    message = f"invalid YAML: {problem}"
    start = exc.context_mark
    if (
        exc.context
        and start is not None
        and mark is not None
        and (start.line, start.column) != (mark.line, mark.column)
    ):
        # Point also at where the unfinished construct began: that is usually the mistake.
        message += (
            f" ({_one_line(exc.context)} started at line {start.line + 1}, "
            f"column {start.column + 1})"
        )
    return ConfigError(message, location=loc, hint="check the indentation and quoting")


class _Converter:
    """Turns composed nodes into plain data, recording positions and enforcing limits."""

    def __init__(self, shown: str) -> None:
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

        self._mapping_node: type[MappingNode] = MappingNode
        self._scalar_node: type[ScalarNode] = ScalarNode
        self._sequence_node: type[SequenceNode] = SequenceNode
        self.shown = shown
        self.count = 0
        self.value_positions: dict[Path_, tuple[int, int]] = {}
        self.key_positions: dict[Path_, tuple[int, int]] = {}

    def _loc(self, node: Node) -> Location:
        return Location(self.shown, node.start_mark.line + 1, node.start_mark.column + 1)

    def convert(self, node: Node, path: Path_, depth: int, stack: tuple[int, ...]) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise ConfigError(
                f"document expands to more than {MAX_NODES} values (alias or merge-key bomb?)",
                location=self._loc(node),
                hint="remove the anchors and aliases",
            )
        if depth > MAX_DEPTH:
            raise ConfigError(f"nested more than {MAX_DEPTH} levels deep", location=self._loc(node))
        if id(node) in stack:
            raise ConfigError(
                "recursive alias: a value contains itself",
                location=self._loc(node),
                hint="remove the alias",
            )
        self.value_positions.setdefault(
            path, (node.start_mark.line + 1, node.start_mark.column + 1)
        )
        if isinstance(node, self._mapping_node):
            return self._mapping(node, path, depth, (*stack, id(node)))
        if isinstance(node, self._sequence_node):
            self._check_tag(node, f"{_CORE}seq")
            return [
                self.convert(item, (*path, i), depth + 1, (*stack, id(node)))
                for i, item in enumerate(node.value)
            ]
        if isinstance(node, self._scalar_node):
            return self._scalar(node)
        raise ConfigError("unexpected YAML node", location=self._loc(node))

    def _check_tag(self, node: Node, expected: str) -> None:
        if node.tag != expected:
            shown = str(node.tag).replace(_CORE, "!!", 1)
            raise ConfigError(
                f"YAML tag '{shown}' is not allowed",
                location=self._loc(node),
                hint="remove the tag; recipes hold plain values only",
            )

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag not in _SCALAR_TAGS:
            self._check_tag(node, f"{_CORE}str")
        if node.tag == f"{_CORE}str":
            return str(node.value)
        if node.tag == f"{_CORE}timestamp":
            # A date-like value (a revision tag such as 2024-06-01) stays the text as written.
            return str(node.value)
        text = str(node.value)
        try:
            value = self._number_or_bool(node, text)
        except (ValueError, KeyError, TypeError, ArithmeticError):
            kind = str(node.tag).replace(_CORE, "")
            raise ConfigError(
                f"{excerpt(text)} is not a valid {kind}"
                + (f" (more than {_MAX_DIGITS} digits)" if len(text) > _MAX_DIGITS else ""),
                location=self._loc(node),
                hint="write a plain number, true or false, or quote the text",
            ) from None
        return value

    def _number_or_bool(self, node: ScalarNode, text: str) -> Any:
        # Plain decimals are most numbers in a recipe; everything else goes to ruamel's constructor.
        if len(text) > _MAX_DIGITS:  # Python refuses to convert longer digit strings
            raise ValueError(text)
        if node.tag == f"{_CORE}int" and _DECIMAL_INT.match(text):
            return int(text)
        if node.tag == f"{_CORE}float" and _DECIMAL_FLOAT.match(text):
            return float(text)
        value = _constructor().construct_object(node, deep=True)
        if node.tag == f"{_CORE}bool":
            return bool(value)
        if node.tag == f"{_CORE}int":
            return int(value)
        if node.tag == f"{_CORE}float":
            return float(value)
        return None

    def _mapping(self, node: MappingNode, path: Path_, depth: int, stack: tuple[int, ...]) -> Any:
        self._check_tag(node, f"{_CORE}map")
        own: dict[str, Any] = {}
        seen: dict[str, int] = {}
        merged: list[dict[str, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_sources(value_node, path, depth, stack))
                continue
            key = self._key(key_node)
            if key in seen:
                raise ConfigError(
                    f"duplicate key '{key}' (first written on line {seen[key]})",
                    location=self._loc(key_node),
                    hint="remove one of them",
                )
            seen[key] = key_node.start_mark.line + 1
            child = (*path, key)
            self.key_positions[child] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            own[key] = self.convert(value_node, child, depth + 1, stack)
        if not merged:
            return own
        # YAML merge: keys written here win over merged ones; earlier sources win over later.
        result: dict[str, Any] = {}
        for source in reversed(merged):
            result.update(source)
        result.update(own)
        return result

    def _merge_sources(
        self, node: Node, path: Path_, depth: int, stack: tuple[int, ...]
    ) -> Iterator[dict[str, Any]]:
        sources = node.value if isinstance(node, self._sequence_node) else [node]
        for source in sources:
            if not isinstance(source, self._mapping_node):
                raise ConfigError(
                    "a merge key '<<' needs a mapping or a list of mappings",
                    location=self._loc(source),
                )
            value = self.convert(source, path, depth + 1, stack)
            yield value

    def _key(self, node: Node) -> str:
        if not isinstance(node, self._scalar_node) or node.tag != f"{_CORE}str":
            shown = node.value if isinstance(node, self._scalar_node) else "a collection"
            raise ConfigError(
                f"key {shown!r} is not a string",
                location=self._loc(node),
                hint="quote the key or rename it",
            )
        return str(node.value)
