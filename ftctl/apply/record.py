"""The statements apply signs: a trained run's (before and after publishing), and a restored one's.

A trained run is signed twice from one statement: first without its
publication (that envelope goes into the registry as the artifact's
provenance, and is kept in the run directory so a retried publish pushes the
same bytes), then with the ``published`` byproduct (where, and on the Hub
which commit) for ``manifests/``. A restore or republish records an artifact
that an earlier, verified manifest vouches for: the statement is that
manifest's, re-addressed to this recipe, its lock and its target, with a
``restored_from`` byproduct naming the source record by digest.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ftctl.files import read_small
from ftctl.lock.lockfile import Lockfile
from ftctl.provenance.attest import git_state, resolved_dependencies
from ftctl.provenance.statement import Statement
from ftctl.recipe.load import LoadedRecipe
from ftctl.registries.base import Published
from ftctl.workspace import Workspace

RESTORE_MARK = "restored_from"


def with_publication(statement: Statement, published: Published) -> Statement:
    """``statement`` with where it was published as its last byproduct."""
    body = statement.to_json()
    byproducts = [
        b
        for b in body["predicate"]["runDetails"].get("byproducts", [])
        if b.get("name") != "published"
    ]
    byproducts.append({"name": "published", **published.record()})
    body["predicate"]["runDetails"]["byproducts"] = byproducts
    return Statement.model_validate(body)


def published_uri(statement: Statement) -> str | None:
    """Where a recorded run's artifact was published, if the record says."""
    for byproduct in statement.predicate.runDetails.byproducts:
        if byproduct.name == "published" and byproduct.uri:
            return byproduct.uri
    return None


def restored_statement(
    workspace: Workspace,
    loaded: LoadedRecipe,
    lock: Lockfile,
    lock_path: Path,
    source: Statement,
    source_digest: str,
    source_where: str,
) -> Statement:
    """The record of ``loaded`` restored from the artifact ``source`` records (same fingerprint)."""
    root = workspace.root.resolve()
    recipe_rel = loaded.path.resolve().relative_to(root).as_posix()
    lock_rel = lock_path.resolve().relative_to(root).as_posix()
    recipe_bytes, lock_bytes = read_small(loaded.path), read_small(lock_path)
    git = git_state(workspace.root, recipe_rel, recipe_bytes, lock_rel, lock_bytes)
    body = source.to_json()
    definition = body["predicate"]["buildDefinition"]
    recipe = loaded.recipe
    definition["externalParameters"] = {
        **definition["externalParameters"],
        "name": loaded.name,
        "recipe": {
            "path": recipe_rel,
            "digest": {"sha256": hashlib.sha256(recipe_bytes).hexdigest()},
        },
        "base_model": recipe.base_model,
        "datasets": [entry.path for entry in (recipe.datasets or [])],
        "seed": str(recipe.seed),
        "publish": workspace.publish_target(loaded.name, recipe.ftctl.publish),
    }
    definition["internalParameters"] = {
        **definition["internalParameters"],
        "lock": {"path": lock_rel, "digest": {"sha256": hashlib.sha256(lock_bytes).hexdigest()}},
        "committed": git.committed,
    }
    definition["resolvedDependencies"] = resolved_dependencies(lock, git)
    details = body["predicate"]["runDetails"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    details["metadata"] = {"invocationId": uuid.uuid4().hex, "startedOn": now, "finishedOn": now}
    kept: list[dict[str, Any]] = [
        b for b in details.get("byproducts", []) if b.get("name") not in ("published", RESTORE_MARK)
    ]
    kept.append({"name": RESTORE_MARK, "uri": source_where, "digest": {"sha256": source_digest}})
    details["byproducts"] = kept
    return Statement.model_validate(body)
