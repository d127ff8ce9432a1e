"""The hostile-input corpus: what each case plants in a working workspace, and what must happen.

A case changes a copy of a complete workspace (one recipe, its lock, a
signing key, a signed manifest, the run directory it records, warm caches)
with the ``plants`` below, runs each command in ``runs`` as a subprocess, and
expects the outcome given there:

- ``error``: exit 1 and exactly one ``ftctl: error:`` line holding ``match``;
- ``problems``: exit 1 and ``match`` on stdout (``validate``'s located problems);
- ``warning``: exit 0 and exactly one ``ftctl: warning:`` line holding ``match``;
- ``ok``: exit 0.

Paths are relative to the workspace; ``../outside/`` is a directory next to
it that no command may touch. ``{manifest}`` and ``{run}`` stand for the
template's manifest and run directory. Inputs too large or too odd to commit
(deep nesting, FIFOs, symlinks) are made by the plants; the rest are files
under ``inputs/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RECIPE = "recipes/alpha.yaml"
LOCK = "lockfiles/alpha.lock"
KEY = "keys/ci.pub"
RESULT = "{run}/result.json"
DEEP_YAML = "[" * 50_000 + "]" * 50_000 + "\n"
DEEP_JSON = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000


@dataclass(frozen=True)
class Plant:
    """One change to the workspace: ``kind`` is file, input, append, replace, fifo, symlink, remove, age."""

    kind: str
    path: str
    value: str = ""
    extra: str = ""


DVC_REPO = Plant("file", ".dvc/config", "")  # makes the workspace a DVC repository


def file(path: str, text: str) -> Plant:
    return Plant("file", path, text)


def inp(path: str, name: str) -> Plant:
    """Copy ``inputs/NAME`` to ``path``."""
    return Plant("input", path, name)


def append(path: str, text: str) -> Plant:
    return Plant("append", path, text)


def replace(path: str, old: str, new: str) -> Plant:
    return Plant("replace", path, old, new)


def fifo(path: str) -> Plant:
    return Plant("fifo", path)


def symlink(path: str, target: str) -> Plant:
    return Plant("symlink", path, target)


def remove(path: str) -> Plant:
    return Plant("remove", path)


def age(path: str, seconds: int) -> Plant:
    return Plant("age", path, str(seconds))


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    outcome: str
    match: str = ""


@dataclass(frozen=True)
class Case:
    id: str
    cls: str  # secret, crash, traceback, hang, clobber, injection
    plants: tuple[Plant, ...]
    runs: tuple[Run, ...]
    changes: tuple[str, ...] = (".ftctl/**",)  # globs of workspace paths the commands may change
    forbid: tuple[str, ...] = ()  # regexes no output line may match
    hub: bool = False  # point HF_ENDPOINT at the hostile Hub
    env: dict[str, str] = field(default_factory=dict)


def runs(outcome: str, match: str, *commands: str) -> tuple[Run, ...]:
    return tuple(Run(tuple(c.split()), outcome, match) for c in commands)


READERS_OF_RECIPES = ("validate", "lock --check", "plan")
READERS_OF_LOCKS = ("lock --check", "plan")
READERS_OF_MANIFESTS = ("verify {manifest}", "show {manifest}")
FORGED = (r"^ftctl: warning: forged", r"^forged", "\x1b")
OUTSIDE_RECIPE = "../outside/r.yaml"
MD_RECIPE = "base_model: ./models/tiny\nadapter: lora\nlora_r: 8\n"
# A recipe that is valid but for what a case plants in it (its name, say).
FULL_RECIPE = (
    MD_RECIPE + "datasets:\n  - {path: data/train.jsonl, type: alpaca}\n"
    "micro_batch_size: 2\ngradient_accumulation_steps: 2\nlearning_rate: 0.001\n"
)

CASES: tuple[Case, ...] = (
    # --- secrets: nothing from the environment or a file outside the workspace is echoed ----
    Case(
        "pins-proc-environ",
        "secret",
        (append(RECIPE, "ftctl:\n  pins: /proc/self/environ\n"),),
        runs("error", "outside the workspace", "lock --check", "lock"),
    ),
    Case(
        "pins-outside-symlink",
        "secret",
        (symlink("lockfiles/requirements.txt", "/proc/self/environ"),),
        runs("error", "requirements.txt", "lock --check", "lock"),
    ),
    Case(
        "pins-holding-token",
        "secret",
        (file("lockfiles/requirements.txt", "HF_TOKEN=hf_AbCdEf012345\n"),),
        runs("error", "not a requirement", "lock --check", "lock"),
    ),
    Case(
        "recipe-symlink-outside",
        "secret",
        (
            file(OUTSIDE_RECIPE, "hf_SECRETMARKER: 1\n"),
            symlink("recipes/evil.yaml", "../" + OUTSIDE_RECIPE),
        ),
        runs("error", "outside the workspace", *READERS_OF_RECIPES),
    ),
    Case(
        "recipes-glob-outside",
        "secret",
        (
            file(OUTSIDE_RECIPE, "hf_SECRETMARKER: 1\n"),
            file("ftctl.yaml", "recipes: '../outside/*.yaml'\n"),
        ),
        runs("error", "outside the workspace", *READERS_OF_RECIPES),
    ),
    Case(
        "deepspeed-outside",
        "secret",
        (append(RECIPE, "deepspeed: /proc/self/environ\n"),),
        runs("problems", "deepspeed", "validate"),
    ),
    Case(
        "dataset-outside",
        "secret",
        (replace(RECIPE, "data/train.jsonl", "/proc/self/environ"),),
        runs("error", "outside the workspace", "lock", "lock --check", "plan", "train alpha"),
    ),
    # --- crashes in C: nesting libyaml / the JSON decoder cannot take ----------------------
    Case(
        "deep-yaml-recipe",
        "crash",
        (file(RECIPE, DEEP_YAML),),
        (
            Run(("validate",), "problems", "nested"),
            *runs("error", "nested", "lock --check", "plan"),
        ),
    ),
    Case(
        "deep-yaml-lock",
        "crash",
        (file(LOCK, DEEP_YAML),),
        (Run(("lock", "--check"), "report", "nested"), Run(("plan",), "error", "alpha.lock")),
    ),
    Case(
        "deep-yaml-ftctl-yaml",
        "crash",
        (file("ftctl.yaml", DEEP_YAML),),
        runs("error", "nested", "plan", "lock --check", "audit"),
    ),
    Case(
        "deep-json-manifest",
        "crash",
        (file("{manifest}", DEEP_JSON),),
        (
            *runs("report", "nested", "verify {manifest}"),
            *runs("error", "nested", "show {manifest}"),
        ),
    ),
    Case(
        "deep-json-manifest-audit",
        "crash",
        (file("{manifest}", DEEP_OBJECT),),
        runs("report", "nested", "audit"),
    ),
    Case(
        "deep-json-result",
        "crash",
        (file(RESULT, DEEP_JSON),),
        runs("error", "nested", "attest {run} --recipe alpha --external"),
    ),
    Case(
        "deep-json-embedded-copy",
        "crash",
        (file("{run}/adapter/.ftctl/provenance.intoto.json", DEEP_JSON),),
        runs("report", "nested", "verify {manifest} --artifacts {run}/adapter"),
    ),
    Case(
        "deep-json-statcache",
        "crash",
        (file(".ftctl/statcache.json", DEEP_OBJECT),),
        runs("ok", "", "plan", "lock --check"),
        changes=(".ftctl/**",),
    ),
    Case(
        "deep-json-parsecache",
        "crash",
        (file(".ftctl/parsed.json", DEEP_JSON),),
        runs("ok", "", "plan", "validate"),
        changes=(".ftctl/**",),
    ),
    Case(
        "deep-json-planmemo",
        "crash",
        (file(".ftctl/plan-memo.json", DEEP_JSON),),
        runs("ok", "", "plan"),
        changes=(".ftctl/**",),
    ),
    # --- tracebacks: malformed values that must be located problems ----------------------
    Case(
        "tag-int",
        "traceback",
        (append(RECIPE, "seed: !!int abc\n"),),
        runs("problems", "'abc' is not a valid int", "validate"),
    ),
    Case(
        "tag-float",
        "traceback",
        (replace(RECIPE, "learning_rate: 0.001", "learning_rate: !!float x"),),
        runs("problems", "'x' is not a valid float", "validate"),
    ),
    Case(
        "tag-bool",
        "traceback",
        (append(RECIPE, "bf16: !!bool maybe\n"),),
        runs("problems", "'maybe' is not a valid bool", "validate"),
    ),
    Case(
        "huge-int",
        "traceback",
        (append(RECIPE, "seed: " + "9" * 5000 + "\n"),),
        (Run(("validate",), "problems", "4300 digits"), *runs("error", "4300 digits", "plan")),
    ),
    Case(
        "lock-tag-int",
        "traceback",
        (inp(LOCK, "lock-tag-int.lock"),),
        (
            Run(("lock", "--check"), "report", "not a valid int"),
            Run(("plan",), "error", "alpha.lock"),
        ),
    ),
    Case(
        "lock-not-utf8",
        "traceback",
        (inp(LOCK, "not-utf8.bin"),),
        (Run(("lock", "--check"), "report", "utf-8"), Run(("plan",), "error", "alpha.lock")),
    ),
    Case(
        "dvc-md5-zzz",
        "traceback",
        (inp("data/train.jsonl.dvc", "md5-zzz.dvc"), DVC_REPO),
        runs("error", "md5", "lock --update"),
    ),
    Case(
        "dvc-outs-5",
        "traceback",
        (inp("data/train.jsonl.dvc", "outs-5.dvc"), DVC_REPO),
        runs("error", "outs", "lock --update"),
    ),
    Case(
        "dvc-lock-stages-5",
        "traceback",
        (inp("dvc.lock", "stages-5.dvc.lock"), DVC_REPO),
        runs("error", "dvc.lock", "lock --update"),
    ),
    Case(
        "dvc-deep",
        "traceback",
        (file("data/train.jsonl.dvc", DEEP_YAML), DVC_REPO),
        runs("error", "train.jsonl.dvc", "lock --update"),
    ),
    Case(
        "nul-in-dataset-path",
        "traceback",
        (replace(RECIPE, "data/train.jsonl", '"data/train\\0.jsonl"'),),
        (
            Run(("validate",), "problems", "datasets[0].path: 'data/train\\x00.jsonl' holds a NUL"),
            *runs("error", "holds a NUL byte", "lock --check", "lock", "plan", "train alpha"),
        ),
    ),
    Case(
        "nul-in-base-model",
        "traceback",
        (replace(RECIPE, "./models/tiny", '"./models/t\\0iny"'),),
        (
            Run(("validate",), "problems", "base_model: './models/t\\x00iny' holds a NUL"),
            *runs("error", "holds a NUL byte", "lock --check", "lock", "plan", "train alpha"),
        ),
    ),
    Case(
        "manifest-payload-5",
        "traceback",
        (inp("{manifest}", "payload-5.json"),),
        (*runs("report", "DSSE", "verify {manifest}"), *runs("error", "DSSE", "show {manifest}")),
    ),
    Case(
        "manifest-payload-5-audit",
        "traceback",
        (inp("{manifest}", "payload-5.json"),),
        runs("report", "DSSE", "audit"),
    ),
    Case(
        "manifest-not-json",
        "traceback",
        (inp("{manifest}", "not-json.json"),),
        (*runs("report", "JSON", "verify {manifest}"), *runs("error", "JSON", "show {manifest}")),
    ),
    Case(
        "manifest-not-utf8",
        "traceback",
        (inp("{manifest}", "not-utf8.bin"),),
        (*runs("report", "JSON", "verify {manifest}"), *runs("error", "JSON", "show {manifest}")),
    ),
    Case(
        "manifest-duplicate-key",
        "traceback",
        (inp("{manifest}", "duplicate-key.json"),),
        (
            *runs("report", "duplicate", "verify {manifest}"),
            *runs("error", "duplicate", "show {manifest}"),
        ),
    ),
    Case(
        "embedded-copy-payload-5",
        "traceback",
        (inp("{run}/adapter/.ftctl/provenance.intoto.json", "payload-5.json"),),
        runs("report", "DSSE", "verify {manifest} --artifacts {run}/adapter"),
    ),
    Case(
        "result-year-9999",
        "traceback",
        (replace(RESULT, "2026-11-24T11:01:00Z", "9999-12-31T23:59:59-05:00"),),
        runs("error", "finished_at", "attest {run} --recipe alpha --external"),
    ),
    Case(
        "result-started-after-finished",
        "traceback",
        (replace(RESULT, "2026-11-24T10:01:00Z", "2026-11-25T10:01:00Z"),),
        runs("error", "started_at", "attest {run} --recipe alpha --external"),
    ),
    Case(
        "result-not-a-time",
        "traceback",
        (replace(RESULT, "2026-11-24T10:01:00Z", "yesterday"),),
        runs("error", "started_at", "attest {run} --recipe alpha --external"),
    ),
    Case(
        "result-negative-steps",
        "traceback",
        (replace(RESULT, '"host"', '"steps": -5, "host"'),),
        runs("error", "steps", "attest {run} --recipe alpha --external"),
    ),
    Case(
        "result-metrics-list",
        "traceback",
        (replace(RESULT, '"metrics": {', '"metrics": [1, 2], "was": {'),),
        runs("error", "metrics", "attest {run} --recipe alpha --external"),
    ),
    Case(
        "result-top-level-list",
        "traceback",
        (inp(RESULT, "top-level-list.json"),),
        runs("error", "result.json", "attest {run} --recipe alpha --external"),
    ),
    Case(
        "passphrase-not-utf8",
        "traceback",
        (),
        runs("error", "FTCTL_SIGNING_KEY", "attest {run} --recipe alpha --external"),
        env={"FTCTL_SIGNING_KEY_PASSPHRASE": "\udcff\udcfe"},
    ),
    Case(
        "hub-non-json",
        "traceback",
        (replace(RECIPE, "./models/tiny", "org/nonjson"),),
        runs("error", "commit", "lock"),
        hub=True,
    ),
    Case(
        "hub-list",
        "traceback",
        (replace(RECIPE, "./models/tiny", "org/list"),),
        runs("error", "commit", "lock"),
        hub=True,
    ),
    Case(
        "hub-bad-sha",
        "traceback",
        (replace(RECIPE, "./models/tiny", "org/badsha"),),
        runs("error", "commit", "lock"),
        hub=True,
    ),
    Case(
        "hub-deep",
        "traceback",
        (replace(RECIPE, "./models/tiny", "org/deep"),),
        runs("error", "commit", "lock"),
        hub=True,
    ),
    # --- hangs and unbounded reads ---------------------------------------------------------
    Case(
        "base-model-proc",
        "hang",
        (replace(RECIPE, "./models/tiny", "/proc"),),
        runs("error", "outside the workspace", "lock"),
    ),
    Case(
        "pins-dev-zero",
        "hang",
        (append(RECIPE, "ftctl:\n  pins: /dev/zero\n"),),
        runs("error", "outside the workspace", "lock"),
    ),
    Case(
        "pins-fifo",
        "hang",
        (fifo("lockfiles/requirements.txt"),),
        runs("error", "FIFO", "lock --check", "lock"),
    ),
    Case(
        "manifest-dev-zero",
        "hang",
        (symlink("{manifest}", "/dev/zero"),),
        (
            *runs("error", "device", *READERS_OF_MANIFESTS),
            Run(("audit",), "report", "symlink leaving the workspace"),
            Run(("log", "alpha"), "ok", ""),  # the one record rejected, with its reason
        ),
    ),
    Case(
        "manifest-fifo",
        "hang",
        (fifo("{manifest}"),),
        (
            *runs("error", "FIFO", *READERS_OF_MANIFESTS),
            Run(("audit",), "report", "FIFO"),
            Run(("log", "alpha"), "ok", ""),
        ),
    ),
    Case(
        "key-dev-zero",
        "hang",
        (symlink(KEY, "/dev/zero"),),
        runs("error", "ci.pub", "verify {manifest}", "audit"),
    ),
    Case("key-fifo", "hang", (fifo(KEY),), runs("error", "ci.pub", "verify {manifest}", "audit")),
    Case(
        "key-huge",
        "hang",
        (file(KEY, "A" * 2_000_000),),
        runs("error", "ci.pub", "verify {manifest}", "audit"),
    ),
    Case(
        "lock-dev-zero",
        "hang",
        (symlink(LOCK, "/dev/zero"),),
        (
            Run(("lock", "--check"), "report", "symlink leaving the workspace"),
            Run(("plan",), "error", "alpha.lock"),
        ),
    ),
    Case(
        "lock-fifo",
        "hang",
        (fifo(LOCK),),
        (Run(("lock", "--check"), "report", "FIFO"), Run(("plan",), "error", "alpha.lock")),
    ),
    Case(
        "recipe-fifo",
        "hang",
        (fifo("recipes/beta.yaml"),),
        (Run(("validate",), "problems", "FIFO"),),
    ),
    Case("model-dir-fifo", "hang", (fifo("models/tiny/pipe"),), runs("error", "FIFO", "lock")),
    Case(
        "model-dir-symlink-out",
        "hang",
        (symlink("models/tiny/zero", "/dev/zero"),),
        runs("error", "zero", "lock"),
    ),
    Case(
        "model-dir-is-proc",
        "hang",
        (symlink("models/proc", "/proc"), replace(RECIPE, "./models/tiny", "./models/proc")),
        runs("error", "outside the workspace", "lock"),
    ),
    Case(
        "run-dir-fifo",
        "hang",
        (fifo("{run}/adapter/pipe"),),
        runs(
            "error",
            "FIFO",
            "attest {run} --recipe alpha --external",
            "verify {manifest} --artifacts {run}/adapter",
        ),
    ),
    Case(
        "result-fifo",
        "hang",
        (remove(RESULT), fifo(RESULT)),
        runs("error", "FIFO", "attest {run} --recipe alpha --external"),
    ),
    Case(
        "result-dev-zero",
        "hang",
        (remove(RESULT), symlink(RESULT, "/dev/zero")),
        runs("error", "result.json", "attest {run} --recipe alpha --external"),
    ),
    Case(
        "hub-retry-after-day",
        "hang",
        (replace(RECIPE, "./models/tiny", "org/retry"),),
        runs("error", "429", "lock"),
        hub=True,
    ),
    Case(
        "hub-retry-after-date",
        "hang",
        (replace(RECIPE, "./models/tiny", "org/retrydate"),),
        runs("error", "503", "lock"),
        hub=True,
    ),
    # --- clobbering: writers refuse what is not theirs --------------------------------------
    Case(
        "plan-out-symlink",
        "clobber",
        (file("../outside/target", "keep\n"), symlink("plan.json", "../outside/target")),
        runs("error", "symlink", "plan --out plan.json"),
    ),
    Case(
        "plan-out-fifo",
        "clobber",
        (fifo("plan.json"),),
        runs("error", "plan.json", "plan --out plan.json"),
    ),
    Case(
        "plan-out-dir",
        "clobber",
        (file("plan.json/x", "keep\n"),),
        runs("error", "plan.json", "plan --out plan.json"),
    ),
    Case(
        "plan-out-recipe",
        "clobber",
        (),
        runs("error", "recipes/", "plan --out recipes/alpha.yaml", "plan --out recipes/new.json"),
    ),
    Case(
        "plan-out-lock",
        "clobber",
        (),
        runs(
            "error", "lockfiles/", "plan --out lockfiles/alpha.lock", "plan --out lockfiles/x.json"
        ),
    ),
    Case(
        "plan-out-manifests",
        "clobber",
        (),
        runs("error", "manifests/", "plan --out manifests/alpha/x.json"),
    ),
    Case(
        "plan-out-ftctl-yaml",
        "clobber",
        (file("ftctl.yaml", "recipes: recipes\n"),),
        runs("error", "ftctl.yaml", "plan --out ftctl.yaml"),
    ),
    Case(
        "stale-lock-temp",
        "clobber",
        (
            file("lockfiles/.alpha.lock.x1y2z3.tmp", "half a lock"),
            age("lockfiles/.alpha.lock.x1y2z3.tmp", 3600),
        ),
        runs("ok", "", "lock"),
        changes=("lockfiles/.alpha.lock.x1y2z3.tmp", ".ftctl/**"),
    ),
    Case(
        "fresh-lock-temp-kept",
        "clobber",
        (file("lockfiles/.alpha.lock.x1y2z3.tmp", "being written"),),
        runs("ok", "", "lock"),
        changes=(".ftctl/**",),
    ),
    Case(
        "state-dir-outside",
        "clobber",
        (
            remove(".ftctl"),
            file("../outside/state/statcache.json", "{}"),
            symlink(".ftctl", "../outside/state"),
        ),
        runs("error", ".ftctl", "plan", "lock --check", "lock", "validate"),
    ),
    Case(
        "state-file-symlink",
        "clobber",
        (
            file("../outside/target", "keep\n"),
            remove(".ftctl/statcache.json"),
            symlink(".ftctl/statcache.json", "../../outside/target"),
        ),
        runs("ok", "", "plan", "lock"),
        changes=(".ftctl/parsed.json", ".ftctl/plan-memo.json"),
    ),
    # --- output injection: names and messages cannot forge lines or markup -----------------
    Case(
        "manifest-dir-newline",
        "injection",
        (Plant("copy", "manifests/x\nftctl: warning: forged/a.intoto.json", "{manifest}"),),
        (Run(("audit",), "report", "forged"), *runs("ok", "", "plan")),
        forbid=FORGED,
        changes=(".ftctl/**",),
    ),
    Case(
        "recipe-name-escape",
        "injection",
        (file("recipes/a\x1b[2J\nforged.yaml", FULL_RECIPE),),
        (Run(("validate",), "problems", "\\x1b"), Run(("plan",), "error", "\\x1b")),
        forbid=FORGED,
    ),
    Case(
        "log-escape-in-metrics",
        "injection",
        (),
        (*runs("ok", "", "log alpha", "show {manifest}"), *runs("report", "external", "audit")),
        forbid=FORGED,
    ),
)
