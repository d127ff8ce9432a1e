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
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--artifacts",
    type=click.Path(file_okay=False, path_type=Path),
    help="Check these files against the subjects.",
)
@json_option()
@trust_ref_option()
def verify(manifest: Path, artifacts: Path | None, as_json: bool, trust_ref: str | None) -> None:
    """Verify a manifest's signature, trust and shape (and with --artifacts, the files)."""
    from ftctl.provenance.manifest import ManifestError, verify_artifacts, verify_file
    from ftctl.render.manifest import verify_failed_json, verify_json, verify_line

    _, trusted = workspace_trust(trust_ref)
    try:
        verified = verify_file(manifest, trusted)
        if artifacts is not None:
            verify_artifacts(verified, artifacts)
    except ManifestError as exc:
        if as_json:
            echo(verify_failed_json(manifest, exc))
        else:
            info(one_line(f"FAILED {exc.problem.message}"))
        raise SystemExit(1) from None
    echo(verify_json(verified, artifacts) if as_json else verify_line(verified, artifacts))


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@trust_ref_option()
def show(manifest: Path, trust_ref: str | None) -> None:
    """Show what a (verified) manifest records."""
    from ftctl.provenance.manifest import verify_file
    from ftctl.render.manifest import show_lines

    _, trusted = workspace_trust(trust_ref)
    for line in show_lines(verify_file(manifest, trusted)):
        echo(line)


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
