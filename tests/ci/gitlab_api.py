"""GitLab's merge-request notes API on 127.0.0.1, for the template's note step.

GitLab itself is a boundary nothing here can reach. This serves the routes the step uses, as
GitLab does: ``GET /user`` (whose token this is), the notes of one merge request (paginated
with ``X-Next-Page``), creating a note as the token's user, and editing one, which GitLab
refuses for another author's note. A request without the right ``PRIVATE-TOKEN`` is a 401.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PROJECT, MR = "42", "7"
BOT_ID = 9001  # the project access token's bot user
NOTES = re.compile(rf"^/api/v4/projects/{PROJECT}/merge_requests/{MR}/notes(?:/(?P<id>\d+))?$")


@dataclass
class GitLab:
    url: str  # CI_API_V4_URL
    token: str
    notes: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path with query)

    def add_note(self, author: int, body: str) -> dict[str, Any]:
        note = {"id": 100 + len(self.notes), "author": {"id": author}, "body": body}
        self.notes.append(note)
        return note


class Handler(BaseHTTPRequestHandler):
    state: GitLab  # set on the subclass each server gets

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def route(self, method: str) -> None:
        self.state.requests.append((method, self.path))
        if self.headers.get("PRIVATE-TOKEN") != self.state.token:
            self.answer(401, {"message": "401 Unauthorized"})
            return
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        sent = json.loads(self.rfile.read(length)) if length else {}
        match = NOTES.match(url.path)
        if url.path == "/api/v4/user" and method == "GET":
            self.answer(200, {"id": BOT_ID, "username": f"project_{PROJECT}_bot"})
        elif match and match["id"] is None and method == "GET":
            self.list_notes(parse_qs(url.query))
        elif match and match["id"] is None and method == "POST":
            self.answer(201, self.state.add_note(BOT_ID, str(sent["body"])))
        elif match and method == "PUT":
            self.edit_note(int(match["id"]), str(sent["body"]))
        else:
            self.answer(404, {"message": "404 Not found"})

    def list_notes(self, query: dict[str, list[str]]) -> None:
        page, size = int(query.get("page", ["1"])[0]), int(query.get("per_page", ["20"])[0])
        chunk = self.state.notes[(page - 1) * size : page * size]
        more = page * size < len(self.state.notes)
        self.answer(200, chunk, {"X-Next-Page": str(page + 1) if more else ""})

    def edit_note(self, note_id: int, body: str) -> None:
        found = [n for n in self.state.notes if n["id"] == note_id]
        if not found:
            self.answer(404, {"message": "404 Not found"})
        elif found[0]["author"]["id"] != BOT_ID:
            self.answer(403, {"message": "403 Forbidden"})
        else:
            found[0]["body"] = body
            self.answer(200, found[0])

    def do_GET(self) -> None:
        self.route("GET")

    def do_POST(self) -> None:
        self.route("POST")

    def do_PUT(self) -> None:
        self.route("PUT")


@contextmanager
def serve(token: str) -> Iterator[GitLab]:
    """A fake GitLab answering ``token``, until the block ends."""
    state = GitLab("", token)
    handler = type("GitLabHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
