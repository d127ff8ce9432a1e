"""The CI templates: what ships, each CI system's schema, and the structure that keeps them safe.

The schemas are the ones check-jsonschema vendors (GitHub's workflow schema and GitLab's
CI schema from SchemaStore), read offline. Running the templates' steps is in
test_github_steps.py and test_gitlab_steps.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ftctl import __version__
from ftctl.scaffold import CI_FILES, VERSION_PLACEHOLDER, ci_template
from tests.ci.steps import load
from tests.conftest import REPO

GITHUB = REPO / "ci" / "github" / "ftctl.yml"
GITLAB = REPO / "ci" / "gitlab" / ".gitlab-ci.yml"
TEMPLATES = {"github": GITHUB, "gitlab": GITLAB}
SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}
SECRETS = ("FTCTL_SIGNING_KEY", "FTCTL_SIGNING_KEY_PASSPHRASE", "HF_TOKEN")
CACHED = ("recipes/", "lockfiles/", "manifests/", "keys/", "ftctl.yaml")


def walk(
    value: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string of a YAML document, with where it is."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, (*path, index))
    elif isinstance(value, str):
        yield path, value


def schema_check(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("system", ["github", "gitlab"])
def test_the_package_ships_the_repository_templates(system: str) -> None:
    shipped = REPO / "ftctl" / "templates" / CI_FILES[system][1]
    assert shipped.read_bytes() == TEMPLATES[system].read_bytes()


@pytest.mark.parametrize("system", ["github", "gitlab"])
def test_init_pins_the_version_that_wrote_it(system: str) -> None:
    template = TEMPLATES[system].read_text()
    assert template.count(VERSION_PLACEHOLDER) == 1
    assert f'FTCTL_VERSION: "{VERSION_PLACEHOLDER}"' in template
    filled = ci_template(system)
    assert filled == template.replace(
        f'FTCTL_VERSION: "{VERSION_PLACEHOLDER}"', f'FTCTL_VERSION: "{__version__}"'
    )
    assert load_text(filled)["variables" if system == "gitlab" else "env"]["FTCTL_VERSION"] == (
        __version__
    )


def load_text(text: str) -> dict[str, Any]:
    from ftctl.yamlio import parse_yaml

    data = parse_yaml(text, "ci.yml").data
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("system", ["github", "gitlab"])
def test_both_forms_pass_the_ci_systems_schema(system: str, tmp_path: Path) -> None:
    filled = tmp_path / TEMPLATES[system].name
    filled.write_text(ci_template(system))
    checked = schema_check(SCHEMAS[system], TEMPLATES[system], filled)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The checker does reject a broken file (a job without a runner or a script).
    broken = tmp_path / f"broken-{TEMPLATES[system].name}"
    text = TEMPLATES[system].read_text()
    cut = "    runs-on: ubuntu-latest\n" if system == "github" else "  script:\n"
    assert cut in text
    broken.write_text(
        text.replace(cut, "    runs-on: 7\n" if system == "github" else "  script: 7\n")
    )
    assert schema_check(SCHEMAS[system], broken).returncode == 1


def steps(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(s.get("name", s.get("uses"))): s for s in job["steps"]}


def test_github_triggers_runners_and_permissions() -> None:
    workflow = load(GITHUB)
    plan, apply = workflow["jobs"]["plan"], workflow["jobs"]["apply"]
    assert workflow["on"]["pull_request"] == {"branches": ["main"]}
    assert workflow["on"]["push"] == {"branches": ["main"]}
    assert workflow["permissions"] == {"contents": "read"}
    assert plan["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert apply["permissions"] == {"contents": "write"}
    assert plan["if"] == "github.event_name == 'pull_request'"
    assert plan["runs-on"] == "ubuntu-latest"
    assert apply["if"] == "github.event_name != 'pull_request' && github.ref == 'refs/heads/main'"
    assert apply["runs-on"] == ["self-hosted", "linux", "gpu"]
    assert apply["concurrency"] == {"group": "ftctl-apply", "cancel-in-progress": False}
    assert apply["environment"] == "training"
    for job in (plan, apply):
        checkout = steps(job)[next(n for n in steps(job) if n.startswith("Check out"))]
        assert checkout["with"]["fetch-depth"] == 0  # --trust-ref needs the base branch
        python = steps(job)["Set up Python"]
        assert python["with"] == {"python-version": "3.11"}
    assert steps(apply)["Check out main as it is now"]["with"]["clean"] is False
    for path, value in walk(workflow):
        if path[-1] == "uses":  # first-party actions, pinned to a commit
            assert re.fullmatch(r"actions/[a-z-]+@[0-9a-f]{40}", value), value


def test_github_plan_steps() -> None:
    plan = steps(load(GITHUB)["jobs"]["plan"])
    assert plan["Install ftctl"]["run"] == (
        'python -m pip install --disable-pip-version-check "ftctl==$FTCTL_VERSION"'
    )
    assert plan["Validate the recipes"]["run"] == "ftctl validate"
    assert plan["Check that every lock is fresh"]["run"] == "ftctl lock --check"
    script = plan["Plan"]["run"]
    assert (
        'ftctl plan --trust-ref "origin/$BASE_REF" --markdown --detailed-exitcode > plan.md'
        " || status=$?"
    ) in script
    assert '2) echo "changes=true" >> "$GITHUB_OUTPUT" ;;' in script
    assert '*) exit "$status" ;;' in script
    assert 'ftctl plan --trust-ref "origin/$BASE_REF" --json > plan.json' in script
    assert load(GITHUB)["jobs"]["plan"]["env"]["BASE_REF"] == "${{ github.base_ref }}"
    cache = plan["Restore ftctl's caches"]["with"]
    assert cache["path"] == ".ftctl"
    assert cache["key"] == (
        "ftctl-${{ runner.os }}-${{ hashFiles('recipes/**', 'lockfiles/**', 'manifests/**', "
        "'keys/**', 'ftctl.yaml') }}"
    )
    assert "plan.json" in plan["Upload the plan"]["with"]["path"].split()
    comment = plan["Post the plan as one comment, edited in place"]
    assert comment["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert comment["env"]["GH_TOKEN"] == "${{ github.token }}"


def test_github_apply_steps() -> None:
    apply = steps(load(GITHUB)["jobs"]["apply"])
    install = apply["Install ftctl and the pinned training environment"]["run"]
    assert '"ftctl[train]==$FTCTL_VERSION"' in install
    assert apply["Apply"]["run"] == "ftctl apply --auto-approve"
    record = apply["Commit the new manifests"]
    assert record["if"] == "${{ !cancelled() }}"  # after a failed apply too, never mid-cancel
    assert record["env"]["GIT_AUTHOR_NAME"] == "github-actions[bot]"
    assert (
        'git commit --quiet -m "ftctl apply: record the new manifests [skip ci]"' in record["run"]
    )
    assert 'git pull --rebase --quiet origin "$BRANCH"' in record["run"]


def test_github_secrets_are_only_in_env_and_never_in_a_script() -> None:
    workflow = load(GITHUB)
    for path, value in walk(workflow):
        if "secrets." in value:
            assert path[-2] == "env", path  # a step's or job's environment, nothing else
            assert re.fullmatch(r"\$\{\{ secrets\.(\w+) \}\}", value), value
            name = value.split(".")[1].rstrip(" }")
            assert path[-1] == name
            if name in SECRETS:
                assert path[:4] == ("jobs", "apply", "steps", 3), path  # the Apply step only
            else:
                assert name == "FTCTL_CACHE_KEY", name
        if path[-1] == "run":
            # No expression is pasted into a script (no injection, no secret on a command
            # line); no secret or token is named there, so none is echoed; no tracing.
            assert "${{" not in value, path
            for name in (*SECRETS, "GH_TOKEN"):
                assert name not in value, (path, name)
            assert "set -x" not in value and "xtrace" not in value
    apply = workflow["jobs"]["apply"]["steps"][3]
    assert apply["name"] == "Apply" and set(apply["env"]) == set(SECRETS)


def test_gitlab_rules_runners_and_cache() -> None:
    pipeline = load(GITLAB)
    plan, apply = pipeline["ftctl-plan"], pipeline["ftctl-apply"]
    conditions = [rule["if"] for rule in pipeline["workflow"]["rules"]]
    assert '$CI_PIPELINE_SOURCE == "merge_request_event"' in conditions
    assert '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE == "push"' in conditions
    assert plan["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert apply["rules"] == [
        {
            "if": '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE != "merge_request_event"'
        }
    ]
    assert "tags" not in plan and apply["tags"] == ["gpu"]
    assert apply["resource_group"] == "ftctl-apply"
    assert apply["environment"] == {"name": "training"}
    assert apply["interruptible"] is False
    assert apply["variables"]["GIT_CLEAN_FLAGS"] == "none"
    assert pipeline["variables"]["GIT_DEPTH"] == "0"
    assert plan["cache"]["paths"] == [".ftctl/"]
    files = plan["cache"]["key"]["files"]
    assert all(any(f.startswith(prefix) for f in files) for prefix in CACHED), files
    assert set(plan["artifacts"]["paths"]) == {"plan.md", "plan.json"}


def test_gitlab_scripts() -> None:
    pipeline = load(GITLAB)
    plan = "\n".join(pipeline["ftctl-plan"]["script"])
    assert 'python -m pip install "ftctl==$FTCTL_VERSION"' in plan
    assert "ftctl validate" in plan and "ftctl lock --check" in plan
    assert (
        'ftctl plan --trust-ref "origin/$TARGET" --markdown --detailed-exitcode > plan.md'
        " || status=$?"
    ) in plan
    assert "0|2) ;;" in plan and '*) exit "$status" ;;' in plan
    assert 'ftctl plan --trust-ref "origin/$TARGET" --json > plan.json' in plan
    apply = "\n".join(pipeline["ftctl-apply"]["script"])
    assert 'set -- "ftctl[train]==$FTCTL_VERSION"' in apply
    assert "ftctl apply --auto-approve || status=$?" in apply
    assert '"ftctl apply: record the new manifests [skip ci]"' in apply
    assert 'pull --rebase --quiet "$remote" "$CI_COMMIT_BRANCH"' in apply


def test_gitlab_secrets_stay_in_the_ci_settings_and_out_of_the_scripts() -> None:
    pipeline = load(GITLAB)
    for path, value in walk(pipeline):
        # Secrets are CI/CD variables set in the project, never in the file.
        assert not (len(path) >= 2 and path[-2] == "variables" and path[-1] in SECRETS)
        if "script" in path:
            for name in (*SECRETS, "FTCTL_NOTE_TOKEN", "CI_JOB_TOKEN"):
                assert f"${name}" not in value and f"${{{name}" not in value, (path, name)
            assert "set -x" not in value and "xtrace" not in value
            # The push token reaches git only through the credential helper's own shell.
            for line in value.splitlines():
                if "FTCTL_PUSH_TOKEN" in line:
                    assert line.strip() in {
                        'if [ -n "${FTCTL_PUSH_TOKEN:-}" ]; then remote="$CI_SERVER_URL/$CI_PROJECT_PATH.git"; fi',
                        """helper='!f() { echo username=ftctl; echo "password=$FTCTL_PUSH_TOKEN"; }; f'""",
                    }, line
