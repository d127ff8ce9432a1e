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
