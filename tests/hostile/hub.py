"""A hostile Hub: a server on 127.0.0.1 whose answers are wrong on purpose.

The repository name says how it misbehaves (``org/nonjson``, ``org/badsha``,
...); anything else is a 404.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWERS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "nonjson": (200, {"Content-Type": "text/html"}, b"<html>\x1b[31mnot json</html>"),
    "list": (200, {"Content-Type": "application/json"}, b"[1, 2, 3]"),
    "badsha": (200, {"Content-Type": "application/json"}, b'{"sha": "zzz\\n\\u001b[2J"}'),
    "deep": (200, {"Content-Type": "application/json"}, b"[" * 100_000 + b"]" * 100_000),
    "retry": (429, {"Retry-After": "86400"}, b""),
    "retrydate": (503, {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}, b""),
}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = self.path.split("?")[0].split("/")  # /api/models/org/<kind>[/revision/...]
        kind = parts[4] if len(parts) > 4 else ""
        status, headers, body = ANSWERS.get(kind, (404, {}, b'{"error": "not found"}'))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def hostile_hub() -> Iterator[str]:
    """The base URL of a running hostile Hub."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
