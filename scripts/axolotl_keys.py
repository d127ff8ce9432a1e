"""Generate ftctl/recipe/axolotl_schema.py: every key of Axolotl's input schema, with its default.

    python scripts/axolotl_keys.py PATH/TO/axolotl/utils/schemas [--version 0.19.0] [--out FILE]

Reads Axolotl's pydantic schema modules as text (``ast``, never importing them)
and writes the key names and their defaults as plain data: nothing of Axolotl's
code or descriptions is copied. ftctl/recipe/keys.py classifies every key
listed; tests/recipe/test_keys.py fails when the two disagree. Re-run it when
moving to a newer Axolotl, then classify the keys it adds.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path
from typing import Any

WIDTH = 99
NO_DEFAULT = "<computed>"  # a default_factory or an expression the schema computes

# (table name in the output, model class, what the table holds)
TABLES = (
    ("TOP_LEVEL", "AxolotlInputConfig", "top-level keys"),
    ("SFT_DATASET", "SFTDataset", "keys of a datasets: entry"),
    ("FSDP_CONFIG", "FSDPConfig", "keys of fsdp_config: (without the fsdp_ prefix)"),
)


def _classes(schemas: Path) -> dict[str, ast.ClassDef]:
    found: dict[str, ast.ClassDef] = {}
    for path in sorted(schemas.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, node)
    return found


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return None
    try:
        value = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return NO_DEFAULT
    try:
        json.dumps(value)
    except TypeError:
        return NO_DEFAULT
    return value


def _default(value: ast.expr | None) -> Any:
    """Axolotl's default of one field, or NO_DEFAULT; ``Field(...)`` is looked into."""
    if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "Field":
        keywords = {k.arg: k.value for k in value.keywords if k.arg}
        if "default_factory" in keywords:
            return NO_DEFAULT
        if "default" in keywords:
            return _literal(keywords["default"])
        return _literal(value.args[0]) if value.args else None
    return _literal(value)


def _names(call: ast.expr | None) -> list[str]:
    """The aliases a ``Field(alias=..., validation_alias=AliasChoices(...))`` accepts."""
    if not isinstance(call, ast.Call):
        return []
    out: list[str] = []
    for keyword in call.keywords:
        if keyword.arg == "alias" and isinstance(keyword.value, ast.Constant):
            out.append(str(keyword.value.value))
        if keyword.arg == "validation_alias" and isinstance(keyword.value, ast.Call):
            out.extend(str(a.value) for a in keyword.value.args if isinstance(a, ast.Constant))
    return out


def fields(classes: dict[str, ast.ClassDef], name: str) -> dict[str, Any]:
    """Every field of class ``name`` and its schema bases, as key -> default."""
    node = classes[name]
    out: dict[str, Any] = {}
    for base in node.bases:
        base_name = getattr(base, "id", "")
        if base_name in classes:
            out.update(fields(classes, base_name))
    for stmt in node.body:
        if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
            continue
        key = stmt.target.id
        if key.startswith("_") or key == "model_config":
            continue
        aliases = _names(stmt.value)
        default = _default(stmt.value)
        # A field with an alias is read under the alias (model_type, model_revision, ...).
        for spelled in aliases or [key]:
            out[spelled] = default
    return out


def plugins(integrations: Path) -> dict[str, dict[str, Any]]:
    """Each plugin's dotted name -> the keys its ``*Args`` models add, with defaults."""
    out: dict[str, dict[str, Any]] = {}
    for folder in sorted(p for p in integrations.iterdir() if p.is_dir()):
        classes = _classes(folder)
        names = [
            c.name
            for c in classes.values()
            if any(getattr(b, "id", "") == "BasePlugin" for b in c.bases)
        ]
        keys: dict[str, Any] = {}
        # The plugin's own models: *Args, or *Config when no *Args exists (SwanLab).
        models = [c for c in classes if c.endswith("Args")] or [
            c for c in classes if c.endswith("Config") and (folder / "args.py").exists()
        ]
        for name in sorted(models):
            keys.update(fields(classes, name))
        for name in names:
            out[f"axolotl.integrations.{folder.name}.{name}"] = keys
    return out


def _packed(entries: list[str], indent: str) -> list[str]:
    """Entries several to a line, so the module stays short enough to read."""
    lines: list[str] = []
    for entry in entries:
        if lines and len(lines[-1]) + 1 + len(entry) <= WIDTH:
            lines[-1] += " " + entry
        else:
            lines.append(indent + entry)
    return lines


def render(
    tables: dict[str, dict[str, Any]], plugin_keys: dict[str, dict[str, Any]], version: str
) -> str:
    """The generated module's text."""
    lines = [
        f'"""Every key of Axolotl {version}\'s input schema and its default (generated data).',
        "",
        "Written by scripts/axolotl_keys.py from Axolotl's schema files; do not edit by hand.",
        f"A default of {NO_DEFAULT!r} is one the schema computes. ftctl/recipe/keys.py",
        "classifies every key listed here.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "# fmt: off",
        "",
        f"AXOLOTL_VERSION = {version!r}",
        f"COMPUTED = {NO_DEFAULT!r}",
    ]
    for (table, _, what), keys in zip(TABLES, tables.values(), strict=True):
        lines += ["", f"# {what}", f"{table}: dict[str, object] = {{"]
        lines += _packed([f"{key!r}: {keys[key]!r}," for key in sorted(keys)], "    ")
        lines.append("}")
    lines += ["", "# each plugin Axolotl ships -> the keys it adds, with their defaults"]
    lines.append("PLUGINS: dict[str, dict[str, object]] = {")
    for plugin in sorted(plugin_keys):
        keys = plugin_keys[plugin]
        lines.append(f"    {plugin!r}: {{")
        lines += _packed([f"{key!r}: {keys[key]!r}," for key in sorted(keys)], "        ")
        lines.append("    },")
    lines += ["}", "# fmt: on"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, read the schema, write the module."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("schemas", type=Path, help="axolotl/utils/schemas of an unpacked wheel")
    parser.add_argument("--version", default="0.19.0")
    parser.add_argument("--out", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    classes = _classes(args.schemas)
    tables = {}
    for table, model, _ in TABLES:
        keys = fields(classes, model)
        if table == "FSDP_CONFIG":
            keys = {k.removeprefix("fsdp_"): v for k, v in keys.items()}
        tables[table] = keys
    text = render(tables, plugins(args.schemas.parent.parent / "integrations"), args.version)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
