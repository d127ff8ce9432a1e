"""ftctl's model card for a published adapter: Hub metadata, a short body, a provenance table.

The card is a function of the statement and the manifest digest alone, so the same
run always publishes the same bytes. Everything taken from the statement is
escaped: YAML values are double-quoted scalars with every non-printable character
escaped, and text in the body and the table escapes Markdown and HTML, so no recipe
name, path or metric can break either (or inject a link or markup).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ftctl.errors import FtctlError
from ftctl.provenance.statement import ResourceDescriptor, Statement
from ftctl.recipe.refs import check_hf_id, parse_model_ref

HUB_MODEL = "pkg:huggingface/"
HUB_DATASET = "pkg:huggingface/datasets/"
MARKDOWN = set("\\`*_[]|~$")  # what could open emphasis, code, a link, a cell or math in a cell
HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


@dataclass(frozen=True)
class Input:
    """A base model or dataset as the card shows it."""

    shown: str  # what the recipe wrote, or the dependency's URI
    hub_id: str | None  # the Hub repository, when it is one
    version: str | None  # commit, DVC md5 or content digest


def model_card(statement: Statement, manifest_digest: str) -> str:
    """README.md for the publication of ``statement``'s run (deterministic bytes)."""
    base = base_model(statement)
    datasets = dataset_inputs(statement)
    front = ["---"]
    if base.hub_id is not None:
        front.append(f"base_model: {yaml_str(base.hub_id)}")
    front += ["base_model_relation: adapter", "library_name: peft"]
    hub_sets = list(dict.fromkeys(d.hub_id for d in datasets if d.hub_id is not None))
    if hub_sets:
        front += ["datasets:", *(f"- {yaml_str(d)}" for d in hub_sets)]
    found = license_of(statement)
    if found is not None:
        front.append(f"license: {yaml_str(found)}")
    front += ["tags:", "- ftctl", "---", ""]
    return "\n".join(front + body(statement, base, datasets, manifest_digest)) + "\n"


def body(statement: Statement, base: Input, datasets: list[Input], manifest: str) -> list[str]:
    params = statement.predicate.buildDefinition.externalParameters
    fp12 = statement.fingerprint.removeprefix("sha256:")[:12]
    target = params.publish if (params.publish or "").startswith("hf://") else None
    check = f"ftctl verify {target}@ftctl-{fp12}" if target else "ftctl verify hf://ORG/REPO@COMMIT"
    lines = [
        f"# {text(statement.name)}",
        "",
        f"An adapter of {text(base.shown)}, fine-tuned by ftctl from the recipe "
        f"{text(params.recipe.path)}. The signed record of the run is "
        f"{text('.ftctl/provenance.intoto.json')} in this repository; check the files against it "
        f"with {text(check)}.",
        "",
        "## Provenance",
        "",
        "| | |",
        "|---|---|",
        row("Recipe", statement.name),
        row("Base model", base.shown),
    ]
    if base.version is not None:
        lines.append(row("Base model version", base.version))
    for i, data in enumerate(datasets):
        version = f" @ {data.version}" if data.version else ""
        lines.append(row(f"Dataset {i + 1}", data.shown + version))
    lines += [
        row("Recipe digest", "sha256:" + params.recipe.digest.get("sha256", "")),
        row("Fingerprint", statement.fingerprint),
        row("Finished", statement.finished_on),
    ]
    lines += [row(f"Metric {name}", value) for name, value in metrics(statement)]
    lines.append(row("Manifest digest", manifest))
    return lines


def base_model(statement: Statement) -> Input:
    """The base model: a Hub id at a commit, or a local path or recipe: reference (no Hub id)."""
    definition = statement.predicate.buildDefinition
    written = definition.externalParameters.base_model
    dep = _dependency(statement, "base_model")
    if dep is not None and (dep.uri or "").startswith(HUB_MODEL):
        hub_id = _hub_id(dep.uri or "", HUB_MODEL)
        return Input(written, hub_id, (dep.digest or {}).get("gitCommit"))
    if dep is not None:
        return Input(written, None, _version(dep))
    try:
        ref = parse_model_ref(written)
    except FtctlError:
        return Input(written, None, None)
    return Input(written, ref.value if ref.kind == "hf" else None, ref.revision)


def dataset_inputs(statement: Statement) -> list[Input]:
    """Each dataset with its version; the Hub id only for Hub datasets."""
    written = statement.predicate.buildDefinition.externalParameters.datasets
    out = []
    for i, shown in enumerate(written):
        dep = _dependency(statement, f"datasets[{i}]")
        if dep is None:
            out.append(Input(shown, None, None))
            continue
        uri = dep.uri or ""
        hub_id = _hub_id(uri, HUB_DATASET) if uri.startswith(HUB_DATASET) else None
        out.append(Input(shown, hub_id, _version(dep)))
    return out


def license_of(statement: Statement) -> str | None:
    """A license the base model's dependency or a byproduct's annotations record, if any."""
    base = _dependency(statement, "base_model")
    sources = [base, *statement.predicate.runDetails.byproducts]
    for source in sources:
        value = ((source.annotations or {}) if source is not None else {}).get("license")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def metrics(statement: Statement) -> list[tuple[str, str]]:
    """The run's metrics (the result.json byproduct's annotations), sorted by name."""
    for entry in statement.predicate.runDetails.byproducts:
        if entry.name == "result.json" and isinstance(
            (entry.annotations or {}).get("metrics"), dict
        ):
            found = (entry.annotations or {})["metrics"]
            return sorted((str(k), _number(v)) for k, v in found.items())
    return []


def _number(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _dependency(statement: Statement, name: str) -> ResourceDescriptor | None:
    deps = statement.predicate.buildDefinition.resolvedDependencies
    return next((d for d in deps if d.name == name), None)


def _hub_id(uri: str, prefix: str) -> str | None:
    repo = uri[len(prefix) :].partition("@")[0]
    return repo if check_hf_id(repo) is None else None


def _version(dep: ResourceDescriptor) -> str | None:
    digest = dep.digest or {}
    for kind in ("gitCommit", "sha256", "md5"):
        if kind in digest:
            return digest[kind] if kind == "gitCommit" else f"{kind}:{digest[kind]}"
    return None


def row(name: str, value: str) -> str:
    return f"| {text(name)} | {text(value)} |"


def text(value: str) -> str:
    """``value`` as literal Markdown text on one line: markup escaped, controls made spaces."""
    out = []
    for char in value:
        if 0xD800 <= ord(char) <= 0xDFFF:
            char = "\ufffd"  # a lone surrogate has no UTF-8 form
        if char in HTML:
            out.append(HTML[char])
        elif char in MARKDOWN:
            out.append("\\" + char)
        else:
            out.append(char if char.isprintable() else " ")
    return "".join(out)


def yaml_str(value: str) -> str:
    """``value`` as a YAML double-quoted scalar: only printable characters appear unescaped."""
    out = []
    for char in value:
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'
