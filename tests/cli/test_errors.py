"""Every failure is one ``ftctl: error:`` line and exit 1 (130 on Ctrl-C); --verbose adds the traceback."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ftctl.canonical import JSONError, strict_loads
from ftctl.cli import main
from ftctl.errors import FtctlError
from ftctl.provenance import dsse
from ftctl.provenance.manifest import ManifestError
from tests.conftest import LOCAL_RECIPE, REPO, RunCLI, ScenarioWorkspace, write
from tests.hubserver import HubServer, Repo

HUB_RECIPE = LOCAL_RECIPE.replace("./models/tiny", "org/model").replace(
    "data/train.jsonl", "org/data@v1"
)


@pytest.fixture
def hub_ws(workspace: Path, hub: HubServer) -> Path:
    hub.state.models["org/model"] = Repo({"main": "a" * 40})
    hub.state.datasets["org/data"] = Repo({"v1": "b" * 40})
    write(workspace / "recipes" / "hubby.yaml", HUB_RECIPE)
    return workspace


# --- the errors carry their data -------------------------------------------------------


def test_json_error_is_an_ftctl_error_with_its_reason() -> None:
    with pytest.raises(JSONError) as info:
        strict_loads(b'{"a": 1, "a": 2}')
    assert isinstance(info.value, FtctlError)
    assert info.value.reason == "duplicate key 'a'"
    assert info.value.problem.message == "duplicate key 'a'"


def test_envelope_error_is_an_ftctl_error_with_its_reason() -> None:
    with pytest.raises(dsse.EnvelopeError) as info:
        dsse.parse(
            b'{"payloadType": "application/vnd.in-toto+json", "payload": "%%", "signatures": [{}]}'
        )
    assert isinstance(info.value, FtctlError)
    assert info.value.reason == "payload is not valid base64"


def test_manifest_error_carries_path_and_reason() -> None:
    exc = ManifestError(Path("manifests/a/x.intoto.json"), "no signature by a trusted key")
    assert exc.path == Path("manifests/a/x.intoto.json")
    assert exc.reason == "no signature by a trusted key"
    assert exc.problem.message == "manifests/a/x.intoto.json: no signature by a trusted key"


# --- verify --artifacts: the run directory's own copy of the manifest ------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("not base64!", "payload is not valid base64"),
        (5, "payload is not a base64 string"),
    ],
)
def test_embedded_copy_that_is_not_an_envelope(
    ws: ScenarioWorkspace, run_cli: RunCLI, payload: object, reason: str
) -> None:
    manifest = ws.record("alpha")
    adapter = ws.root / ".runs" / "alpha-1" / "adapter"
    envelope = {"payloadType": dsse.INTOTO_PAYLOAD_TYPE, "payload": payload, "signatures": [{}]}
    write(adapter / ".ftctl" / "provenance.intoto.json", json.dumps(envelope))
    result = run_cli("verify", str(manifest), "--artifacts", str(adapter), cwd=ws.root)
    assert result.code == 1
    assert result.err == (
        f"FAILED {adapter}: .ftctl/provenance.intoto.json is not a manifest: {reason}\n"
    )
    as_json = run_cli("verify", str(manifest), "--artifacts", str(adapter), "--json", cwd=ws.root)
    assert as_json.code == 1 and json.loads(as_json.out)["reason"] == result.err[7:-1]


# --- the environment --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "FTCTL_HF_TIMEOUT",
            "soon",
            "FTCTL_HF_TIMEOUT='soon' is not a number of seconds above 0; "
            "write e.g. FTCTL_HF_TIMEOUT=20, or unset it",
        ),
        (
            "FTCTL_HF_TIMEOUT",
            "0",
            "FTCTL_HF_TIMEOUT='0' is not a number of seconds above 0; "
            "write e.g. FTCTL_HF_TIMEOUT=20, or unset it",
        ),
        (
            "FTCTL_HF_ATTEMPTS",
            "2.5",
            "FTCTL_HF_ATTEMPTS='2.5' is not a whole number, 1 or more; "
            "write e.g. FTCTL_HF_ATTEMPTS=5, or unset it",
        ),
        (
            "FTCTL_HF_BACKOFF",
            "nan",
            "FTCTL_HF_BACKOFF='nan' is not a number of seconds; "
            "write e.g. FTCTL_HF_BACKOFF=0.5, or unset it",
        ),
    ],
)
def test_unusable_hub_setting(
    hub_ws: Path,
    run_cli: RunCLI,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    expected: str,
) -> None:
    monkeypatch.setenv(variable, value)
    result = run_cli("lock", cwd=hub_ws)
    assert (result.code, result.err) == (1, f"ftctl: error: {expected}\n")


def test_hub_retries_print_nothing_but_the_outcome(
    hub_ws: Path, hub: HubServer, run_cli: RunCLI
) -> None:
    hub.state.models["org/model"].status = 503
    result = run_cli("lock", cwd=hub_ws)
    assert result.code == 1
    assert result.err == (
        "ftctl: error: recipe hubby: model org/model: the Hub answered 503 after 3 attempts; "
        "check the network (and HF_ENDPOINT); a lock that is already complete needs none\n"
    )


def test_hub_offline_mode(hub_ws: Path, run_cli: RunCLI, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    result = run_cli("lock", cwd=hub_ws)
    assert (result.code, result.err) == (
        1,
        "ftctl: error: recipe hubby: model org/model: HF_HUB_OFFLINE is set, so the Hub cannot "
        "be asked; unset HF_HUB_OFFLINE, or pin the reference to a 40-hex commit\n",
    )


# --- bugs, Ctrl-C and --verbose ---------------------------------------------------------


def _schema_raises(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    import ftctl.recipe.schema

    def broken(kind: str) -> str:
        raise exc

    monkeypatch.setattr(ftctl.recipe.schema, "json_schema", broken)


def test_a_bug_is_one_line_naming_itself(run_cli: RunCLI, monkeypatch: pytest.MonkeyPatch) -> None:
    _schema_raises(monkeypatch, RuntimeError("boom\nsecond line"))
    result = run_cli("schema")
    assert (result.code, result.err) == (
        1,
        "ftctl: error: internal error: RuntimeError: boom\\nsecond line; "
        "rerun with --verbose and report it\n",
    )


def test_ctrl_c_in_a_command(run_cli: RunCLI, monkeypatch: pytest.MonkeyPatch) -> None:
    _schema_raises(monkeypatch, KeyboardInterrupt())
    result = run_cli("schema")
    assert (result.code, result.err, result.out) == (130, "ftctl: interrupted\n", "")


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    sys.argv = ["ftctl", *args]
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main()
    code = info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


@pytest.mark.parametrize("how", ["--verbose", "FTCTL_DEBUG=1"])
def test_verbose_adds_the_traceback(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    monkeypatch.setattr(sys, "argv", sys.argv)
    args = ["-C", str(tmp_path / "missing"), "validate"]
    if how == "--verbose":
        args.insert(0, "--verbose")
    else:
        monkeypatch.setenv("FTCTL_DEBUG", "1")
    code, err = _main(capsys, *args)
    assert code == 1
    lines = err.splitlines()
    assert lines[0] == f"ftctl: error: -C {tmp_path / 'missing'}: No such file or directory"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1].startswith("ftctl.errors.UsageError: -C ")


def test_verbose_traceback_of_a_bug(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", sys.argv)
    _schema_raises(monkeypatch, RuntimeError("boom"))
    code, err = _main(capsys, "--verbose", "schema")
    assert code == 1
    assert err.splitlines()[0] == (
        "ftctl: error: internal error: RuntimeError: boom; rerun with --verbose and report it"
    )
    assert "in broken" in err and err.splitlines()[-1] == "RuntimeError: boom"


def test_no_traceback_without_verbose(
    tmp_path: Path, run_cli: RunCLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FTCTL_DEBUG", "0")
    result = run_cli("-C", str(tmp_path / "missing"), "validate")
    assert result.err.count("\n") == 1  # run_cli also asserts there is no traceback


def test_sigint_during_lock(hub_ws: Path, hub: HubServer) -> None:
    """A real Ctrl-C while `ftctl lock` waits for the Hub: exit 130, one line, nothing half-written."""
    hub.state.slow_seconds = 30.0
    hub.state.models["org/model"].script = ["slow"]
    env = {
        **os.environ,
        "FTCTL_HF_TIMEOUT": "60",
        "FTCTL_HF_ATTEMPTS": "1",
        "PYTHONPATH": str(REPO),
    }
    env.pop("FTCTL_DEBUG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ftctl", "lock"],
        cwd=hub_ws,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not hub.state.requests and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hub.state.requests, "ftctl never asked the Hub"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, err, out) == (130, "ftctl: interrupted\n", "")
    assert not list(hub_ws.glob("lockfiles/.*.tmp"))
    assert not (hub_ws / "lockfiles" / "hubby.lock").exists()


# --- one output helper; NO_COLOR --------------------------------------------------------


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], io.StringIO]]:
    """Call it in the test (pytest restores its own capture between setup and call)."""
    from ftctl.render import terminal

    def install() -> io.StringIO:
        stream = FakeTTY()
        monkeypatch.setattr(sys, "stdout", stream)
        monkeypatch.setattr(sys, "stderr", stream)
        return stream

    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal._console.cache_clear()
    yield install
    terminal._console.cache_clear()


def test_styles_only_on_a_terminal_without_no_color() -> None:
    from ftctl.render.terminal import use_styles

    assert use_styles(environ={}) is sys.stdout.isatty()
    assert use_styles(environ={"NO_COLOR": "1"}) is False
    assert use_styles(environ={"NO_COLOR": ""}) is sys.stdout.isatty()


def test_terminal_output_is_styled(tty: Callable[[], io.StringIO]) -> None:
    from ftctl.render.terminal import echo, warn

    stream = tty()
    echo("plan", markup="[bold]plan[/bold]")
    warn("careful")
    assert "\x1b[1mplan" in stream.getvalue()
    assert "ftctl: warning: careful" in stream.getvalue()


def test_no_color_removes_bold_and_dim_too(
    tty: Callable[[], io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ftctl.render.terminal import echo, error, table, warn

    monkeypatch.setenv("NO_COLOR", "1")
    stream = tty()
    echo("plan", markup="[bold]plan[/bold]")
    echo("later", markup="[dim]later[/dim]")
    warn("careful")
    error("broken")
    table(["recipe", "result"], [["a", "ok"]])
    assert stream.getvalue() == (
        "plan\nlater\nftctl: warning: careful\nftctl: error: broken\nrecipe  result\na       ok\n"
    )


def test_warnings_are_one_line() -> None:
    from ftctl.render.terminal import warn

    stream = io.StringIO()
    old, sys.stderr = sys.stderr, stream
    try:
        warn("two\nlines")
    finally:
        sys.stderr = old
    assert stream.getvalue() == "ftctl: warning: two\\nlines\n"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["bogus"], "No such command 'bogus'; see `ftctl --help`"),
        (["lock", "--bogus"], "No such option '--bogus'; see `ftctl lock --help`"),
        (["log"], "Missing argument 'NAME'; see `ftctl log --help`"),
    ],
)
def test_click_usage_errors_are_one_line(run_cli: RunCLI, args: list[str], expected: str) -> None:
    result = run_cli(*args)
    assert (result.code, result.err) == (1, f"ftctl: error: {expected}\n")


def test_a_long_value_in_a_variable_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "hf_" + "s3cr3t" * 6  # a token pasted into the wrong variable
    monkeypatch.setenv("FTCTL_HF_TIMEOUT", secret)
    from ftctl._hf import default_policy
    from ftctl.errors import EnvVarError

    with pytest.raises(EnvVarError) as info:
        default_policy()
    assert secret not in str(info.value) and "39-character value" in str(info.value)
