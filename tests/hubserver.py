"""A Hub-API test server on 127.0.0.1 for the real huggingface_hub client.

Serves ``GET /api/{models,datasets}/<repo>[/revision/<rev>]`` from a table of
repositories, and misbehaves on request: a repository's ``script`` is a list
of responses to give in turn (an HTTP status, ``"drop"`` to close the
connection without answering, or ``"slow"`` to answer after a delay), after
which it answers normally.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import unquote


@dataclass
class Repo:
    refs: dict[str, str]  # branch/tag -> 40-hex commit
    script: list[int | str] = field(default_factory=list)
    status: int | None = None  # always answer this status (401, 404, 500, ...)


@dataclass
class HubState:
    models: dict[str, Repo] = field(default_factory=dict)
    datasets: dict[str, Repo] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    authorization: list[str] = field(default_factory=list)
    slow_seconds: float = 2.0


class _Handler(BaseHTTPRequestHandler):
    state: ClassVar[HubState]  # bound per server by ``_handler``

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.state.requests.append(self.path)
        self.state.authorization.append(self.headers.get("Authorization", ""))
        kind, repo_id, revision = _parse(self.path.split("?")[0])
        table = self.state.models if kind == "models" else self.state.datasets
        repo = table.get(repo_id) if repo_id else None
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
        elif not self._scripted(repo):
            self._answer(repo, repo_id or "", revision)

    def _scripted(self, repo: Repo) -> bool:
        """Play the repository's next scripted step; True when it answered the request."""
        if not repo.script:
            return False
        step = repo.script.pop(0)
        if step == "drop":
            self.connection.shutdown(2)
            self.close_connection = True
            return True
        if step == "slow":
            time.sleep(self.state.slow_seconds)
            return False
        if isinstance(step, int):
            self._error(step, None, f"scripted {step}")
            return True
        return False

    def _answer(self, repo: Repo, repo_id: str, revision: str | None) -> None:
        if repo.status is not None:
            code = "RepoNotFound" if repo.status in (401, 404) else None
            self._error(repo.status, code, f"status {repo.status}")
            return
        commit = _commit(repo, revision)
        if commit is None:
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return
        body: dict[str, object] = {"id": repo_id, "sha": commit, "siblings": [], "private": False}
        self._send(200, body, {})

    def _error(self, status: int, code: str | None, message: str) -> None:
        headers = {"X-Error-Code": code} if code else {}
        headers["X-Error-Message"] = message
        if status == 429:
            headers["Retry-After"] = "0"
        self._send(status, {"error": message}, headers)

    def _send(self, status: int, body: dict[str, object], headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout under test)


def _handler(hub_state: HubState) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        state = hub_state

    return Handler


def _commit(repo: Repo, revision: str | None) -> str | None:
    """The commit a branch, tag or full commit names in ``repo``, or None."""
    commit = repo.refs.get(revision or "main")
    if commit is None and revision and len(revision) == 40 and revision in repo.refs.values():
        commit = revision
    return commit


def _parse(path: str) -> tuple[str, str | None, str | None]:
    parts = path.strip("/").split("/")
    if len(parts) < 3 or parts[0] != "api" or parts[1] not in ("models", "datasets"):
        return "", None, None
    rest = parts[2:]
    revision = None
    if "revision" in rest:
        i = rest.index("revision")
        revision = unquote("/".join(rest[i + 1 :]))
        rest = rest[:i]
    return parts[1], "/".join(rest), revision


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up mid-answer is part of the scenarios


@dataclass
class HubServer:
    url: str
    state: HubState


def serve() -> Iterator[HubServer]:
    state = HubState()
    server = _QuietServer(("127.0.0.1", 0), _handler(state))
    # shutdown() waits for serve_forever's next poll: 0.05 s, not the default 0.5 s, per test.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield HubServer(f"http://127.0.0.1:{server.server_address[1]}", state)
    finally:
        server.shutdown()
        server.server_close()
