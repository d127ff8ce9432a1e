"""The GitLab pipeline that `ftctl init --ci gitlab` writes, its job scripts run for real.

As for GitHub (test_github_steps.py): a workspace made by `ftctl init --ci gitlab` hosted in a
bare repository, checked out as the runner would, each job's script run there with ftctl as
installed here. GitLab's API is the boundary nothing here can reach: the note step talks to
tests/ci/gitlab_api.py on 127.0.0.1 instead.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.ci.gitlab_api import BOT_ID, MR, PROJECT, serve
from tests.ci.steps import HF_TOKEN, Ran, Remote, base_env, copy, load, run_script, seed
from tests.conftest import PLAN_RECIPE, git, invoke_cli, json_object, write

MARKER = "<!-- ftctl-plan -->"
NOTE_TOKEN = "glpat-NoteTokenNeverPrinted"
PUSH_TOKEN = "glpat-PushTokenNeverPrinted"


class Job:
    """One job of the pipeline as checked out in ``checkout``, its script run there."""

    def __init__(self, checkout: Path, name: str, variables: dict[str, str], tmp: Path) -> None:
        self.checkout, self.tmp = checkout, tmp
        self.pipeline = load(checkout / ".gitlab-ci.yml")
        self.job: dict[str, Any] = self.pipeline[name]
        self.env = base_env(tmp)
        self.env.update({k: str(v) for k, v in self.pipeline["variables"].items()})
        self.env.update({k: str(v) for k, v in self.job.get("variables", {}).items()})
        self.env.update(GITLAB_CI="true", CI_PROJECT_ID=PROJECT, CI_DEFAULT_BRANCH="main")
        self.env.update(variables)
        self.logs: list[str] = []

    def script(self) -> list[str]:
        """The script's entries but the installs, which reach the package index."""
        return [line for line in self.job["script"] if "pip install" not in line]

    def run(self, entries: list[str] | None = None, **variables: str) -> Ran:
        """Entries in one shell, as the runner runs a job's script."""
        lines = self.script() if entries is None else entries
        ran = run_script("\n".join(lines) + "\n", self.checkout, {**self.env, **variables})
        self.logs.append(ran.log)
        return ran


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Remote:
    return seed(tmp_path_factory.mktemp("gitlab"), "gitlab")


@pytest.fixture
def remote(seeded: Remote, tmp_path: Path) -> Remote:
    return copy(seeded, tmp_path)


def merge_request(remote: Remote, tmp: Path) -> Path:
    git(remote.dev, "checkout", "-q", "-b", "tune")
    write(remote.dev / "recipes" / "support.yaml", PLAN_RECIPE.replace("lora_r: 8", "lora_r: 16"))
    remote.cli("lock")
    git(remote.dev, "add", "-A")
    git(remote.dev, "commit", "-qm", "tune")
    git(remote.dev, "push", "-q", "origin", "tune")
    runner = remote.checkout(tmp / "runner", "tune")
    # A merge-request pipeline fetches the source branch only: the job fetches the target.
    git(runner, "update-ref", "-d", "refs/remotes/origin/main")
    return runner


def mr_variables(api: str, **extra: str) -> dict[str, str]:
    return {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_MERGE_REQUEST_IID": MR,
        "CI_API_V4_URL": api,
        "FTCTL_CACHE_KEY": "a-cache-key",
        **extra,
    }


def test_a_merge_request_is_planned_and_noted_once(remote: Remote, tmp_path: Path) -> None:
    runner = merge_request(remote, tmp_path)
    with serve(NOTE_TOKEN) as gitlab:
        for n in range(120):  # the MR's discussion so far: ours must be found past page 1
            gitlab.add_note(author=n, body=f"comment {n}")
        gitlab.add_note(author=666, body=f"{MARKER}\nnot the plan")  # someone quoting the marker
        job = Job(
            runner, "ftctl-plan", mr_variables(gitlab.url, FTCTL_NOTE_TOKEN=NOTE_TOKEN), tmp_path
        )
        ran = job.run()
        assert ran.code == 0, ran.log
        assert "posted the plan note" in ran.log
        plan = (runner / "plan.md").read_text()
        assert plan.startswith("### ftctl plan") and plan in ran.log  # the plan is in the job log
        [ours] = [n for n in gitlab.notes if n["author"]["id"] == BOT_ID]
        assert ours["body"] == f"{MARKER}\n{plan}"
        planned = json_object((runner / "plan.json").read_text())
        assert [c["action"] for c in planned["changes"]] == ["create"]
        assert set(job.job["artifacts"]["paths"]) == {"plan.md", "plan.json"}

        # The next pipeline of the merge request edits that note.
        (runner / "plan.md").write_text("### ftctl plan\n\n**newer**\n")
        note = [line for line in job.script() if "python3 - <<'EOF'" in line]
        again = job.run(note)
        assert again.code == 0, again.log
        assert f"updated the plan note {ours['id']}" in again.log
        assert ours["body"] == f"{MARKER}\n### ftctl plan\n\n**newer**\n"
        quoting = next(n for n in gitlab.notes if n["author"]["id"] == 666)
        assert quoting["body"] == f"{MARKER}\nnot the plan"
        assert len(gitlab.notes) == 122
        assert gitlab.requests[-1][0] == "PUT"
    assert all(NOTE_TOKEN not in log for log in job.logs)


def test_without_a_note_token_the_plan_stays_in_the_log(remote: Remote, tmp_path: Path) -> None:
    runner = merge_request(remote, tmp_path)
    with serve(NOTE_TOKEN) as gitlab:
        ran = Job(runner, "ftctl-plan", mr_variables(gitlab.url), tmp_path).run()
        assert ran.code == 0, ran.log
        assert "FTCTL_NOTE_TOKEN is not set" in ran.log
        assert gitlab.requests == []
    with serve("another token") as gitlab:  # a token GitLab refuses fails the job, unprinted
        job = Job(
            runner, "ftctl-plan", mr_variables(gitlab.url, FTCTL_NOTE_TOKEN=NOTE_TOKEN), tmp_path
        )
        refused = job.run()
        assert refused.code == 1
        assert f"GitLab answered 401 to GET {gitlab.url}/user" in refused.log
        assert NOTE_TOKEN not in refused.log


def test_a_failed_plan_fails_the_job(remote: Remote, tmp_path: Path) -> None:
    runner = merge_request(remote, tmp_path)
    job = Job(runner, "ftctl-plan", mr_variables("http://127.0.0.1:9/api/v4"), tmp_path)
    [plan] = [line for line in job.script() if "--detailed-exitcode" in line]
    ran = job.run(["TARGET=gone", plan])  # a target branch the checkout lacks
    assert ran.code == 1
    assert "origin/gone" in ran.log


def test_apply_records_and_pushes_with_the_push_token(remote: Remote, tmp_path: Path) -> None:
    from tests.rundirs import finished_run

    pushed = subprocess.run(
        ["git", "rev-parse", "main"], cwd=remote.origin, capture_output=True, text=True, check=True
    ).stdout.strip()
    runner = remote.checkout(tmp_path / "runner", pushed)  # GitLab checks out the commit, detached
    remote.push("merged after the pipeline started", "NOTES.md", "first\n")
    planned = json_object(invoke_cli("plan", "--json", cwd=runner).out)
    fingerprint = str(planned["changes"][0]["fingerprint"]).removeprefix("sha256:")
    finished_run(runner, runner / ".ftctl" / "runs" / fingerprint, "support")  # a killed apply's
    variables = {
        "CI_PIPELINE_SOURCE": "push",
        "CI_COMMIT_BRANCH": "main",
        "CI_SERVER_URL": f"file://{remote.origin.parent}",
        "CI_PROJECT_PATH": remote.origin.stem,
        "FTCTL_SIGNING_KEY": str(remote.key),  # a File variable: the path of the PEM file
        "HF_TOKEN": HF_TOKEN,
        "FTCTL_PUSH_TOKEN": PUSH_TOKEN,
    }
    job = Job(runner, "ftctl-apply", variables, tmp_path)
    *applying, record = job.script()
    ran = job.run(applying)
    assert ran.code == 0, ran.log
    assert "Apply complete: 1 trained" in ran.log
    assert (runner / "NOTES.md").read_text() == "first\n"  # it applied main as it is now

    remote.push("a change merged while apply ran", "NOTES.md", "second\n")
    # The runner's one shell keeps `status` from the apply's entry to this one.
    committed = job.run(["status=0", record])
    assert committed.code == 0, committed.log
    assert "push refused (attempt 1)" in committed.log
    log = subprocess.run(
        ["git", "log", "--format=%an|%s", "-3", "main"],
        cwd=remote.origin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert log == [
        "ftctl bot|ftctl apply: record the new manifests [skip ci]",
        "t|a change merged while apply ran",
        "t|merged after the pipeline started",
    ]
    failed = job.run(["status=1", record])  # a failed apply fails the job after recording
    assert failed.code == 1 and "no new manifests" in failed.log
    for text in job.logs:
        assert PUSH_TOKEN not in text and HF_TOKEN not in text


@pytest.mark.slow
def test_a_push_that_keeps_failing_leaves_the_manifests_for_the_next_apply(
    remote: Remote, tmp_path: Path
) -> None:
    from tests.rundirs import finished_run

    runner = remote.checkout(tmp_path / "runner", "main")
    planned = json_object(invoke_cli("plan", "--json", cwd=runner).out)
    fingerprint = str(planned["changes"][0]["fingerprint"]).removeprefix("sha256:")
    finished_run(runner, runner / ".ftctl" / "runs" / fingerprint, "support")
    variables = {"CI_COMMIT_BRANCH": "main", "FTCTL_SIGNING_KEY": str(remote.key)}
    job = Job(runner, "ftctl-apply", variables, tmp_path)
    hook = remote.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    refused = job.run()  # five attempts, 15 s of backoff
    assert refused.code == 1
    assert "Apply complete: 1 trained" in refused.log
    assert "could not push the new manifests to main" in refused.log
    status = subprocess.run(
        ["git", "status", "--porcelain", "manifests"], cwd=runner, capture_output=True, text=True
    ).stdout
    assert status.startswith("?? manifests/support/")  # left in the work tree, uncommitted
    hook.unlink()
    again = job.run()  # the next pipeline: nothing to train, the manifest committed
    assert again.code == 0, again.log
    assert "pushed the new manifests to main" in again.log
