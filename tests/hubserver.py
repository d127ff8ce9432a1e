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


def _handler(state: HubState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            state.requests.append(self.path)
            state.authorization.append(self.headers.get("Authorization", ""))
            path = self.path.split("?")[0]
            kind, repo_id, revision = _parse(path)
            table = state.models if kind == "models" else state.datasets
            repo = table.get(repo_id) if repo_id else None
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found")
            if repo.script:
                step = repo.script.pop(0)
                if step == "drop":
                    self.connection.shutdown(2)
                    self.close_connection = True
                    return None
                if step == "slow":
                    time.sleep(state.slow_seconds)
                elif isinstance(step, int):
                    return self._error(step, None, f"scripted {step}")
            if repo.status is not None:
                code = "RepoNotFound" if repo.status in (401, 404) else None
                return self._error(repo.status, code, f"status {repo.status}")
            commit = repo.refs.get(revision or "main")
            if (
                commit is None
                and revision
                and len(revision) == 40
                and revision in repo.refs.values()
            ):
                commit = revision
            if commit is None:
                return self._error(404, "RevisionNotFound", "Invalid rev id")
            body = {"id": repo_id, "sha": commit, "siblings": [], "private": False}
            self._send(200, body, {})
            return None

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

    return Handler


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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HubServer(f"http://127.0.0.1:{server.server_address[1]}", state)
    finally:
        server.shutdown()
        server.server_close()
