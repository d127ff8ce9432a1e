"""YAML loading: positions, and every input rejected at parse time."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftctl.errors import ConfigError
from ftctl.yamlio import MAX_FILE_BYTES, decode_text, load_yaml_file, parse_yaml


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "r.yaml")
    return str(info.value)


def test_plain_values_and_positions() -> None:
    doc = parse_yaml("a: 1\nb:\n  - x: 2.5\n    y: true\n  - null\nc: 'q'\n", "r.yaml")
    assert doc.data == {"a": 1, "b": [{"x": 2.5, "y": True}, None], "c": "q"}
    assert str(doc.location(("b", 0, "y"))) == "r.yaml:4:8"
    assert str(doc.location(("b", 0, "y"), key=True)) == "r.yaml:4:5"
    assert str(doc.location(("b", 1))) == "r.yaml:5:5"
    # A path that is not written falls back to its nearest written ancestor.
    assert str(doc.location(("b", 0, "missing"))) == "r.yaml:3:5"
    assert str(doc.location(("nothing",))) == "r.yaml:1:1"


def test_yaml_1_2_scalars() -> None:
    doc = parse_yaml("lr: 2e-4\nyes_word: yes\nrev: 2024-06-01\noct: 0o17\n", "r.yaml")
    assert doc.data == {"lr": 0.0002, "yes_word": "yes", "rev": "2024-06-01", "oct": 15}
    assert type(doc.data["lr"]) is float


def test_empty_document_is_none() -> None:
    assert parse_yaml("# only a comment\n", "r.yaml").data is None


def test_duplicate_key_names_both_lines() -> None:
    assert error_of("lora_r: 8\nlora_alpha: 16\nlora_r: 16\n") == (
        "r.yaml:3:1: duplicate key 'lora_r' (first written on line 1); remove one of them"
    )


def test_duplicate_key_nested() -> None:
    assert "r.yaml:3:3: duplicate key 'type'" in error_of("d:\n  type: a\n  type: b\n")


@pytest.mark.parametrize("key", ["1", "true", "null", "3.5", "[a, b]", "{a: 1}"])
def test_non_string_keys(key: str) -> None:
    message = error_of(f"{key}: value\n" if not key.startswith(("[", "{")) else f"? {key}\n: v\n")
    assert "is not a string" in message
    assert message.startswith("r.yaml:1:")


def test_quoted_number_key_is_a_string() -> None:
    assert parse_yaml('"1": x\n', "r.yaml").data == {"1": "x"}


def test_tab_indentation() -> None:
    assert error_of("a:\n\tb: 1\n") == (
        "r.yaml:2:1: tab character in indentation; indent YAML with spaces only"
    )


def test_syntax_error_has_position() -> None:
    message = error_of("a: [1, 2\nb: 3\n")
    assert message.startswith("r.yaml:")
    assert "invalid YAML" in message
    assert "\n" not in message


def test_two_documents() -> None:
    assert error_of("a: 1\n---\nb: 2\n").startswith("r.yaml:3:1: more than one YAML document")


@pytest.mark.parametrize("tag", ["!!python/object:os.system", "!custom", "!!binary", "!!set"])
def test_tags_refused(tag: str) -> None:
    assert "is not allowed" in error_of(f"a: {tag} x\n")


def test_alias_bomb() -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        levels.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    message = error_of("\n".join(levels) + "\n")
    assert "alias or merge-key bomb" in message


def test_merge_key_bomb() -> None:
    lines = ["a0: &a0 {k0: 1, k1: 2, k2: 3, k3: 4, k4: 5, k5: 6, k6: 7, k7: 8, k8: 9, k9: 10}"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i}")
        lines += [f"  x{j}: {{<<: *a{i - 1}}}" for j in range(10)]
    assert "bomb" in error_of("\n".join(lines) + "\n")


def test_recursive_alias() -> None:
    assert "recursive alias" in error_of("a: &a [1, *a]\n")


def test_deep_nesting() -> None:
    assert "nested more than" in error_of("a: " + "[" * 200 + "]" * 200 + "\n")


def test_merge_keys_follow_yaml_semantics() -> None:
    doc = parse_yaml(
        "base: &b {lr: 1, seed: 2}\nother: &o {seed: 3, x: 4}\nr:\n  <<: [*b, *o]\n  lr: 9\n",
        "r.yaml",
    )
    assert doc.data["r"] == {"lr": 9, "seed": 2, "x": 4}


def test_small_aliases_are_fine() -> None:
    doc = parse_yaml("m: &m [q_proj, v_proj]\nlora_target_modules: *m\n", "r.yaml")
    assert doc.data["lora_target_modules"] == ["q_proj", "v_proj"]


def test_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: " + b"x" * MAX_FILE_BYTES + b"\n")
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        load_yaml_file(path, "big.yaml")


def test_not_utf8_names_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        decode_text(b"a: 1\nb: caf\xe9\n", "r.yaml")
    assert str(info.value) == "r.yaml:2:7: not valid UTF-8 (byte 0xe9); save the file as UTF-8"


def test_bom_is_accepted() -> None:
    assert decode_text("\ufeffa: 1\n".encode(), "r.yaml") == "a: 1\n"


def test_nul_refused() -> None:
    with pytest.raises(ConfigError, match="NUL"):
        decode_text(b"a: 1\nb: \x00\n", "r.yaml")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_yaml_file(tmp_path / "nope.yaml", "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_yaml_file(tmp_path, "dir")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seed: !!int abc\n", "r.yaml:1:7: 'abc' is not a valid int"),
        ("lr: !!float x\n", "r.yaml:1:5: 'x' is not a valid float"),
        ("flag: !!bool maybe\n", "r.yaml:1:7: 'maybe' is not a valid bool"),
        (
            "seed: " + "9" * 5000 + "\n",
            "r.yaml:1:7: '" + "9" * 40 + "...' is not a valid int (more than 4300 digits)",
        ),
    ],
    ids=["int", "float", "bool", "digits"],
)
def test_tagged_and_oversized_scalars_are_located_problems(text: str, message: str) -> None:
    assert error_of(text).startswith(message)


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 50_000 + "]" * 50_000,
        "a: " + "- " * 300_000 + "x",
        "{a: " * 30_000 + "1" + "}" * 30_000,
    ],
)
def test_nesting_that_would_overflow_the_c_composer_is_an_error(tmp_path: Path, text: str) -> None:
    # In a subprocess: a C stack overflow is a segfault, which would take the test runner down.
    import subprocess
    import sys

    recipe = tmp_path / "deep.yaml"
    recipe.write_text(text + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "ftctl", "validate", str(recipe)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr[-500:]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout.count("\n") == 1 and "deep.yaml" in proc.stdout


def test_ruamel_is_imported_only_to_parse() -> None:
    # A warm plan takes every recipe from its memo: importing this module must not cost ruamel.
    import subprocess
    import sys

    probe = (
        "import sys, ftctl.yamlio as y\n"
        "assert not [m for m in sys.modules if m.startswith('ruamel')], 'imported'\n"
        "assert y.parse_yaml('a: [1]', 'f').data == {'a': [1]}\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
