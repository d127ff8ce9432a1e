"""The workspace: what counts as one, where a recipe publishes, how its paths resolve."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ftctl.errors import ConfigError, UsageError, ValidationFailed
from ftctl.workspace import discover, discover_existing, resolve_path
from tests.conftest import RunCLI, write


def test_a_directory_without_ftctl_yaml_or_recipes_is_no_workspace(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    with pytest.raises(UsageError, match="is not an ftctl workspace"):
        discover_existing(tmp_path)
    (tmp_path / "recipes").mkdir()
    assert discover_existing(tmp_path).root == tmp_path.resolve()


@pytest.mark.parametrize("args", [["plan"], ["plan", "--json"], ["lock"], ["lock", "--check"]])
def test_plan_and_lock_outside_a_workspace_fail(
    tmp_path: Path, run_cli: RunCLI, args: list[str]
) -> None:
    (tmp_path / ".git").mkdir()
    result = run_cli(*args, cwd=tmp_path)
    assert result.code == 1 and result.out == ""
    assert result.err.splitlines() == [
        f"ftctl: error: {tmp_path.resolve()} is not an ftctl workspace (no ftctl.yaml, no recipes/); "
        "run ftctl in a workspace (or -C DIR), or create one with `ftctl init`"
    ]


def test_ftctl_yaml_alone_makes_a_workspace(tmp_path: Path, run_cli: RunCLI) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path / "ftctl.yaml", "recipes: teams/*/recipes\n")
    assert discover_existing(tmp_path).exists


def test_publish_target_defaults_to_the_registry(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path / "ftctl.yaml", "registry: hf://acme\n")
    workspace = discover(tmp_path)
    assert workspace.publish_target("bot", None) == "hf://acme/bot"
    assert workspace.publish_target("bot", "file://elsewhere") == "file://elsewhere"


def test_paths_resolve_against_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_path(tmp_path, "data/x.jsonl") == tmp_path / "data" / "x.jsonl"
    assert resolve_path(tmp_path, "/abs/x") == Path("/abs/x")
    assert resolve_path(tmp_path, "~/x") == tmp_path / "home" / "x"


# --- paths a recipe names stay in the workspace, unless ftctl.yaml allows more -------------

RECIPE = """\
base_model: ./models/tiny
adapter: lora
datasets:
  - path: data/train.jsonl
    type: alpaca
micro_batch_size: 2
gradient_accumulation_steps: 2
learning_rate: 0.001
"""


def _problems(root: Path, recipe: str) -> list[str]:
    from ftctl.recipe.load import load_recipe

    path = write(root / "recipes" / "a.yaml", recipe)
    return [p.render() for p in discover(root).path_problems(load_recipe(path, "recipes/a.yaml"))]


@pytest.fixture
def inside(tmp_path: Path) -> Path:
    """A workspace with a model and a dataset, beside ``outside/`` holding the same."""
    root = tmp_path / "ws"
    (root / ".git").mkdir(parents=True)
    for base in (root, tmp_path / "outside"):
        write(base / "models" / "tiny" / "config.json", "{}\n")
        write(base / "data" / "train.jsonl", "{}\n")
    return root


def test_paths_inside_the_workspace_and_hub_ids_pass(inside: Path) -> None:
    assert _problems(inside, RECIPE) == []
    hub = RECIPE.replace("./models/tiny", "org/model").replace("data/train.jsonl", "org/data@v1")
    assert _problems(inside, hub) == []
    assert _problems(inside, RECIPE.replace("./models/tiny", "../ws/models/tiny")) == []


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("./models/tiny", "/etc", "1:13: base_model: '/etc'"),
        ("./models/tiny", "../outside/models/tiny", "1:13: base_model: '../outside/models/tiny'"),
        ("./models/tiny", "~/models/tiny", "1:13: base_model: '~/models/tiny'"),
        ("data/train.jsonl", "/etc/shadow", "4:11: datasets[0].path: '/etc/shadow'"),
        ("data/train.jsonl", "../outside/data", "4:11: datasets[0].path: '../outside/data'"),
        ("learning_rate", "deepspeed: ../ds.json\nlearning_rate", "8:12: deepspeed: '../ds.json'"),
        ("learning_rate", "output_dir: /tmp/x\nlearning_rate", "8:13: output_dir: '/tmp/x'"),
        (
            "learning_rate",
            "lora_model_dir: /srv/a\nlearning_rate",
            "8:17: lora_model_dir: '/srv/a'",
        ),
    ],
)
def test_a_path_outside_is_one_located_problem(
    inside: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str, where: str
) -> None:
    monkeypatch.setenv("HOME", str(inside.parent / "outside"))
    (problem,) = _problems(inside, RECIPE.replace(old, new))
    shown = where.split(": ", 1)[1].split(": ")[1]
    assert problem == (
        f"recipes/a.yaml:{where} lies outside the workspace; move it into the repository, "
        f"or allow it in ftctl.yaml: allow_paths: [{shown}]"
    )


def test_a_symlink_out_of_the_workspace_is_refused(inside: Path) -> None:
    (inside / "data" / "link.jsonl").symlink_to(inside.parent / "outside" / "data" / "train.jsonl")
    (problem,) = _problems(inside, RECIPE.replace("data/train.jsonl", "data/link.jsonl"))
    assert "datasets[0].path: 'data/link.jsonl' lies outside the workspace" in problem


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            "[/etc/passwd]",
            "datasets[0].data_files[0]: '/etc/passwd' leads outside the dataset's path",
        ),
        ("[../../x]", "datasets[0].data_files[0]: '../../x' leads outside the dataset's path"),
        ("[~/x]", "'~/x' leads outside the dataset's path"),
        ('["a\\0b"]', "datasets[0].data_files[0]: 'a\\x00b' holds a NUL byte"),
    ],
)
def test_data_files_stay_inside_their_dataset(inside: Path, files: str, message: str) -> None:
    recipe = RECIPE.replace("type: alpaca", f"type: alpaca\n    data_files: {files}")
    (problem,) = _problems(inside, recipe)
    assert message in problem
    assert _problems(inside, recipe.replace(files, "[a/b.jsonl, ./c.jsonl]")) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '"data/train\\0.jsonl"',
            "4:11: datasets[0].path: 'data/train\\x00.jsonl' holds a NUL byte",
        ),
        ('"data/\\e[2J\\nftctl: warning: x"', "holds a control character"),
        ('"data/\\u202etxt.lmth"', "holds a control character"),  # a right-to-left override
    ],
)
def test_nul_and_control_characters_are_located_problems(
    inside: Path, text: str, message: str
) -> None:
    (problem,) = _problems(inside, RECIPE.replace("data/train.jsonl", text))
    assert message in problem
    assert problem.isprintable()  # escaped: one line, no escape sequence reaches a terminal


def test_allow_paths_lets_listed_roots_in(inside: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = inside.parent / "outside"
    monkeypatch.setenv("HOME", str(outside))
    recipe = RECIPE.replace("./models/tiny", "~/models/tiny").replace(
        "data/train.jsonl", str(outside / "data" / "train.jsonl")
    )
    assert len(_problems(inside, recipe)) == 2
    write(inside / "ftctl.yaml", "allow_paths: [../outside/models, ~/data]\n")
    assert _problems(inside, recipe) == []
    # Resolved through symlinks too: a link inside the allowed root that leads out is refused.
    (outside / "data" / "link.jsonl").symlink_to("/etc/hostname")
    (problem,) = _problems(inside, recipe.replace("data/train.jsonl", "data/link.jsonl"))
    assert "lies outside the workspace" in problem


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("/proc", "ftctl never reads /proc, /sys or /dev"),
        ("/dev/../dev/shm", "ftctl never reads /proc, /sys or /dev"),
        ('"/data\\e[2J"', "holds a control character"),
    ],
)
def test_allow_paths_refuses_system_trees_and_control_characters(
    inside: Path, entry: str, message: str
) -> None:
    write(inside / "ftctl.yaml", f"allow_paths: [{entry}]\n")
    with pytest.raises(ValidationFailed) as caught:
        discover(inside)
    assert message in caught.value.problems[0].render()


def test_ftctl_yaml_that_is_a_fifo_or_leaves_the_workspace_is_refused(inside: Path) -> None:
    outside = write(inside.parent / "outside" / "ftctl.yaml", "recipes: recipes\n")
    (inside / "ftctl.yaml").symlink_to(outside)
    with pytest.raises(UsageError, match=r"ftctl\.yaml is a symlink leaving the workspace"):
        discover(inside)
    (inside / "ftctl.yaml").unlink()
    os.mkfifo(inside / "ftctl.yaml")
    with pytest.raises(ConfigError, match="is a FIFO"):  # never quietly the defaults
        discover(inside)


def test_a_recipe_symlink_loop_is_one_error(inside: Path) -> None:
    (inside / "recipes").mkdir()
    (inside / "recipes" / "loop.yaml").symlink_to("loop.yaml")
    with pytest.raises(UsageError, match=r"recipes/loop.yaml: a symlink loop"):
        discover(inside).recipe_paths()


def test_the_worker_confines_what_it_reads(inside: Path) -> None:
    from ftctl.errors import FtctlError
    from ftctl.worker.inputs import data_file
    from ftctl.worker.inputs import resolve_path as worker_path

    assert worker_path(inside, "data/train.jsonl") == inside / "data" / "train.jsonl"
    with pytest.raises(FtctlError, match=r"datasets\[0\]\.path: '/etc/shadow' lies outside"):
        worker_path(inside, "/etc/shadow", "datasets[0].path")
    with pytest.raises(FtctlError, match="holds a NUL byte"):
        worker_path(inside, "a\0b")
    with pytest.raises(FtctlError, match="leads outside the dataset's path"):
        data_file(inside, "data", "/etc/passwd", "datasets[0]", inside.parent / "snapshot")
    assert data_file(inside, "data", "x.jsonl", "d", None) == str(inside / "data" / "x.jsonl")


def test_the_worker_reads_allow_paths_from_ftctl_yaml(tmp_path: Path) -> None:
    from ftctl.worker.inputs import resolve_path as worker_path

    root = tmp_path / "allowing"
    write(root / "ftctl.yaml", f"allow_paths: [{tmp_path / 'models'}]\n")
    assert worker_path(root, str(tmp_path / "models" / "m")) == tmp_path / "models" / "m"


# --- atomic writes leave temp files git never sees ----------------------------------------


def test_init_and_this_repository_ignore_atomic_write_temps(
    tmp_path: Path, run_cli: RunCLI
) -> None:
    import subprocess

    from tests.conftest import REPO

    assert run_cli("init", "new", cwd=tmp_path).code == 0
    root = tmp_path / "new"
    if not (root / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    temps = ["lockfiles/.alpha.lock.k2j3h4.tmp", "manifests/alpha/.x.intoto.json.ab12.tmp"]
    for base in (root, REPO):
        done = subprocess.run(
            ["git", "check-ignore", "--no-index", *temps], cwd=base, capture_output=True, text=True
        )
        assert done.stdout.split() == temps, base
    kept = subprocess.run(
        ["git", "check-ignore", "--no-index", "lockfiles/alpha.lock"], cwd=root, check=False
    )
    assert kept.returncode == 1  # the lock itself is committed
