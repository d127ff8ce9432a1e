"""The fuzzing tier: generated YAML and JSON, hostile in shape, never crash the parsers.

The inputs are parsed in a subprocess, so a crash in C (the libyaml composer, the
JSON decoder) shows as a failed test instead of taking the test run down. Every
input must either parse or be refused with ftctl's own error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PARSE_ALL = """
import sys
from pathlib import Path
from ftctl.canonical import strict_loads
from ftctl.errors import FtctlError
from ftctl.yamlio import parse_yaml

for path in sorted(Path(sys.argv[1]).iterdir()):
    text = path.read_text(encoding="utf-8", errors="surrogatepass")
    try:
        if path.suffix == ".json":
            strict_loads(text)
        else:
            parse_yaml(text, path.name)
    except FtctlError as exc:
        assert exc.problems[0].render().count("\\n") == 0
    print("ok", path.name, flush=True)
"""

# Pieces that stress the parsers: deep openers, anchors and aliases, tags, odd scalars.
YAML_PIECES = st.sampled_from(
    ["[", "]", "{", "}", "- ", "? ", ": ", "&a ", "*a ", "!!int ", "!!str ", "'", '"', "\\", "#", "\n",
     "  ", "\t", ",", "1e9999", "9" * 50, "~", "null", "<<: ", "---\n", "x", "\x00", "\ufeff"]
)  # fmt: skip
JSON_PIECES = st.sampled_from(
    [
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        '"a"',
        '"',
        "1",
        "-0",
        "1e400",
        "NaN",
        "null",
        "true",
        "\\u0000",
        " ",
    ]
)


def deep(opener: str, closer: str, depth: int) -> str:
    return opener * depth + closer * depth


@st.composite
def yaml_text(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["pieces", "deep-flow", "deep-block", "deep-seq"]))
    if kind == "pieces":
        return "".join(draw(st.lists(YAML_PIECES, max_size=200)))
    depth = draw(st.integers(min_value=100, max_value=60_000))
    if kind == "deep-flow":
        return "a: " + deep("[", "]", depth) + "\n"
    if kind == "deep-block":
        return "".join(" " * i + f"k{i}:\n" for i in range(min(depth, 1_500))) + " " * 1_500 + "x\n"
    return "a: " + "- " * depth + "x\n"


@st.composite
def json_text(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return "".join(draw(st.lists(JSON_PIECES, max_size=200)))
    depth = draw(st.integers(min_value=10, max_value=100_000))
    return json.dumps({"payload": 5})[:-1] + ', "x": ' + deep("[", "]", depth) + "}"


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    yamls=st.lists(yaml_text(), min_size=4, max_size=8),
    jsons=st.lists(json_text(), min_size=4, max_size=8),
)
def test_no_input_crashes_a_parser(
    tmp_path_factory: object, yamls: list[str], jsons: list[str]
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        names = []
        for i, text in enumerate(yamls):
            (root / f"y{i:02d}.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
            names.append(f"y{i:02d}.yaml")
        for i, text in enumerate(jsons):
            (root / f"j{i:02d}.json").write_text(text, encoding="utf-8", errors="surrogatepass")
            names.append(f"j{i:02d}.json")
        done = subprocess.run(
            [sys.executable, "-c", PARSE_ALL, str(root)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, f"rc={done.returncode}: {done.stderr[-2000:]}"
    assert sorted(line.split()[1] for line in done.stdout.splitlines()) == sorted(names)


# Pieces of paths a recipe may write: climbing out, absolute roots, home, symlinks planted
# in the workspace (in, out, looping), and characters no path should hold.
PATH_PIECES = st.sampled_from(
    ["..", ".", "/", "~", "~root", "data", "in", "out", "loop", "x.jsonl", "\x00", "\n", "\x1b[2J",
     "\u202e", " ", "//", "/etc", "/proc/self", "\\", "%s", "$HOME"]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(PATH_PIECES, min_size=1, max_size=12), data_file=st.booleans())
def test_no_path_leads_outside_unrefused(
    confined_root: tuple[Path, Path], pieces: list[str], data_file: bool
) -> None:
    """Whatever a recipe writes, a path is either refused in one printable line or lies inside."""
    import os

    from ftctl.workspace import Confinement, data_file_refusal, resolve_path

    root, outside = confined_root
    text = "".join(pieces)
    refused = data_file_refusal(text) if data_file else None
    refused = refused or Confinement(root).refusal(text)
    if refused is not None:
        for part in refused:
            assert part.isprintable() and "hf_" not in part
        return
    real = os.path.realpath(resolve_path(root, text))
    assert real == str(root) or real.startswith(f"{root}/"), (text, real)
    assert not real.startswith(str(outside))


@pytest.fixture(scope="module")
def confined_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A workspace holding symlinks that stay in, lead out and loop; the directory beside it."""
    top = tmp_path_factory.mktemp("confined").resolve()
    root, outside = top / "ws", top / "outside"
    (root / "data").mkdir(parents=True)
    outside.mkdir()
    (outside / "x.jsonl").write_text("hf_SECRET\n")
    (root / "in").symlink_to("data")
    (root / "out").symlink_to(outside)
    (root / "data" / "out").symlink_to(outside)
    (root / "loop").symlink_to("loop")
    return root, outside
