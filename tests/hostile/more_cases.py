"""More of the corpus: paths a recipe names, and the inputs found by attacking every reader.

Same form as ``cases.py`` (see there). ``../outside/`` is a directory beside
the workspace that no command may read from or write to; the secret planted in
it must appear in no output.
"""

from __future__ import annotations

from tests.hostile.cases import (
    DVC_REPO,
    FORGED,
    LOCK,
    RECIPE,
    Case,
    Plant,
    Run,
    append,
    fifo,
    file,
    remove,
    replace,
    runs,
    symlink,
)

SECRET_FILE = (
    "hf_SECRETMARKER: [x\n  hf_SECRETMARKER: y\n"  # YAML that fails, quoting itself if echoed
)
OUTSIDE_MODEL = (
    file("../outside/model/config.json", "{}\n"),
    file("../outside/model/secret.txt", "hf_SECRETMARKER\n"),
)
# Every command that reads a recipe's paths, and train, which must refuse before the worker starts.
PATH_READERS = ("lock --check", "lock", "plan", "train alpha")
OUTSIDE = "outside the workspace"
DATA = "data/train.jsonl"
MODEL = "./models/tiny"


def refused(match: str, *commands: str) -> tuple[Run, ...]:
    """``validate`` reports a located problem; every other reader stops with one error line."""
    return (Run(("validate",), "problems", match), *runs("error", match, *commands))


CONFINED: tuple[Case, ...] = (
    # --- paths in recipes stay in the workspace unless ftctl.yaml allows more ---------------
    Case(
        "base-model-absolute-outside",
        "secret",
        (replace(RECIPE, MODEL, "/etc"),),
        refused("base_model: '/etc' lies outside the workspace", *PATH_READERS),
    ),
    Case(
        "base-model-dotdot",
        "secret",
        (*OUTSIDE_MODEL, replace(RECIPE, MODEL, "../outside/model")),
        refused(OUTSIDE, "lock"),
    ),
    Case(
        "base-model-symlink-out",
        "secret",
        (
            *OUTSIDE_MODEL,
            symlink("models/link", "../../outside/model"),
            replace(RECIPE, MODEL, "./models/link"),
        ),
        refused("allow_paths", "lock --check", "plan"),
    ),
    Case(
        "dataset-etc-shadow",
        "secret",
        (replace(RECIPE, DATA, "/etc/shadow"),),
        refused("datasets[0].path: '/etc/shadow' lies outside", *PATH_READERS),
    ),
    Case(
        "dataset-home-ssh",
        "secret",
        (
            file("../outside/.ssh/id_rsa", "hf_SECRETMARKER\n"),
            replace(RECIPE, DATA, "~/.ssh/id_rsa"),
        ),
        refused(OUTSIDE, "lock --check", "lock", "train alpha"),
        # HOME relative, so the case needs no absolute path; the cache key would live under it
        env={"HOME": "../outside", "FTCTL_CACHE_KEY": "0" * 64},
    ),
    Case(
        "dataset-symlink-out",
        "secret",
        (
            file("../outside/secret.jsonl", '{"instruction": "hf_SECRETMARKER", "output": "x"}\n'),
            symlink("data/link.jsonl", "../../outside/secret.jsonl"),
            replace(RECIPE, DATA, "data/link.jsonl"),
        ),
        refused(OUTSIDE, "lock --check", "train alpha"),
    ),
    Case(
        "data-files-absolute",
        "secret",
        (replace(RECIPE, "type: alpaca", "type: alpaca\n    data_files: [/etc/passwd]"),),
        refused("leads outside the dataset's path", "lock --check", "train alpha"),
    ),
    Case(
        "data-files-dotdot",
        "secret",
        (replace(RECIPE, "type: alpaca", "type: alpaca\n    data_files: ['../../outside/x']"),),
        refused("data_files[0]", "lock --check", "plan"),
    ),
    Case(
        "deepspeed-dotdot",
        "secret",
        (
            file("../outside/ds.json", '{"hf_SECRETMARKER": 1}\n'),
            append(RECIPE, "deepspeed: ../outside/ds.json\n"),
        ),
        refused("deepspeed: '../outside/ds.json' lies outside", "lock --check", "lock"),
    ),
    Case(
        "output-dir-outside",
        "clobber",
        (append(RECIPE, "output_dir: ../outside/run\n"),),
        refused("output_dir", "lock --check", "train alpha"),
    ),
    Case(
        "allow-paths-lets-in",
        "secret",
        (
            *OUTSIDE_MODEL,
            file("ftctl.yaml", "allow_paths: [../outside/model]\n"),
            replace(RECIPE, MODEL, "../outside/model"),
        ),
        (*runs("ok", "", "validate", "lock"), *runs("ok", "", "lock --check")),
        changes=(LOCK, ".ftctl/**"),
    ),
    Case(
        "allow-paths-proc",
        "secret",
        (file("ftctl.yaml", "allow_paths: [/proc]\n"), replace(RECIPE, MODEL, "/proc")),
        (
            Run(("validate",), "problems", "never reads /proc"),
            *runs("error", "/proc", "lock --check"),
        ),
    ),
    Case(
        "allow-paths-control",
        "injection",
        (file("ftctl.yaml", 'allow_paths: ["a\\e[2J\\nftctl: warning: forged"]\n'),),
        (
            Run(("validate",), "problems", "control character"),
            *runs("error", "allow_paths", "plan"),
        ),
        forbid=FORGED,
    ),
    # --- NUL bytes and control characters in paths: one located line everywhere ---------------
    Case(
        "control-in-dataset-path",
        "injection",
        (replace(RECIPE, DATA, '"data/\\e[2J\\nftctl: warning: forged"'),),
        refused("holds a control character", "lock --check", "plan"),
        forbid=FORGED,
    ),
    Case(
        "newline-in-base-model",
        "injection",
        (replace(RECIPE, MODEL, '"./models/\\nftctl: warning: forged"'),),
        refused("holds a control character", "lock --check", "plan"),
        forbid=FORGED,
    ),
    Case(
        "nul-in-output-dir",
        "traceback",
        (append(RECIPE, 'output_dir: "out\\0x"\n'),),
        refused("output_dir", "lock --check", "train alpha"),
    ),
    Case(
        "nul-in-data-files",
        "traceback",
        (replace(RECIPE, "type: alpaca", 'type: alpaca\n    data_files: ["a\\0b"]'),),
        refused("NUL", "lock --check", "train alpha"),
    ),
    Case(
        "nul-in-deepspeed",
        "traceback",
        (append(RECIPE, 'deepspeed: "ds\\0.json"\n'),),
        refused("deepspeed", "lock --check", "lock"),
    ),
    # --- what lock prints: escaped, whatever the files and the Hub hold ------------------------
    Case(
        "lock-diff-escape",
        "injection",
        (
            replace(
                LOCK,
                'trainer: {ftctl: "',
                'trainer: {x: "\\e[2J\\nftctl: warning: forged", ftctl: "',
            ),
        ),
        (Run(("lock", "--check"), "report", "trainer.x: \\x1b[2J\\nftctl: warning: forged"),),
        forbid=FORGED,
    ),
    Case(
        "pins-hash-escape",
        "injection",
        (file("lockfiles/requirements.txt", "torch==2.0 --hash=sha256:\x1b[2J\n"),),
        runs("error", "holds a control character", "lock --check", "lock"),
        forbid=FORGED,
    ),
    Case(
        "pins-hash-not-hex",
        "traceback",
        (file("lockfiles/requirements.txt", "torch==2.0 --hash=sha256:zz'; rm -rf /\n"),),
        runs("error", "not a hash", "lock --check"),
    ),
    Case(
        "pins-marker-escape",
        "injection",
        (file("lockfiles/requirements.txt", 'torch==2.0; python_version == "\x1b[2J"\n'),),
        runs("error", "control character", "lock --check"),
        forbid=FORGED,
    ),
)

FOUND: tuple[Case, ...] = (
    # --- found by attacking validate, lock --check, plan, verify, audit, show and log ----------
    Case(
        "recipe-symlink-loop",
        "traceback",
        (symlink("recipes/loop.yaml", "loop.yaml"),),
        runs("error", "symlink loop", "validate", "lock --check", "plan"),
    ),
    Case(
        "ftctl-yaml-fifo",
        "hang",
        (fifo("ftctl.yaml"),),
        (Run(("validate",), "problems", "FIFO"), *runs("error", "FIFO", "plan", "audit")),
    ),
    Case(
        "ftctl-yaml-symlink-outside",
        "secret",
        (file("../outside/s.yaml", SECRET_FILE), symlink("ftctl.yaml", "../outside/s.yaml")),
        runs("error", "symlink leaving the workspace", "validate", "plan"),
    ),
    Case(
        "lock-symlink-outside",
        "secret",
        (
            file("../outside/s.yaml", SECRET_FILE),
            remove(LOCK),
            symlink(LOCK, "../../outside/s.yaml"),
        ),
        (
            Run(("lock", "--check"), "report", "unreadable: is a symlink leaving the workspace"),
            Run(("lock",), "error", "symlink; refusing to replace it"),
            Run(("plan",), "error", "alpha.lock"),
        ),
    ),
    Case(
        "lockfiles-is-a-file",
        "traceback",
        (remove("lockfiles"), file("lockfiles", "x\n")),
        runs("error", "lockfiles/alpha.lock: cannot write the lock", "lock"),
    ),
    Case(
        "dataset-symlink-loop",
        "traceback",
        (symlink("data/loop", "loop"), replace(RECIPE, DATA, "data/loop")),
        runs("error", "symlink loop", "lock --check", "plan"),
    ),
    Case(
        "dataset-fifo",
        "hang",
        (fifo(DATA),),
        runs("error", "data/train.jsonl is a FIFO", "lock --check", "lock", "plan"),
    ),
    Case(
        "model-dir-is-a-fifo",
        "hang",
        (remove("models/tiny"), fifo("models/tiny")),
        runs("error", "is a FIFO", "lock --check"),
    ),
    Case(
        "recipe-utf16",
        "traceback",
        (file(RECIPE, "\ufeffbase_model: x\n".encode("utf-16").decode("latin-1")),),
        refused("UTF-8", "lock --check"),
    ),
    Case(
        "recipe-alias-bomb",
        "hang",
        (
            append(
                RECIPE,
                "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
                + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)),
            ),
        ),
        refused("alias", "plan"),
    ),
    Case(
        "recipe-python-tag",
        "secret",
        (append(RECIPE, 'seed: !!python/object/apply:os.system ["touch ../outside/pwned"]\n'),),
        refused("is not allowed", "lock --check"),
    ),
    Case(
        "recipe-huge",
        "hang",
        (append(RECIPE, "# " + "x" * 2_000_000 + "\n"),),
        refused("larger than", "plan"),
    ),
    Case(
        "recipe-key-escape",
        "injection",
        (append(RECIPE, '"\\e[2J\\nftctl: warning: forged": 1\n'),),
        refused("\\x1b[2J\\nftctl: warning: forged: unknown key", "plan"),
        forbid=FORGED,
    ),
    Case(
        "recipes-dir-symlink-out",
        "secret",
        (
            file("../outside/r/alpha.yaml", "hf_SECRETMARKER: [\n"),
            remove("recipes"),
            symlink("recipes", "../outside/r"),
        ),
        runs("error", OUTSIDE, "validate", "lock --check", "plan"),
    ),
    Case(
        "state-dir-is-a-file",
        "clobber",
        (remove(".ftctl"), file(".ftctl", "keep\n")),
        runs("ok", "", "lock --check", "plan"),
        changes=(),
    ),
    Case(
        "trusted-keys-environ",
        "secret",
        (),
        runs("error", "public key", "verify {manifest}", "plan"),
        env={"FTCTL_TRUSTED_KEYS": "/proc/self/environ"},
    ),
    Case(
        "trusted-keys-fifo",
        "hang",
        (fifo("pipe"),),
        runs("error", "FIFO", "audit", "verify {manifest}"),
        env={"FTCTL_TRUSTED_KEYS": "pipe"},
    ),
    Case(
        "trusted-keys-pem-with-secret",
        "secret",
        (),
        runs("error", "FTCTL_TRUSTED_KEYS[0]", "audit"),
        env={
            "FTCTL_TRUSTED_KEYS": "-----BEGIN PUBLIC KEY-----\nhf_SECRETMARKER\n-----END PUBLIC KEY-----"
        },
    ),
    Case(
        "hf-endpoint-credentials",
        "secret",
        (replace(RECIPE, MODEL, "org/model"),),
        runs("error", "no answer from the Hub", "lock"),
        env={"HF_ENDPOINT": "http://user:hf_SECRETMARKER@127.0.0.1:9"},
    ),
    Case(
        "hf-token-newline",
        "secret",
        (replace(RECIPE, MODEL, "org/model"),),
        runs("error", "404", "lock"),
        hub=True,
        env={"HF_TOKEN": "hf_SECRETMARKER\nX-Forged: 1"},
    ),
    Case(
        "cache-key-escape",
        "injection",
        (),
        runs("ok", "", "plan", "lock --check"),
        forbid=FORGED,
        env={"FTCTL_CACHE_KEY": "hf_SECRETMARKER\x1b[2J"},
    ),
    Case(
        "manifest-file-newline",
        "injection",
        (Plant("copy", "manifests/alpha/x\nftctl: warning: forged.intoto.json", "{manifest}"),),
        (Run(("audit",), "report", "2 manifests"), *runs("ok", "", "log alpha")),
        forbid=FORGED,
        changes=(".ftctl/**",),
    ),
    Case(
        "manifests-dir-symlink-out",
        "secret",
        (
            Plant("move", "manifests/alpha", "../outside/alpha"),
            symlink("manifests/alpha", "../../outside/alpha"),
        ),
        (
            Run(("audit",), "report", "symlink leaving the workspace"),
            Run(("log", "alpha"), "ok", ""),
            Run(("plan",), "warning", "symlink leaving the workspace"),
        ),
        changes=(".ftctl/**",),
    ),
    Case(
        "escapes-in-arguments",
        "injection",
        (),
        (
            Run(("show", "manifests/\x1b[2Jx"), "error", "\\x1b[2Jx"),
            Run(("log", "\x1b[2J"), "error", "\\x1b[2J"),
            Run(("verify", "\x1b[31mX"), "report", "\\x1b[31mX"),
        ),
        forbid=FORGED,
    ),
    Case(
        "verify-artifacts-dev-zero",
        "hang",
        (),
        runs("report", "no such directory", "verify {manifest} --artifacts /dev/zero"),
    ),
    Case(
        "verify-artifacts-proc-self",
        "crash",
        (),
        runs("report", "/proc/self is under /proc", "verify {manifest} --artifacts /proc/self"),
    ),
    Case(
        "hf-token-non-ascii",
        "secret",
        (replace(RECIPE, MODEL, "org/model"),),
        runs("error", "HF_TOKEN holds characters an HTTP header cannot carry", "lock"),
        hub=True,
        env={"HF_TOKEN": "hf_SECRETMARKER\u00e9"},
    ),
    Case(
        "hf-token-control-character",
        "secret",
        (replace(RECIPE, MODEL, "org/model"),),
        runs("error", "HF_TOKEN holds characters an HTTP header cannot carry", "lock"),
        hub=True,
        env={"HF_TOKEN": "hf_SECRETMARKER\x1b[2J"},
    ),
    Case(
        "dvc-file-environ",
        "secret",
        (DVC_REPO, symlink("data/train.jsonl.dvc", "/proc/self/environ")),
        runs("error", "train.jsonl.dvc", "lock --update", "lock --check"),
    ),
)

MORE_CASES = CONFINED + FOUND
