"""The command line: validate, schema, init, --version, -C, and workspace checks."""

from __future__ import annotations

import json
from pathlib import Path

from ftctl import __version__
from ftctl.workspace import WorkspaceConfig, discover, find_root
from tests.conftest import REPO, VALID_RECIPE, RunCLI, write


def test_version(run_cli: RunCLI) -> None:
    result = run_cli("--version")
    assert result.code == 0
    assert result.out.strip() == f"ftctl {__version__}"


def test_help_lists_commands(run_cli: RunCLI) -> None:
    result = run_cli("--help")
    assert result.code == 0
    for command in ("validate", "schema", "init"):
        assert command in result.out


def test_unknown_command_exits_1(run_cli: RunCLI) -> None:
    result = run_cli("bogus")
    assert result.code == 1
    assert "No such command 'bogus'" in result.err


def test_validate_this_repository(run_cli: RunCLI) -> None:
    result = run_cli("validate", cwd=REPO)
    assert result.code == 0, result.out
    assert result.out.strip() == "2 recipes valid"


def test_validate_examples_and_recipes(run_cli: RunCLI) -> None:
    result = run_cli("validate", "recipes", "examples/", cwd=REPO)
    assert result.code == 0, result.out
    assert result.out.strip() == "7 recipes valid"


def test_validate_reports_every_file(workspace: Path, run_cli: RunCLI) -> None:
    write(workspace / "recipes" / "good.yaml", VALID_RECIPE)
    write(workspace / "recipes" / "a.yaml", VALID_RECIPE.replace("lora_r: 8", "lora_r: 0"))
    write(workspace / "recipes" / "b.yml", VALID_RECIPE + "lora_alhpa: 3\n")
    result = run_cli("validate", cwd=workspace)
    assert result.code == 1
    assert result.lines == [
        "recipes/a.yaml:3:9: lora_r: must be > 0",
        "recipes/b.yml:11:1: lora_alhpa: unknown key; did you mean 'lora_alpha'?",
    ]
    assert result.err.strip() == "2 problems in 2 of 3 files"


def test_same_name_twice(workspace: Path, run_cli: RunCLI) -> None:
    write(workspace / "recipes" / "x.yaml", VALID_RECIPE)
    write(workspace / "recipes" / "x.yml", VALID_RECIPE)
    result = run_cli("validate", cwd=workspace)
    assert result.code == 1
    assert result.lines == [
        "recipes/x.yml:1:1: recipe name 'x' is also used by recipes/x.yaml; rename one file; "
        "a recipe's name is its file name without .yaml"
    ]


def test_no_recipes_is_an_error(workspace: Path, run_cli: RunCLI) -> None:
    result = run_cli("validate", cwd=workspace)
    assert result.code == 1
    assert result.err.startswith("ftctl: error: no recipes found")


def test_missing_path(workspace: Path, run_cli: RunCLI) -> None:
    result = run_cli("validate", "nope.yaml", cwd=workspace)
    assert result.code == 1
    assert result.lines == ["nope.yaml: no such file or directory"]


def test_directory_without_recipes(workspace: Path, run_cli: RunCLI) -> None:
    (workspace / "empty").mkdir()
    result = run_cli("validate", "empty", cwd=workspace)
    assert result.code == 1
    assert result.lines == ["empty: no recipes (*.yaml) in this directory"]


def test_dash_c_runs_elsewhere(workspace: Path, tmp_path: Path, run_cli: RunCLI) -> None:
    write(workspace / "recipes" / "good.yaml", VALID_RECIPE)
    result = run_cli("-C", str(workspace), "validate", cwd=tmp_path)
    assert result.code == 0
    assert result.out.strip() == "1 recipe valid"


def test_dash_c_missing_directory(tmp_path: Path, run_cli: RunCLI) -> None:
    result = run_cli("-C", "nowhere", "validate", cwd=tmp_path)
    assert result.code == 1
    assert result.err.strip() == "ftctl: error: -C nowhere: No such file or directory"


def test_discovery_finds_config_above(workspace: Path, run_cli: RunCLI) -> None:
    write(workspace / "ftctl.yaml", "recipes: team/recipes\n")
    write(workspace / "team" / "recipes" / "r.yaml", VALID_RECIPE)
    sub = workspace / "team" / "notes"
    sub.mkdir()
    assert find_root(sub.resolve()) == workspace.resolve()
    result = run_cli("validate", cwd=sub)
    assert result.code == 0
    assert result.out.strip() == "1 recipe valid"


def test_discovery_stops_at_git_root(tmp_path: Path) -> None:
    write(tmp_path / "ftctl.yaml", "recipes: elsewhere\n")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    assert find_root(repo) is None
    workspace = discover(repo)
    assert workspace.root == repo.resolve()
    assert workspace.config == WorkspaceConfig()


def test_recipes_glob(workspace: Path, run_cli: RunCLI) -> None:
    write(workspace / "ftctl.yaml", "recipes: 'teams/*/*.yaml'\n")
    write(workspace / "teams" / "nlp" / "one.yaml", VALID_RECIPE)
    write(workspace / "teams" / "cv" / "two.yaml", VALID_RECIPE)
    result = run_cli("validate", cwd=workspace)
    assert result.out.strip() == "2 recipes valid"


def test_broken_workspace_config_still_checks_recipes(workspace: Path, run_cli: RunCLI) -> None:
    write(workspace / "ftctl.yaml", "registry: s3://bucket\nexecutors:\n  gpu: {type: ssh}\n")
    write(workspace / "recipes" / "r.yaml", VALID_RECIPE.replace("lora_r: 8", "lora_r: -1"))
    result = run_cli("validate", cwd=workspace)
    assert result.code == 1
    assert result.lines == [
        "ftctl.yaml:1:11: registry: must be file://PATH or hf://ORG",
        "ftctl.yaml:3:8: executors.gpu.host: required key is missing; add host: ...",
        "recipes/r.yaml:3:9: lora_r: must be > 0",
    ]


def test_executor_must_exist(workspace: Path, run_cli: RunCLI) -> None:
    write(workspace / "ftctl.yaml", "executors:\n  gpu-box: {type: ssh, host: 10.0.0.5}\n")
    write(workspace / "recipes" / "ok.yaml", VALID_RECIPE + "ftctl: {executor: gpu-box}\n")
    write(workspace / "recipes" / "typo.yaml", VALID_RECIPE + "ftctl: {executor: gpu-bx}\n")
    result = run_cli("validate", cwd=workspace)
    assert result.lines == [
        "recipes/typo.yaml:11:19: ftctl.executor: no executor named 'gpu-bx'; did you mean 'gpu-box'?"
    ]


def test_local_executor_name_is_reserved(workspace: Path, run_cli: RunCLI) -> None:
    write(workspace / "ftctl.yaml", "executors:\n  local: {type: ssh, host: h}\n")
    write(workspace / "recipes" / "r.yaml", VALID_RECIPE)
    result = run_cli("validate", cwd=workspace)
    assert result.lines == [
        "ftctl.yaml:2:3: executors: the name 'local' is reserved for the local executor"
    ]


def test_recipe_references(workspace: Path, run_cli: RunCLI) -> None:
    write(workspace / "recipes" / "sft.yaml", VALID_RECIPE)
    write(workspace / "recipes" / "dpo.yaml", VALID_RECIPE.replace("./models/tiny", "recipe:sft"))
    write(workspace / "recipes" / "typo.yaml", VALID_RECIPE.replace("./models/tiny", "recipe:stf"))
    result = run_cli("validate", cwd=workspace)
    assert result.lines == [
        "recipes/typo.yaml:1:13: base_model: no recipe named 'stf' in this workspace; "
        "did you mean 'sft'?"
    ]


def test_recipe_cycle(workspace: Path, run_cli: RunCLI) -> None:
    for name, upstream in (("a", "b"), ("b", "c"), ("c", "a")):
        write(
            workspace / "recipes" / f"{name}.yaml",
            VALID_RECIPE.replace("./models/tiny", f"recipe:{upstream}"),
        )
    result = run_cli("validate", cwd=workspace)
    assert result.code == 1
    assert result.lines == [
        "recipes/a.yaml:1:13: base_model: recipes build on each other in a cycle: a -> b -> c -> a; "
        "break the cycle; one of them must start from a model"
    ]


def test_init_scaffolds_a_valid_workspace(tmp_path: Path, run_cli: RunCLI) -> None:
    result = run_cli("init", "new", cwd=tmp_path)
    assert result.code == 0
    root = tmp_path / "new"
    for relative in (
        "ftctl.yaml",
        "recipes/example.yaml",
        "lockfiles/requirements.txt",
        "manifests/.gitkeep",
        "keys/.gitkeep",
        ".gitignore",
    ):
        assert (root / relative).is_file(), relative
    assert ".ftftl/" not in (root / ".gitignore").read_text()
    assert ".ftctl/" in (root / ".gitignore").read_text()
    assert (root / ".git").is_dir()  # init made the repository
    assert run_cli("validate", cwd=root).out.strip() == "1 recipe valid"


def test_init_keeps_existing_files(tmp_path: Path, run_cli: RunCLI) -> None:
    write(tmp_path / "ftctl.yaml", "recipes: mine\n")
    result = run_cli("init", cwd=tmp_path)
    assert result.code == 0
    assert (tmp_path / "ftctl.yaml").read_text() == "recipes: mine\n"
    assert "kept    " in result.err and "created " in result.err


def test_schema_for_editors(run_cli: RunCLI) -> None:
    result = run_cli("schema")
    schema = json.loads(result.out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert "base_model" in schema["required"] and "learning_rate" in schema["required"]
    assert schema["properties"]["lora_r"]["default"] == 8
    workspace = json.loads(run_cli("schema", "workspace").out)
    assert set(workspace["properties"]) == {
        *("recipes", "registry", "pins", "trust", "executors", "allow_paths"),
    }


def test_schema_agrees_with_the_validator() -> None:
    """An editor using the schema accepts every shipped recipe and flags a typo."""
    import jsonschema  # type: ignore[import-untyped]  # jsonschema ships no type hints
    from ruamel.yaml import YAML

    from ftctl.recipe.schema import schema_dict

    validator = jsonschema.Draft202012Validator(schema_dict("recipe"))
    yaml = YAML(typ="safe")
    for path in [*(REPO / "examples").glob("*.yaml"), *(REPO / "recipes").glob("*.yaml")]:
        errors = list(validator.iter_errors(yaml.load(path.read_text(encoding="utf-8"))))
        assert errors == [], (path.name, [e.message for e in errors])
    typo = yaml.load(VALID_RECIPE + "lora_alhpa: 3\n")
    assert any("lora_alhpa" in e.message for e in validator.iter_errors(typo))


def test_init_where_nothing_can_be_written(tmp_path: Path, run_cli: RunCLI) -> None:
    (tmp_path / "afile").write_text("")
    result = run_cli("init", str(tmp_path / "afile" / "sub"), cwd=tmp_path)
    assert result.code == 1
    assert result.err.startswith(f"ftctl: error: cannot create {tmp_path}/afile/sub/ftctl.yaml: ")
    assert result.err.rstrip().endswith("choose a directory you can write to")
