"""How manifests read for people: verify, show, log and audit output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftctl.errors import one_line
from ftctl.provenance.audit import AuditRow
from ftctl.provenance.manifest import ManifestError, VerifiedManifest
from ftctl.provenance.records import EXTERNAL_BUILDER, RecipeRecords
from ftctl.yamlio import display_path


def short(fingerprint: str | None) -> str:
    return (fingerprint or "-").removeprefix("sha256:")[:12]


def summary(manifest: VerifiedManifest) -> dict[str, Any]:
    st = manifest.statement
    definition = st.predicate.buildDefinition
    return {
        "manifest": display_path(manifest.path),
        "recipe": st.name,
        "fingerprint": st.fingerprint,
        "finishedOn": st.finished_on,
        "keyids": list(manifest.keyids),
        "subjects": {s.name: s.digest["sha256"] for s in st.subject},
        "dependencies": {d.name or "": d.uri or "" for d in definition.resolvedDependencies},
        "metrics": metrics(manifest),
    }


def verify_line(manifest: VerifiedManifest, artifacts: Path | None) -> str:
    """``verify``'s one line: ``OK <manifest>: recipe ..., fingerprint ..., signed by ...``."""
    info = summary(manifest)
    checked = f"; {len(info['subjects'])} files in {artifacts} match" if artifacts else ""
    return one_line(
        f"OK {info['manifest']}: recipe {info['recipe']}, fingerprint {info['fingerprint'][7:19]}, "
        f"signed by {', '.join(k[:12] for k in info['keyids'])}{checked}"
    )


def verify_json(manifest: VerifiedManifest, artifacts: Path | None) -> str:
    """``verify --json`` when the manifest (and its files) verified."""
    body = {"ok": True, **summary(manifest), "artifacts": str(artifacts) if artifacts else None}
    return json.dumps(body, sort_keys=True)


def verify_failed_json(manifest: Path, exc: ManifestError) -> str:
    """``verify --json`` when it did not: the manifest and the whole message."""
    return json.dumps({"ok": False, "manifest": str(manifest), "reason": exc.problem.message})


def metrics(manifest: VerifiedManifest) -> dict[str, Any]:
    for entry in manifest.statement.predicate.runDetails.byproducts:
        if entry.name == "result.json" and entry.annotations:
            found = entry.annotations.get("metrics")
            return dict(found) if isinstance(found, dict) else {}
    return {}


def show_lines(manifest: VerifiedManifest) -> list[str]:
    info = summary(manifest)
    st = manifest.statement
    run = st.predicate.runDetails
    lines = [
        f"manifest     {info['manifest']}",
        f"recipe       {st.name} ({st.predicate.buildDefinition.externalParameters.recipe.path})",
        f"fingerprint  {st.fingerprint}",
        f"run          {run.metadata.startedOn} -> {run.metadata.finishedOn} ({run.builder.id})",
        f"signed by    {', '.join(k[:16] for k in manifest.keyids)}",
        "subjects:",
        *[f"  {digest[:16]}  {name}" for name, digest in info["subjects"].items()],
        "inputs:",
        *[f"  {name:<18} {uri}" for name, uri in info["dependencies"].items()],
    ]
    if info["metrics"]:
        lines.append("metrics:")
        lines.extend(f"  {k}: {v}" for k, v in sorted(info["metrics"].items()))
    return [one_line(line) for line in lines]  # names and metrics come from files: escape them


def _inputs(manifest: VerifiedManifest) -> dict[str, str]:
    definition = manifest.statement.predicate.buildDefinition
    out = {
        d.name or "": str(sorted((d.digest or {}).items()))
        for d in definition.resolvedDependencies
        if d.name not in ("recipe_repository",)
    }
    out["recipe"] = str(definition.externalParameters.recipe.digest)
    return out


def why(previous: VerifiedManifest | None, current: VerifiedManifest) -> str:
    if previous is None:
        return "first run"
    before, after = _inputs(previous), _inputs(current)
    changed = [name for name in after if before.get(name) != after[name]]
    changed += [name for name in before if name not in after]
    if previous.statement.fingerprint == current.statement.fingerprint:
        return "same fingerprint (re-run)"
    return "changed: " + ", ".join(sorted(set(changed))) if changed else "changed: trainer"


def is_external(manifest: VerifiedManifest) -> bool:
    """Whether the run was attested with --external (ftctl did not verify its inputs)."""
    return manifest.statement.predicate.runDetails.builder.id == EXTERNAL_BUILDER


def log_lines(state: RecipeRecords) -> list[str]:
    lines = []
    previous = None
    entries = []
    for manifest in (r.manifest for r in state.records if r.manifest is not None):
        entries.append((manifest, why(previous, manifest)))
        previous = manifest
    for manifest, reason in reversed(entries):
        shown = ", ".join(f"{k}={v}" for k, v in sorted(metrics(manifest).items())) or "-"
        external = "  (external: inputs not verified by ftctl)" if is_external(manifest) else ""
        lines.append(
            f"{manifest.statement.finished_on}  {short(manifest.statement.fingerprint)}  {reason}  "
            f"[{shown}]{external}"
        )
    lines.extend(f"REJECTED {r.shown}: {r.reason}" for r in state.rejected)
    return [one_line(line) for line in lines]


AUDIT_HEADERS = ["recipe", "finished", "fingerprint", "result"]


def audit_rows(rows: list[AuditRow]) -> list[list[str]]:
    return [
        [
            one_line(cell)
            for cell in (
                row.recipe,
                row.finished_on or "-",
                short(row.fingerprint),
                ("ok" if row.ok else f"FAIL: {row.reason}")
                + (" (external)" if row.external else ""),
            )
        ]
        for row in rows
    ]


def audit_json(root: Path, rows: list[AuditRow]) -> str:
    """``audit --json``: one object per manifest, paths relative to the workspace."""
    return json.dumps(
        [
            {
                "manifest": str(r.path.relative_to(root)),
                "recipe": r.recipe,
                "fingerprint": r.fingerprint,
                "finishedOn": r.finished_on,
                "ok": r.ok,
                "reason": r.reason,
                "external": r.external,
            }
            for r in rows
        ],
        indent=2,
    )


def audit_summary(rows: list[AuditRow]) -> str:
    failed = sum(not r.ok for r in rows)
    return f"{len(rows)} manifest{'s' if len(rows) != 1 else ''}, {failed} failed"
