"""The ftctl command line: parse, call the core, render, exit.

Exit codes: 0 ok, 1 any error (usage errors too), 2 changes present (only
with --detailed-exitcode). A user's mistake prints one ``ftctl: error:`` line,
never a traceback.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ftctl import __version__
from ftctl.errors import FtctlError, Problem, UsageError
from ftctl.render.terminal import echo, escape

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from ftctl.launch import Worker
    from ftctl.workspace import Workspace


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="ftctl", message="%(prog)s %(version)s")
@click.option(
    "-C",
    "directory",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run as if ftctl was started in DIR.",
)
def cli(directory: Path | None) -> None:
    """Terraform for fine-tuning: lock, plan, apply and verify LLM fine-tunes."""
    if directory is not None:
        try:
            os.chdir(directory)
        except OSError as exc:
            raise UsageError(f"-C {directory}: {exc.strerror or exc}") from None


@contextmanager
def importing() -> Iterator[None]:
    """Wrap a command's lazy imports: no GC passes while they run, then freeze what they built.

    Importing pydantic and building the recipe models allocates tens of thousands of
    objects that live as long as the process; collecting over them repeatedly cost a
    quarter of `ftctl validate`'s start-up (bench/startup.py). The command's own work
    runs with the collector on, as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def _render_problem(problem: Problem) -> None:
    line = problem.render()
    if problem.location is not None:
        head = str(problem.location)
        rest = line[len(head) :]
        echo(line, markup=f"[bold]{escape(head)}[/bold][red]{escape(rest)}[/red]")
    else:
        echo(line, markup=f"[red]{escape(line)}[/red]")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check recipes (default: every recipe of the workspace) and report every problem."""
    with importing():
        from ftctl.recipe.check import check_paths

    report = check_paths(list(paths), Path.cwd())
    for problem in report.problems:
        _render_problem(problem)
    if report.problems:
        count = len(report.problems)
        echo(
            f"{count} problem{'s' if count != 1 else ''} in {report.failed_files} of "
            f"{len(report.checked)} file{'s' if len(report.checked) != 1 else ''}",
            stderr=True,
        )
        raise SystemExit(1)
    if not report.checked:
        raise UsageError("no recipes found", hint="add recipes/<name>.yaml or pass paths")
    n = len(report.recipes)
    echo(
        f"{n} recipe{'s' if n != 1 else ''} valid",
        markup=f"[green]{n} recipe{'s' if n != 1 else ''} valid[/green]",
    )


@cli.command()
@click.argument("names", nargs=-1)
@click.option(
    "--update",
    is_flag=True,
    help="Re-resolve moving references (branches, tags) of NAMES, or of all.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 with a diff if any lock is stale or missing.",
)
@click.option(
    "--pins-from-env",
    is_flag=True,
    help="First write the pins file from the installed training packages.",
)
def lock(names: tuple[str, ...], update: bool, check: bool, pins_from_env: bool) -> None:
    """Pin every moving input of each recipe in lockfiles/<name>.lock."""
    if check and (update or pins_from_env):
        raise UsageError(
            "--check writes nothing; it cannot be combined with --update or --pins-from-env"
        )
    with importing():
        from ftctl.cache.parse import ParseCache
        from ftctl.cache.stat import StatCache
        from ftctl.lock.resolve import compute_locks, load_workspace_recipes, write_locks
        from ftctl.render.lock import render_check, render_written
        from ftctl.workspace import discover

    workspace = discover(Path.cwd())
    if pins_from_env:
        from ftctl.files import write_atomic
        from ftctl.lock.pins import pins_from_environment

        write_atomic(workspace.root / workspace.config.pins, pins_from_environment())
        echo(f"wrote {workspace.config.pins}", stderr=True)
    parsed = ParseCache(workspace.root / ".ftctl" / "parsed.json")
    recipes = load_workspace_recipes(workspace, parsed)
    cache = StatCache(workspace.root / ".ftctl" / "statcache.json")
    report = compute_locks(
        workspace,
        recipes,
        names,
        update=(list(names) or True) if update else False,
        network=not check,
        cache=cache,
        parse_cache=parsed,
    )
    cache.save()
    parsed.save()
    for warning in report.warnings:
        echo(f"ftctl: warning: {warning}", stderr=True)
    if check:
        lines, stale = render_check(report)
        for line in lines:
            echo(line)
        if stale:
            raise SystemExit(1)
        return
    written, removed = write_locks(report)
    for line in render_written(report, written, removed):
        echo(line, stderr=True)


@cli.command()
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="NAME",
    help="Plan only NAME and the recipes built on it.",
)
@click.option(
    "--replace",
    "replace",
    multiple=True,
    metavar="NAME",
    help="Retrain NAME even if nothing changed.",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Save the plan for `apply FILE`."
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (docs/plan-json.md).")
@click.option(
    "--markdown", "as_markdown", is_flag=True, help="Print the plan as one pull-request comment."
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 2 with changes, 1 on error."
)
def plan(
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    out: Path | None,
    as_json: bool,
    as_markdown: bool,
    detailed_exitcode: bool,
) -> None:
    """Show which trainings must run, and why (offline, nothing is written but --out)."""
    import json

    with importing():
        from ftctl.plan.inputs import gather
        from ftctl.plan.planner import make_plan
        from ftctl.plan.saved import save_plan
        from ftctl.render.plan import markdown, terminal_lines, to_json
        from ftctl.workspace import discover

    if as_json and as_markdown:
        raise UsageError("choose one of --json and --markdown")
    workspace = discover(Path.cwd())
    inputs = gather(workspace)
    known = set(inputs.desired) | set(inputs.recorded)
    for name in (*targets, *replace):
        if name not in known:
            from ftctl.recipe.messages import did_you_mean

            raise UsageError(f"no recipe named '{name}'", hint=did_you_mean(name, sorted(known)))
    result = make_plan(
        inputs.desired,
        inputs.recorded,
        details=inputs.details,
        in_registry=inputs.in_registry,
        replace=replace,
        targets=targets,
    )
    inputs.save_memo()
    if out is not None:
        from ftctl.cache.stat import StatCache
        from ftctl.plan.inputs import input_digests

        stat = StatCache(workspace.root / ".ftctl" / "statcache.json")
        save_plan(out, workspace, to_json(result), input_digests(workspace, stat))
        stat.save()
    if as_json:
        click.echo(json.dumps(to_json(result), indent=2, sort_keys=True))
    elif as_markdown:
        click.echo(markdown(result), nl=False)
    else:
        for text, markup in terminal_lines(result, styled=sys.stdout.isatty()):
            echo(text, markup=markup)
    if out is not None:
        echo(f"saved the plan to {out}; `ftctl apply {out}` applies exactly this plan", stderr=True)
    if detailed_exitcode and result.has_changes:
        raise SystemExit(2)


@cli.command()
@click.argument("recipe")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory to write (default: outputs/NAME).",
)
def train(recipe: str, output: Path | None) -> None:
    """Train a recipe directly, like `axolotl train` (no lock, no manifest; see `ftctl attest`)."""
    from ftctl.launch import Worker

    with Worker.start() as worker:  # the training stack imports while the recipe is checked
        target = _train(recipe, output, worker)
    echo(str(target))


def _train(recipe: str, output: Path | None, worker: Worker) -> Path:
    from ftctl.launch import default_output, run_worker
    from ftctl.recipe.load import load_recipe
    from ftctl.recipe.refs import parse_model_ref
    from ftctl.workspace import discover
    from ftctl.yamlio import display_path

    workspace = discover(Path.cwd())
    loaded = load_recipe(_recipe_path(workspace, recipe))
    target = output if output is not None else default_output(workspace.root, loaded)
    base_dir = None
    ref = parse_model_ref(loaded.recipe.base_model)
    if ref.kind == "recipe":  # like a chain of `axolotl train` runs: the upstream's default output
        upstream = load_recipe(_recipe_path(workspace, ref.value))
        base_dir = default_output(workspace.root, upstream) / "adapter"
        if not base_dir.is_dir():
            raise FtctlError(
                f"{loaded.shown}: base_model {loaded.recipe.base_model}: {display_path(base_dir)} does not exist",
                hint=f"train it first: ftctl train {ref.value}",
            )
    code = run_worker(workspace.root, loaded, target, base_model_dir=base_dir, worker=worker)
    if code != 0:
        raise SystemExit(code)
    return target


@cli.command()
@click.argument("recipe")
@click.option(
    "--debug",
    is_flag=True,
    help="Print every token of the first rows with its label (-100 = not trained).",
)
@click.option("--rows", default=3, show_default=True, help="How many rows to print.")
def preprocess(recipe: str, debug: bool, rows: int) -> None:
    """Show how a recipe's datasets are tokenized and masked, as the worker will train them."""
    from ftctl.worker.preprocess import preprocess as run_preprocess
    from ftctl.workspace import discover

    if not debug:
        raise UsageError("preprocess only prints for now", hint="add --debug")
    workspace = discover(Path.cwd())
    path = _recipe_path(workspace, recipe)
    for line in run_preprocess(path, workspace.root, rows):
        click.echo(line)


def _recipe_path(workspace: Workspace, recipe: str) -> Path:
    """A recipe file given as a path, or found by name in the workspace."""
    path = Path(recipe)
    if path.is_file():
        return path
    candidates = [p for p in workspace.recipe_paths() if p.stem == recipe]
    if not candidates:
        raise UsageError(
            f"no recipe file or recipe named '{recipe}'",
            hint="give recipes/NAME.yaml or a recipe name",
        )
    return candidates[0]


def _trusted() -> tuple[Path, dict[str, Ed25519PublicKey]]:
    from ftctl.provenance.keys import trusted_keys
    from ftctl.workspace import discover

    workspace = discover(Path.cwd())
    return workspace.root, trusted_keys(workspace.root, workspace.config.trust)


@cli.command()
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
    echo(f"private key {result.private_path} (mode 0600; keep it out of git)", stderr=True)
    echo(f"public key  {result.public_path} (commit it: it is what verifiers trust)", stderr=True)
    echo(f"sign with: export FTCTL_SIGNING_KEY={result.private_path}", stderr=True)


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--recipe", "name", required=True, help="The recipe the run trained.")
def attest(run_dir: Path, name: str) -> None:
    """Sign the manifest of a finished run directory and write it under manifests/."""
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
    path, statement = build_and_sign(workspace, recipes[name], outcome.old, outcome.path, run, key)
    echo(str(path.relative_to(workspace.root)))
    if not statement.predicate.buildDefinition.internalParameters.committed:
        echo(
            "ftctl: warning: the recipe or lock is not committed; `ftctl audit` will fail this manifest",
            stderr=True,
        )


@cli.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--artifacts",
    type=click.Path(file_okay=False, path_type=Path),
    help="Check these files against the subjects.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(manifest: Path, artifacts: Path | None, as_json: bool) -> None:
    """Verify a manifest's signature, trust and shape (and with --artifacts, the files)."""
    import json

    from ftctl.provenance.manifest import ManifestError, verify_artifacts, verify_file
    from ftctl.render.manifest import summary

    _, trusted = _trusted()
    try:
        verified = verify_file(manifest, trusted)
        if artifacts is not None:
            verify_artifacts(verified, artifacts)
    except ManifestError as exc:
        if as_json:
            click.echo(
                json.dumps({"ok": False, "manifest": str(manifest), "reason": exc.problem.message})
            )
        else:
            echo(f"FAILED {exc.problem.message}", stderr=True)
        raise SystemExit(1) from None
    info = summary(verified)
    if as_json:
        click.echo(
            json.dumps(
                {"ok": True, **info, "artifacts": str(artifacts) if artifacts else None},
                sort_keys=True,
            )
        )
        return
    checked = f"; {len(info['subjects'])} files in {artifacts} match" if artifacts else ""
    echo(
        f"OK {info['manifest']}: recipe {info['recipe']}, fingerprint {info['fingerprint'][7:19]}, "
        f"signed by {', '.join(k[:12] for k in info['keyids'])}{checked}"
    )


@cli.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
def show(manifest: Path) -> None:
    """Show what a (verified) manifest records."""
    from ftctl.provenance.manifest import verify_file
    from ftctl.render.manifest import show_lines

    _, trusted = _trusted()
    for line in show_lines(verify_file(manifest, trusted)):
        echo(line)


@cli.command("log")
@click.argument("name")
def log_command(name: str) -> None:
    """A recipe's run history: when, fingerprint, why it was retrained, metrics."""
    from ftctl.provenance.records import read_state
    from ftctl.render.manifest import log_lines

    root, trusted = _trusted()
    state = read_state(root, trusted).get(name)
    if state is None:
        raise UsageError(f"no manifests for recipe '{name}'", hint="attest or apply a run first")
    for line in log_lines(state):
        echo(line)


@cli.command("audit")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def audit_command(as_json: bool) -> None:
    """Check every manifest: signature, trust, and the recipe and lock at the recorded commit."""
    import json

    from ftctl.provenance.audit import audit as run_audit
    from ftctl.render.manifest import AUDIT_HEADERS, audit_rows, audit_summary
    from ftctl.render.terminal import table

    root, trusted = _trusted()
    rows = run_audit(root, trusted)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "manifest": str(r.path.relative_to(root)),
                        "recipe": r.recipe,
                        "fingerprint": r.fingerprint,
                        "finishedOn": r.finished_on,
                        "ok": r.ok,
                        "reason": r.reason,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
    else:
        table(AUDIT_HEADERS, audit_rows(rows))
        echo(audit_summary(rows))
    if any(not r.ok for r in rows):
        raise SystemExit(1)


@cli.command()
@click.argument("kind", type=click.Choice(["recipe", "workspace"]), default="recipe")
def schema(kind: str) -> None:
    """Print the JSON Schema of a recipe (or of ftctl.yaml), for editors."""
    with importing():
        from ftctl.recipe.schema import json_schema

    click.echo(json_schema(kind))


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path | None) -> None:
    """Scaffold a workspace in DIRECTORY (default: here); existing files are kept."""
    from ftctl.scaffold import scaffold

    target = directory if directory is not None else Path.cwd()
    for path, created in scaffold(target):
        state = "created" if created else "kept   "
        echo(f"{state} {path}", stderr=True)
    echo(f"Initialized ftctl workspace in {target}. Next: ftctl validate", stderr=True)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="ftctl", standalone_mode=False)
    except FtctlError as exc:
        for problem in exc.problems:
            echo(f"ftctl: error: {problem.render()}", stderr=True)
        sys.exit(1)
    except click.exceptions.Abort:
        echo("ftctl: aborted", stderr=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1)
    except KeyboardInterrupt:
        echo("ftctl: interrupted", stderr=True)
        sys.exit(130)
    except BrokenPipeError:
        # Output piped into `head`: stop quietly.
        sys.stderr.close()
        sys.exit(0)
    except OSError as exc:
        # The environment, not ftctl: permission denied, disk full, a vanished file.
        where = f"{exc.filename}: " if exc.filename else ""
        echo(f"ftctl: error: {where}{exc.strerror or exc}", stderr=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
