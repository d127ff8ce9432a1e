"""The GitHub workflow that `ftctl init --ci github` writes, its shell steps run for real.

Each test hosts a workspace made by `ftctl init --ci github` in a bare repository, checks it
out as the runner would, and runs the steps of the workflow file in that checkout with
ftctl as installed here. Only ``gh`` is a stand-in (tests/ci/fake_gh.py): GitHub's API is
the one boundary nothing here can reach.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.ci.steps import (
    HF_TOKEN,
    Ran,
    Remote,
    attest,
    base_env,
    copy,
    expand,
    load,
    run_script,
    seed,
)
from tests.conftest import PLAN_RECIPE, git, invoke_cli, json_object, write

REPOSITORY = "acme/finetunes"
MARKER = "<!-- ftctl-plan -->"
TOKEN = "ghs_FakeWorkflowTokenNeverPrinted"
PULL_REQUEST = {
    "github.base_ref": "main",
    "github.event.pull_request.number": "7",
    "github.token": TOKEN,
    "secrets.FTCTL_CACHE_KEY": "a-cache-key",
}
# Steps the tests do not run: the CI system's own actions, and installs from the package index.
NOT_RUN = {"uses", "Install ftctl", "Install ftctl and the pinned training environment"}


class Job:
    """One job of the workflow as checked out in ``checkout``, its steps run there."""

    def __init__(self, checkout: Path, name: str, context: dict[str, str], tmp: Path) -> None:
        self.checkout, self.context, self.tmp = checkout, context, tmp
        self.workflow = load(checkout / ".github" / "workflows" / "ftctl.yml")
        self.job: dict[str, Any] = self.workflow["jobs"][name]
        self.output, self.summary = tmp / "github-output", tmp / "step-summary"
        self.comments, self.calls = tmp / "gh-comments.json", tmp / "gh-calls.jsonl"
        if not self.comments.exists():
            self.comments.write_text("[]")
        self.logs: list[str] = []

    def step(self, name: str) -> dict[str, Any]:
        [step] = [s for s in self.job["steps"] if s.get("name") == name]
        assert isinstance(step, dict)
        return step

    def run(self, name: str, **context: str) -> Ran:
        step = self.step(name)
        values = {**self.context, **context}
        env = base_env(self.tmp)
        env.update(
            GITHUB_ACTIONS="true",
            GITHUB_REPOSITORY=REPOSITORY,
            GITHUB_OUTPUT=str(self.output),
            GITHUB_STEP_SUMMARY=str(self.summary),
            RUNNER_OS="Linux",
            FAKE_GH_STATE=str(self.comments),
            FAKE_GH_LOG=str(self.calls),
        )
        for scope in (self.workflow.get("env"), self.job.get("env"), step.get("env")):
            env.update({k: expand(v, values) for k, v in (scope or {}).items()})
        ran = run_script(step["run"], self.checkout, env)
        self.logs.append(ran.log)
        return ran

    def gh_calls(self) -> list[dict[str, Any]]:
        text = self.calls.read_text() if self.calls.exists() else ""
        return [json.loads(line) for line in text.splitlines()]

    def posted(self) -> list[dict[str, Any]]:
        comments: list[dict[str, Any]] = json.loads(self.comments.read_text())
        return comments

    def untested(self, run: set[str]) -> list[str]:
        """Steps neither run by the test nor known to be the CI system's own."""
        names = [s.get("name", "") for s in self.job["steps"]]
        uses = {s.get("name", "") for s in self.job["steps"] if "uses" in s}
        return [n for n in names if n not in run | uses and n not in NOT_RUN]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Remote:
    return seed(tmp_path_factory.mktemp("github"), "github")


@pytest.fixture
def remote(seeded: Remote, tmp_path: Path) -> Remote:
    return copy(seeded, tmp_path)


def pull_request(remote: Remote, tmp: Path, branch: str) -> Path:
    git(remote.dev, "add", "-A")
    git(remote.dev, "commit", "-qm", branch)
    git(remote.dev, "push", "-q", "origin", branch)
    return remote.checkout(tmp / "runner", branch)


PLAN_STEPS = ("Validate the recipes", "Check that every lock is fresh", "Plan")
COMMENT = "Post the plan as one comment, edited in place"


def test_a_pull_request_is_planned_and_commented_once(remote: Remote, tmp_path: Path) -> None:
    git(remote.dev, "checkout", "-q", "-b", "tune")
    write(remote.dev / "recipes" / "support.yaml", PLAN_RECIPE.replace("lora_r: 8", "lora_r: 16"))
    remote.cli("lock")
    runner = pull_request(remote, tmp_path, "tune")
    job = Job(runner, "plan", PULL_REQUEST, tmp_path)
    # Someone else's comment quoting the marker is not the plan's.
    job.comments.write_text(json.dumps([{"id": 5, "user": {"login": "mallory"}, "body": MARKER}]))
    for name in (*PLAN_STEPS, COMMENT):
        ran = job.run(name)
        assert ran.code == 0, f"{name}: {ran.log}"
    assert job.untested({*PLAN_STEPS, COMMENT}) == []

    plan = (runner / "plan.md").read_text()
    assert job.output.read_text() == "changes=true\n"  # exit 2 is a plan to review, not a failure
    assert plan.startswith("### ftctl plan") and "support" in plan
    assert job.summary.read_text() == plan
    assert [c["action"] for c in json_object((runner / "plan.json").read_text())["changes"]] == [
        "create"
    ]
    mallory, ours = job.posted()
    assert mallory["body"] == MARKER and ours["user"]["login"] == "github-actions[bot]"
    assert ours["body"] == f"{MARKER}\n{plan}"
    assert [(c["method"], c["endpoint"]) for c in job.gh_calls()] == [
        ("GET", f"repos/{REPOSITORY}/issues/7/comments"),
        ("POST", f"repos/{REPOSITORY}/issues/7/comments"),
    ]

    # The next push to the pull request edits that comment instead of adding one.
    (runner / "plan.md").write_text("### ftctl plan\n\n**newer**\n")
    assert job.run(COMMENT).code == 0
    assert [c["body"] for c in job.posted()] == [MARKER, f"{MARKER}\n### ftctl plan\n\n**newer**\n"]
    assert job.gh_calls()[-1]["method"] == "PATCH"
    assert job.gh_calls()[-1]["endpoint"] == f"repos/{REPOSITORY}/issues/comments/{ours['id']}"
    assert all(TOKEN not in log for log in job.logs)


def test_no_changes_exit_zero_and_a_failed_plan_fails(remote: Remote, tmp_path: Path) -> None:
    attest(remote, tmp_path, "support", remote.key)
    remote.push("record support", "README.md", "# fine-tunes\n")
    git(remote.dev, "checkout", "-q", "-b", "docs")
    write(remote.dev / "README.md", "# fine-tunes, documented\n")
    runner = pull_request(remote, tmp_path, "docs")
    job = Job(runner, "plan", PULL_REQUEST, tmp_path)
    ran = job.run("Plan")
    assert ran.code == 0, ran.log
    assert job.output.read_text() == "changes=false\n"
    assert "No changes" in (runner / "plan.md").read_text()

    job.output.write_text("")
    failed = job.run("Plan", **{"github.base_ref": "gone"})  # a base the checkout lacks
    assert failed.code == 1
    assert "origin/gone" in failed.log
    assert job.output.read_text() == ""


def test_a_stale_lock_fails_the_check(remote: Remote, tmp_path: Path) -> None:
    git(remote.dev, "checkout", "-q", "-b", "forgot-to-lock")
    write(remote.dev / "recipes" / "support.yaml", PLAN_RECIPE.replace("lora_r: 8", "lora_r: 4"))
    runner = pull_request(remote, tmp_path, "forgot-to-lock")
    ran = Job(runner, "plan", PULL_REQUEST, tmp_path).run("Check that every lock is fresh")
    assert ran.code == 1
    assert "lockfiles/support.lock: stale" in ran.log


def test_a_key_added_by_the_pull_request_is_not_trusted(remote: Remote, tmp_path: Path) -> None:
    """The plan trusts the base branch's keys: a pull request cannot vouch for its own run."""
    attest(remote, tmp_path, "support", remote.key)
    remote.push("record support", "README.md", "# fine-tunes\n")
    git(remote.dev, "checkout", "-q", "-b", "sneaky")
    write(remote.dev / "recipes" / "support.yaml", PLAN_RECIPE.replace("lora_r: 8", "lora_r: 32"))
    remote.cli("lock")
    intruder = tmp_path / "intruder-home"
    remote.cli("keygen", "intruder", env={"XDG_CONFIG_HOME": str(intruder)})
    attest(remote, tmp_path, "support", intruder / "ftctl" / "keys" / "intruder.key", minute=2)
    # Trusting the working tree's keys, the pull request's own record would hide the retrain.
    untrusting = json_object(remote.cli("plan", "--json"))
    assert [c["action"] for c in untrusting["changes"]] == ["no-op"]

    runner = pull_request(remote, tmp_path, "sneaky")
    job = Job(runner, "plan", PULL_REQUEST, tmp_path)
    ran = job.run("Plan")
    assert ran.code == 0, ran.log
    assert job.output.read_text() == "changes=true\n"
    plan = (runner / "plan.md").read_text()
    assert "**Trust changes** against origin/main" in plan and "keys/intruder.pub" in plan
    planned = json_object((runner / "plan.json").read_text())
    assert [c["action"] for c in planned["changes"]] == ["retrain"]
    assert [t["file"] for t in planned["trust_changes"]] == ["keys/intruder.pub"]


def apply_job(remote: Remote, tmp: Path) -> tuple[Path, Job]:
    """main checked out on the GPU runner, with a training a killed apply left finished."""
    from tests.rundirs import finished_run

    runner = remote.checkout(tmp / "runner", "main")
    planned = json_object(invoke_cli("plan", "--json", cwd=runner).out)
    fingerprint = str(planned["changes"][0]["fingerprint"]).removeprefix("sha256:")
    finished_run(runner, runner / ".ftctl" / "runs" / fingerprint, "support")
    secrets = {
        "secrets.FTCTL_SIGNING_KEY": remote.key.read_text(),  # the PEM text, as a secret holds it
        "secrets.FTCTL_SIGNING_KEY_PASSPHRASE": "",  # a secret that is not set
        "secrets.HF_TOKEN": HF_TOKEN,
        "github.ref_name": "main",
    }
    return runner, Job(runner, "apply", secrets, tmp)


def origin_log(remote: Remote) -> list[str]:
    proc = subprocess.run(
        ["git", "log", "--format=%an|%s", "main"],
        cwd=remote.origin,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.splitlines()


def never_shown(job: Job, remote: Remote) -> None:
    secret_lines = [line for line in remote.key.read_text().splitlines() if "-----" not in line]
    for log in job.logs:
        assert HF_TOKEN not in log
        assert all(line not in log for line in secret_lines)


def test_apply_records_and_commits_past_a_concurrent_push(remote: Remote, tmp_path: Path) -> None:
    runner, job = apply_job(remote, tmp_path)
    ran = job.run("Apply")
    assert ran.code == 0, ran.log
    assert "Apply complete: 1 trained" in ran.log
    [manifest] = (runner / "manifests" / "support").glob("*.intoto.json")

    remote.push("a change merged while apply ran", "NOTES.md", "meanwhile\n")
    committed = job.run("Commit the new manifests")
    assert committed.code == 0, committed.log
    assert "push refused (attempt 1)" in committed.log
    assert origin_log(remote)[:2] == [
        "github-actions[bot]|ftctl apply: record the new manifests [skip ci]",
        "t|a change merged while apply ran",
    ]
    tree = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", "main", "manifests/"],
        cwd=remote.origin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert manifest.relative_to(runner).as_posix() in tree
    assert "no new manifests" in job.run("Commit the new manifests").log
    assert job.untested({"Apply", "Commit the new manifests"}) == []
    never_shown(job, remote)


@pytest.mark.slow
def test_a_push_that_keeps_failing_leaves_the_manifests_for_the_next_apply(
    remote: Remote, tmp_path: Path
) -> None:
    runner, job = apply_job(remote, tmp_path)
    assert job.run("Apply").code == 0
    hook = remote.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    refused = job.run("Commit the new manifests")  # five attempts, 15 s of backoff
    assert refused.code == 1
    assert "could not push the new manifests to main" in refused.log
    status = subprocess.run(
        ["git", "status", "--porcelain", "manifests"], cwd=runner, capture_output=True, text=True
    ).stdout
    assert status.startswith("?? manifests/support/")  # left in the work tree, uncommitted
    hook.unlink()
    again = job.run("Commit the new manifests")
    assert again.code == 0, again.log
    assert origin_log(remote)[0].endswith("[skip ci]")
    never_shown(job, remote)
