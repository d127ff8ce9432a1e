"""Property tests: no YAML document or recipe mutation produces a traceback.

Anything a user can write must end as a clean result or an FtctlError with a
position; any other exception is a bug.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from ftctl.errors import FtctlError, Problem
from ftctl.recipe.load import validate_document
from ftctl.recipe.model import Recipe
from ftctl.yamlio import decode_text, parse_yaml
from tests.conftest import REPO

SEED_TEXT = (REPO / "examples" / "llama3-8b-qlora-alpaca.yaml").read_text(encoding="utf-8")
SEED = YAML(typ="safe").load(SEED_TEXT)
FIELDS = sorted(Recipe.model_fields)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_text(text: str) -> list[Problem]:
    """Parse and validate; only FtctlError may escape, and each problem has a position."""
    problems: list[Problem] = []
    try:
        validate_document(parse_yaml(text, "fuzz.yaml"), problems)
    except FtctlError as exc:
        problems = exc.problems
    for problem in problems:
        assert problem.location is not None and problem.location.file == "fuzz.yaml"
        assert "\n" not in problem.render()
    return problems


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    check_text(text)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes(raw: bytes) -> None:
    try:
        text = decode_text(raw, "fuzz.yaml")
    except FtctlError:
        return
    check_text(text)


@FUZZ
@given(values)
def test_random_documents(document: Any) -> None:
    check_text(json.dumps(document))


def _mutate(data: dict[str, Any], ops: list[tuple[int, int, str, Any]]) -> dict[str, Any]:
    """Apply each op: a kind, an index choosing the key (drawn by hypothesis, so a failing
    example replays exactly), a key or text, and a value."""
    data = dict(data)
    for kind, index, key, value in ops:
        keys = sorted(data)
        if kind == 0 and keys:  # delete a key
            data.pop(keys[index % len(keys)], None)
        elif kind == 1 and keys:  # replace a value
            data[keys[index % len(keys)]] = value
        elif kind == 2:  # add a known key with an arbitrary value
            data[FIELDS[index % len(FIELDS)]] = value
        elif kind == 3:  # add an unknown key
            data[key or "x"] = value
        elif kind == 4 and keys:  # typo in a key
            old = keys[index % len(keys)]
            data[old[:-1] + (key[:1] or "z")] = data.pop(old)
        elif kind == 5:  # mutate the dataset entry
            data["datasets"] = [{**SEED["datasets"][0], key or "type": value}]
    return data


OPS = st.tuples(st.integers(0, 5), st.integers(0, 255), st.text(max_size=12), values)


@FUZZ
@given(st.lists(OPS, max_size=6))
def test_mutated_seed_recipe(ops: list[tuple[int, int, str, Any]]) -> None:
    check_text(json.dumps(_mutate(SEED, ops)))


def test_a_mutation_depends_only_on_its_drawn_data() -> None:
    """The key an op changes is chosen by its index, never by the process's string hash."""
    keys = sorted(SEED)
    dropped = _mutate(SEED, [(0, 3, "a", None)])
    assert keys[3] not in dropped and dropped == _mutate(SEED, [(0, 3, "b", None)])
    assert _mutate(SEED, [(2, 11, "", "v")])[FIELDS[11 % len(FIELDS)]] == "v"


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(SEED_TEXT)), st.text(max_size=4)), max_size=5))
def test_text_edits_of_seed_recipe(edits: list[tuple[int, str]]) -> None:
    text = SEED_TEXT
    for position, insert in edits:
        text = text[:position] + insert + text[position + len(insert) :]
    check_text(text)


def test_seed_recipe_unmutated_is_valid() -> None:
    assert check_text(SEED_TEXT) == []


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("ab:- \n[]{}#'\"<>|,.0129")), max_size=120))
def test_c_and_python_parsers_agree(text: str) -> None:
    """Where libyaml (the fast path) and ruamel's Python parser both accept a document, they
    read the same data.

    Where libyaml fails, parse_yaml takes the Python parser's verdict. libyaml accepts a few
    malformed block-scalar headers the Python parser refuses (``>#`` reads as ''); those are
    not compared. Left out of the alphabet: the non-specific tag ``!`` on an empty value
    ('' with libyaml, null in Python) and anchors, whose names may contain ':' in Python's
    lexer but not in libyaml's (``&0:``). Aliases are covered by tests/test_yamlio.py.
    """
    from ruamel.yaml.error import YAMLError

    from ftctl.yamlio import _Converter, compose

    def outcome(pure: bool) -> tuple[str, object]:
        try:
            nodes = compose(text, pure=pure)
        except (YAMLError, RecursionError):
            return "error", None
        try:
            return "ok", [_Converter("f").convert(n, (), 0, ()) for n in nodes]
        except FtctlError as exc:
            return "ftctl", str(exc)

    fast, slow = outcome(pure=False), outcome(pure=True)
    if "error" not in (fast[0], slow[0]):
        assert fast == slow
