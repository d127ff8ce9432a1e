"""Commands on signed manifests: keygen, attest, verify, show, log, audit."""

from __future__ import annotations

from pathlib import Path

import click

from ftctl.cli.options import importing, json_option, trust_ref_option, workspace_trust
from ftctl.errors import UsageError, one_line
from ftctl.render.terminal import echo, info, warn


@click.command()
@click.argument("name")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the private key."
)
def keygen(name: str, out: Path | None) -> None:
    """Make an Ed25519 signing key: private key outside the repo, public key in keys/."""
    from ftctl.provenance.keys import keygen as make_key
    from ftctl.workspace import discover

    result = make_key(name, discover(Path.cwd()).root, out)
    echo(result.keyid)
    info(f"private key {result.private_path} (mode 0600; keep it out of git)")
    info(f"public key  {result.public_path} (commit it: it is what verifiers trust)")
    info(f"sign with: export FTCTL_SIGNING_KEY={result.private_path}")


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--recipe", "name", required=True, help="The recipe the run trained.")
@click.option(
    "--external",
    is_flag=True,
    help="The run was trained outside ftctl: record that its inputs were not verified.",
)
def attest(run_dir: Path, name: str, external: bool) -> None:
    """Sign the manifest of a finished run directory and write it under manifests/.

    The run must vouch for what it trained (its result.json records the fingerprint,
    training config and inputs the worker verified), and they must be the fresh lock's.
    """
    with importing():
        from ftctl.lock.resolve import compute_locks, load_workspace_recipes
        from ftctl.provenance.attest import attest as build_and_sign
        from ftctl.provenance.keys import signing_key_from_env
        from ftctl.provenance.rundir import read_run_dir
        from ftctl.recipe.messages import did_you_mean
        from ftctl.workspace import discover

    workspace = discover(Path.cwd())
    key = signing_key_from_env()
    run = read_run_dir(run_dir)
    recipes = load_workspace_recipes(workspace)
    if name not in recipes:
        raise UsageError(f"no recipe named '{name}'", hint=did_you_mean(name, sorted(recipes)))
    outcome = compute_locks(workspace, recipes, [name], network=False).outcomes[-1]
    if outcome.status != "fresh" or outcome.old is None:
        raise UsageError(
            f"{outcome.shown} is {outcome.status}",
            hint=f"run `ftctl lock {name}` and commit the lock first",
        )
    path, statement = build_and_sign(
        workspace, recipes[name], outcome.old, outcome.path, run, key, external=external
    )
    echo(str(path.relative_to(workspace.root)))
    if not statement.predicate.buildDefinition.internalParameters.committed:
        warn("the recipe or lock is not committed; `ftctl audit` will fail this manifest")


@click.command()
@click.argument("manifest", metavar="MANIFEST|hf://ORG/REPO[@REV]")
@click.option(
    "--artifacts",
    type=click.Path(file_okay=False, path_type=Path),
    help="Check these files against the subjects.",
)
@json_option()
@trust_ref_option()
def verify(manifest: str, artifacts: Path | None, as_json: bool, trust_ref: str | None) -> None:
    """Verify a manifest's signature, trust and shape (and with --artifacts, the files).

    hf://ORG/REPO[@REV] (default main) verifies a publication: the manifest it embeds,
    and every file at that commit against it.
    """
    from ftctl.provenance.manifest import ManifestError, verify_artifacts, verify_file
    from ftctl.render.manifest import verify_failed_json, verify_json, verify_line

    if manifest.startswith("hf://"):
        if artifacts is not None:
            raise UsageError(
                "--artifacts checks a local directory against a manifest file",
                hint="a hf:// publication is checked against its own files; drop --artifacts",
            )
        _verify_published(manifest, trust_ref, as_json)
        return
    _, trusted = workspace_trust(trust_ref)
    try:
        verified = verify_file(Path(manifest), trusted)
        if artifacts is not None:
            verify_artifacts(verified, artifacts)
    except ManifestError as exc:
        if as_json:
            echo(verify_failed_json(Path(manifest), exc))
        else:
            info(one_line(f"FAILED {exc.problem.message}"))
        raise SystemExit(1) from None
    echo(verify_json(verified, artifacts) if as_json else verify_line(verified, artifacts))


def _verify_published(target: str, trust_ref: str | None, as_json: bool) -> None:
    """``verify hf://...``: the same line or JSON, the publication's ``hf://ORG/REPO@COMMIT``
    standing for both the manifest and the files."""
    import json

    from ftctl.provenance.manifest import ManifestError
    from ftctl.registries.hf import verify_published
    from ftctl.render.manifest import summary

    _, trusted = workspace_trust(trust_ref)
    try:
        checked = verify_published(target, trusted)
    except ManifestError as exc:
        failed = {"ok": False, "manifest": target, "reason": exc.problem.message}
        if as_json:
            echo(json.dumps(failed))
        else:
            info(one_line(f"FAILED {exc.problem.message}"))
        raise SystemExit(1) from None
    shown = summary(checked.manifest)
    if as_json:
        echo(json.dumps({"ok": True, **shown, "manifest": checked.label,
                         "artifacts": checked.label}, sort_keys=True))  # fmt: skip
        return
    signers = ", ".join(k[:12] for k in shown["keyids"])
    echo(one_line(
        f"OK {checked.label}: recipe {shown['recipe']}, fingerprint {shown['fingerprint'][7:19]}, "
        f"signed by {signers}; {checked.files} files at that commit match"
    ))  # fmt: skip


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@trust_ref_option()
def show(manifest: Path, trust_ref: str | None) -> None:
    """Show what a (verified) manifest records, or a plan saved by `ftctl plan --out`."""
    from ftctl.provenance.manifest import verify_file
    from ftctl.render.manifest import show_lines

    if not manifest.name.endswith(".intoto.json") and _is_saved_plan(manifest):
        from ftctl.plan.saved import load_saved, saved_plan
        from ftctl.render.plan import terminal_lines
        from ftctl.render.terminal import use_styles

        for text, markup in terminal_lines(saved_plan(load_saved(manifest)), styled=use_styles()):
            echo(text, markup=markup)
        return
    _, trusted = workspace_trust(trust_ref)
    for line in show_lines(verify_file(manifest, trusted)):
        echo(line)


def _is_saved_plan(path: Path) -> bool:
    """A saved plan is JSON with saved_plan_format; a manifest is a DSSE envelope."""
    from ftctl.canonical import JSONError, strict_loads
    from ftctl.files import UnreadableInput, read_regular

    try:
        body = strict_loads(read_regular(path, 64 * 1024 * 1024, str(path), what="file"))
    except (UnreadableInput, JSONError):
        return False  # verify_file reports what it is
    return isinstance(body, dict) and "saved_plan_format" in body


@click.command("log")
@click.argument("name")
@trust_ref_option()
def log_command(name: str, trust_ref: str | None) -> None:
    """A recipe's run history: when, fingerprint, why it was retrained, metrics."""
    from ftctl.provenance.records import read_records
    from ftctl.render.manifest import log_lines

    root, trusted = workspace_trust(trust_ref)
    state = read_records(root, lambda: trusted).get(name)
    if state is None:
        raise UsageError(
            f"no manifests for recipe '{name}'",
            hint="attest a run first (ftctl attest RUN_DIR --recipe NAME)",
        )
    for line in log_lines(state):
        echo(line)


@click.command("audit")
@json_option("Print the results as JSON.")
@trust_ref_option()
def audit_command(as_json: bool, trust_ref: str | None) -> None:
    """Check every manifest: signature, trust, and the recipe and lock at the recorded commit."""
    from ftctl.provenance.audit import audit as run_audit
    from ftctl.render.manifest import AUDIT_HEADERS, audit_json, audit_rows, audit_summary
    from ftctl.render.terminal import table

    root, trusted = workspace_trust(trust_ref)
    rows = run_audit(root, trusted)
    if as_json:
        echo(audit_json(root, rows))
    else:
        table(AUDIT_HEADERS, audit_rows(rows))
        echo(audit_summary(rows))
    if any(not r.ok for r in rows):
        raise SystemExit(1)
