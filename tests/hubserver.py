"""A Hub-API test server on 127.0.0.1 for the real huggingface_hub client.

Read side: ``GET /api/{models,datasets}/<repo>[/revision/<rev>]`` from a table of
repositories (a repository's ``script`` is a list of answers to give that route
in turn: an HTTP status, ``"drop"`` to close the connection without answering,
or ``"slow"`` to answer after a delay), ``/refs``, ``/tree/<rev>`` and file
downloads (``/<repo>/resolve/<rev>/<path>``).

Write side, as the client of huggingface_hub 2.4 drives it: ``/api/repos/create``
(an initial commit holding ``.gitattributes``, as the Hub makes one),
``/api/validate-yaml``, ``/preupload/<rev>``, the LFS batch API with a PUT
upload and a verify call, the NDJSON ``/commit/<rev>`` (412 when
``parentCommit`` is not the branch head) and ``/tag/<rev>`` (409 when the tag
exists, wherever it points). Regular files live in memory, LFS objects in a
temp directory (a benchmark uploads a GiB).

``state.faults[ENDPOINT]`` scripts any endpoint (``create``, ``validate``,
``preupload``, ``lfs-batch``, ``lfs-upload``, ``lfs-verify``, ``commit``,
``refs``, ``tree``, ``tag``, ``resolve``) with steps: a status; ``"slow"``
(answer after ``slow_seconds``); ``"late"`` (do the work, then wait
``slow_seconds`` before answering: the work lands, the client times out);
``"drop"`` (hang up; an upload or download is cut halfway); ``"move"`` (another
commit lands on the branch first); ``"garbage"`` (200 with a body that is not
JSON); a :class:`Reply` given verbatim; or a function of the state, run before the
request is served (someone else acting on the repository meanwhile).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


@dataclass(frozen=True)
class Reply:
    """A scripted answer, sent as it is."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


# A callable runs first (someone else acting meanwhile); None serves the request as usual.
Step = int | str | Reply | Callable[["HubState"], None] | None


@dataclass(frozen=True)
class Blob:
    """A file at a commit: its bytes (regular) or its LFS object id and size."""

    data: bytes | None = None
    lfs: str | None = None
    size: int = 0

    @property
    def git_oid(self) -> str:
        payload = self.data if self.data is not None else f"lfs {self.lfs}".encode()
        return hashlib.sha1(b"blob %d\0" % len(payload) + payload).hexdigest()


@dataclass
class Repo:
    refs: dict[str, str]  # branch (or, for hand-made repos, tag) -> 40-hex commit
    script: list[Step] = field(default_factory=list)  # for the info route
    status: int | None = None  # always answer this status (401, 404, 500, ...)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, Blob]] = field(default_factory=dict)  # commit -> path -> file
    lfs: dict[str, Path] = field(default_factory=dict)  # sha256 -> stored object


@dataclass
class HubState:
    models: dict[str, Repo] = field(default_factory=dict)
    datasets: dict[str, Repo] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # paths, every method
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    authorization: list[str] = field(default_factory=list)
    slow_seconds: float = 2.0
    faults: dict[str, list[Step]] = field(default_factory=dict)
    lfs_threshold: int = 10 * 1024 * 1024  # bigger files go through LFS, as on the Hub
    storage: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    base: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: Iterator[int] = field(default_factory=itertools.count)

    def commit_files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """Every file of a model repository at a revision, LFS objects read back."""
        repo = self.models[repo_id]
        commit = _commit(repo, revision)
        assert commit is not None, revision
        return {path: _content(repo, blob) for path, blob in repo.commits[commit].items()}

    def put_file(self, repo_id: str, path: str, data: bytes, branch: str = "main") -> str:
        """Commit one regular file by hand (a user editing the repository); the new commit."""
        repo = self.models[repo_id]
        with self.lock:
            files = dict(repo.commits.get(repo.refs.get(branch, ""), {}))
            files[path] = Blob(data=data, size=len(data))
            return _new_commit(self, repo, branch, files)


class _Handler(BaseHTTPRequestHandler):
    state: ClassVar[HubState]  # bound per server by ``_handler``

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    # --- routing ------------------------------------------------------------------

    def _begin(self) -> tuple[str, dict[str, list[str]]]:
        path, _, query = self.path.partition("?")
        self.state.requests.append(self.path)
        self.state.calls.append((self.command, self.path))
        self.state.authorization.append(self.headers.get("Authorization", ""))
        return path, parse_qs(query)

    def do_GET(self) -> None:
        path, query = self._begin()
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:1] == ["api"] and len(parts) >= 3 and parts[1] in ("models", "datasets"):
            self._api_get(parts[1], parts[2:], query)
        elif "resolve" in parts:
            self._resolve(parts, body=True)
        else:
            self._error(404, None, "not found")

    def do_HEAD(self) -> None:
        path, _ = self._begin()
        self._resolve([unquote(p) for p in path.strip("/").split("/")], body=False)

    def do_POST(self) -> None:
        path, _ = self._begin()
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if path == "/api/repos/create":
            self._faulted("create", lambda: self._create(self._json_body()))
        elif path == "/api/validate-yaml":
            self._faulted("validate", lambda: self._validate(self._json_body()))
        elif parts[:1] == ["lfs-verify"]:
            self._faulted("lfs-verify", lambda: self._lfs_verify("/".join(parts[1:])))
        elif path.endswith(".git/info/lfs/objects/batch"):
            repo_id = path.strip("/").removesuffix(".git/info/lfs/objects/batch")
            self._faulted("lfs-batch", lambda: self._lfs_batch(repo_id, self._json_body()))
        elif parts[:2] == ["api", "models"]:
            self._api_post(parts[2:])
        else:
            self._error(404, None, "not found")

    def do_PUT(self) -> None:
        path, _ = self._begin()
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:1] == ["lfs-upload"] and len(parts) >= 3:
            self._faulted("lfs-upload", lambda: self._lfs_upload("/".join(parts[1:-1]), parts[-1]))
        else:
            self._error(404, None, "not found")

    def _find(self, table: dict[str, Repo], rest: list[str]) -> tuple[str, Repo, list[str]] | None:
        """The repository named at the start of ``rest`` (org/name or name) and what follows."""
        for n in (2, 1):
            repo_id = "/".join(rest[:n])
            if len(rest) >= n and repo_id in table:
                return repo_id, table[repo_id], rest[n:]
        return None

    def _api_get(self, kind: str, rest: list[str], query: dict[str, list[str]]) -> None:
        table = self.state.models if kind == "models" else self.state.datasets
        found = self._find(table, rest)
        if found is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        repo_id, repo, tail = found
        if tail[:1] == ["refs"]:
            self._faulted("refs", lambda: self._refs(repo))
        elif tail[:1] == ["tree"] and len(tail) >= 2:
            recursive = query.get("recursive", ["false"])[0] in ("true", "1", "True")
            self._faulted("tree", lambda: self._tree(repo, tail[1], "/".join(tail[2:]), recursive))
        elif not tail or tail[0] == "revision":
            if not self._scripted(repo.script):
                self._answer(repo, repo_id, "/".join(tail[1:]) or None)
        else:
            self._error(404, None, "not found")

    def _api_post(self, rest: list[str]) -> None:
        found = self._find(self.state.models, rest)
        if found is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        repo_id, repo, tail = found
        action, revision = (tail[0], "/".join(tail[1:])) if tail else ("", "")
        if action == "preupload":
            self._faulted("preupload", lambda: self._preupload(repo, revision, self._json_body()))
        elif action == "commit":
            self._faulted("commit", lambda: self._commit(repo_id, repo, revision), repo=repo)
        elif action == "tag":
            self._faulted("tag", lambda: self._tag(repo, revision, self._json_body()))
        else:
            self._error(404, None, "not found")

    # --- fault injection ----------------------------------------------------------

    def _faulted(self, endpoint: str, work: Callable[[], None], repo: Repo | None = None) -> None:
        steps = self.state.faults.get(endpoint) or []
        step = steps.pop(0) if steps else None
        if step is None:
            work()
        elif callable(step):
            step(self.state)
            work()
        elif step == "late":
            self._late = True
            work()
        elif step == "move" and repo is not None:
            with self.state.lock:
                head = repo.refs.get("main")
                files = dict(repo.commits.get(head or "", {}))
                files["someone-else.txt"] = Blob(data=b"moved\n", size=6)
                _new_commit(self.state, repo, "main", files)
            work()
        elif step == "drop" and endpoint in ("lfs-upload", "resolve"):
            self._cut = True
            work()
        elif not self._scripted([step]):
            work()

    def _scripted(self, script: list[Step]) -> bool:
        """Play the next scripted step; True when it answered the request."""
        if not script:
            return False
        step = script.pop(0)
        if step == "drop":
            self._hang_up()
            return True
        if step == "slow":
            time.sleep(self.state.slow_seconds)
            return False
        if step == "garbage":
            self._raw(200, b"<html>not json</html>", {"Content-Type": "text/html"})
            return True
        if isinstance(step, Reply):
            self._raw(step.status, step.body, {"Content-Type": "application/json", **step.headers})
            return True
        if isinstance(step, int):
            message = (
                "A commit has happened since. Please refresh and try again."
                if step == 412
                else f"scripted {step}"
            )
            self._error(step, None, message)
            return True
        return False

    def _hang_up(self) -> None:
        self.connection.shutdown(2)
        self.close_connection = True

    # --- read routes --------------------------------------------------------------

    def _answer(self, repo: Repo, repo_id: str, revision: str | None) -> None:
        if repo.status is not None:
            code = "RepoNotFound" if repo.status in (401, 404) else None
            self._error(repo.status, code, f"status {repo.status}")
            return
        commit = _commit(repo, revision)
        if commit is None:
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return
        siblings = [{"rfilename": p} for p in sorted(repo.commits.get(commit, {}))]
        body: dict[str, object] = {
            "id": repo_id,
            "sha": commit,
            "siblings": siblings,
            "private": False,
        }
        self._send(200, body, {})

    def _refs(self, repo: Repo) -> None:
        def entries(table: dict[str, str], kind: str) -> list[dict[str, str]]:
            return [
                {"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": c}
                for n, c in sorted(table.items())
            ]

        body = {
            "branches": entries(repo.refs, "heads"),
            "converts": [],
            "tags": entries(repo.tags, "tags"),
        }
        self._send(200, body, {})

    def _tree(self, repo: Repo, revision: str, under: str, recursive: bool) -> None:
        commit = _commit(repo, revision)
        if commit is None:
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return
        prefix = f"{under.strip('/')}/" if under.strip("/") else ""
        entries: list[dict[str, object]] = []
        folders: set[str] = set()
        for path, blob in sorted(repo.commits[commit].items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            parents = rest.split("/")[:-1]
            folders.update(prefix + "/".join(parents[: i + 1]) for i in range(len(parents)))
            entry: dict[str, object] = {
                "type": "file",
                "oid": blob.git_oid,
                "size": blob.size,
                "path": path,
            }
            if blob.lfs is not None:
                entry["lfs"] = {"oid": blob.lfs, "size": blob.size, "pointerSize": 134}
            entries.append(entry)
        entries += [
            {"type": "directory", "oid": "0" * 40, "size": 0, "path": f} for f in sorted(folders)
        ]
        self._send_json(200, entries, {})

    def _resolve(self, parts: list[str], *, body: bool) -> None:
        if parts[:1] == ["datasets"]:
            parts = parts[1:]
        found = self._find(self.state.models, parts)
        if found is None or found[2][:1] != ["resolve"] or len(found[2]) < 3:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        _, repo, tail = found
        steps = self.state.faults.get("resolve") or []
        if body and steps:
            step = steps[0]
            if step == "drop":
                steps.pop(0)
                self._cut = True
            elif self._scripted(steps):
                return
        commit = _commit(repo, tail[1])
        if commit is None:
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return
        blob = repo.commits[commit].get("/".join(tail[2:]))
        if blob is None:
            self._error(404, "EntryNotFound", "Entry not found")
            return
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{blob.lfs or blob.git_oid}"',
            "Content-Type": "application/octet-stream",
        }
        if blob.lfs is not None:
            headers |= {"X-Linked-Etag": f'"{blob.lfs}"', "X-Linked-Size": str(blob.size)}
        self._stream(repo, blob, headers, body)

    def _stream(self, repo: Repo, blob: Blob, headers: dict[str, str], body: bool) -> None:
        try:
            self.send_response(200)
            for key, value in {**headers, "Content-Length": str(blob.size)}.items():
                self.send_header(key, value)
            self.end_headers()
            if not body:
                return
            if blob.data is not None:
                data = blob.data[: blob.size // 2] if getattr(self, "_cut", False) else blob.data
                self.wfile.write(data)
            else:
                with open(repo.lfs[blob.lfs or ""], "rb") as handle:
                    left = blob.size // 2 if getattr(self, "_cut", False) else blob.size
                    while left > 0 and (chunk := handle.read(min(1 << 20, left))):
                        self.wfile.write(chunk)
                        left -= len(chunk)
            if getattr(self, "_cut", False):
                self._hang_up()
        except (BrokenPipeError, ConnectionResetError):
            pass

    # --- write routes -------------------------------------------------------------

    def _create(self, body: Any) -> None:
        name, org = body.get("name"), body.get("organization")
        repo_id = f"{org}/{name}" if org else str(name)
        url = f"{self.state.base}/{repo_id}"
        with self.state.lock:
            if repo_id in self.state.models:
                self._send(409, {"error": "You already created this model repo", "url": url}, {})
                return
            repo = Repo(refs={})
            self.state.models[repo_id] = repo
            _new_commit(
                self.state,
                repo,
                "main",
                {".gitattributes": Blob(data=GITATTRIBUTES, size=len(GITATTRIBUTES))},
            )
        self._finish(200, {"url": url, "name": repo_id})

    def _validate(self, body: Any) -> None:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import YAMLError

        content = str(body.get("content", ""))
        if content.startswith("---\n"):
            front = content[4:].split("\n---\n", 1)[0]
            try:
                YAML(typ="safe", pure=True).load(front)
            except YAMLError as exc:
                self._send(
                    400, {"errors": [{"message": str(exc)}], "error": "Invalid metadata"}, {}
                )
                return
        self._finish(200, {"errors": [], "warnings": []})

    def _preupload(self, repo: Repo, revision: str, body: Any) -> None:
        commit = _commit(repo, revision)
        files = repo.commits.get(commit or "", {})
        answer = []
        for item in body["files"]:
            sample = base64.b64decode(item["sample"])
            lfs = (
                item["path"].endswith(LFS_SUFFIXES)
                or item["size"] > self.state.lfs_threshold
                or b"\0" in sample
            )
            there = files.get(item["path"])
            oid = None if there is None else (there.lfs if there.lfs is not None else there.git_oid)
            answer.append(
                {
                    "path": item["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": oid,
                }
            )
        self._finish(200, {"files": answer, "commitOid": commit})

    def _lfs_batch(self, repo_id: str, body: Any) -> None:
        repo = self.state.models.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        objects = []
        for item in body["objects"]:
            entry: dict[str, object] = {
                "oid": item["oid"],
                "size": item["size"],
                "authenticated": True,
            }
            if item["oid"] not in repo.lfs:
                entry["actions"] = {
                    "upload": {"href": f"{self.state.base}/lfs-upload/{repo_id}/{item['oid']}"},
                    "verify": {"href": f"{self.state.base}/lfs-verify/{repo_id}"},
                }
            objects.append(entry)
        self._finish(200, {"transfer": "basic", "objects": objects})

    def _lfs_upload(self, repo_id: str, oid: str) -> None:
        repo = self.state.models[repo_id]
        length = int(self.headers.get("Content-Length", "0"))
        target = self.state.storage / f"{hashlib.sha256(repo_id.encode()).hexdigest()[:16]}-{oid}"
        digest, left = hashlib.sha256(), length // 2 if getattr(self, "_cut", False) else length
        with open(f"{target}.part", "wb") as handle:
            while left > 0 and (chunk := self.rfile.read(min(1 << 20, left))):
                digest.update(chunk)
                handle.write(chunk)
                left -= len(chunk)
        if getattr(self, "_cut", False):
            self._hang_up()
            return
        if left or digest.hexdigest() != oid:
            self._error(400, None, "the upload does not match its oid")
            return
        Path(f"{target}.part").replace(target)
        with self.state.lock:
            repo.lfs[oid] = target
        self._finish(200, {})

    def _lfs_verify(self, repo_id: str) -> None:
        body, repo = self._json_body(), self.state.models.get(repo_id)
        ok = repo is not None and body.get("oid") in repo.lfs
        if ok:
            self._finish(200, {})
        else:
            self._error(404, None, "object not uploaded")

    def _commit(self, repo_id: str, repo: Repo, branch: str) -> None:
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        header = lines[0]["value"]
        with self.state.lock:
            head = repo.refs.get(branch)
            parent = header.get("parentCommit")
            if parent is not None and not (head or "").startswith(parent):
                self._error(412, None, "A commit has happened since. Please refresh and try again.")
                return
            files = dict(repo.commits.get(head or "", {}))
            for line in lines[1:]:
                value = line["value"]
                if line["key"] == "file":
                    data = base64.b64decode(value["content"])
                    files[value["path"]] = Blob(data=data, size=len(data))
                elif line["key"] == "lfsFile":
                    if value["oid"] not in repo.lfs:
                        self._error(422, None, f"LFS object {value['oid']} was not uploaded")
                        return
                    files[value["path"]] = Blob(lfs=value["oid"], size=int(value["size"]))
                elif line["key"] == "deletedFile":
                    files.pop(value["path"])
                elif line["key"] == "deletedFolder":
                    files = {
                        p: b
                        for p, b in files.items()
                        if not p.startswith(value["path"].rstrip("/") + "/")
                    }
            commit = _new_commit(self.state, repo, branch, files)
        url = f"{self.state.base}/{repo_id}/commit/{commit}"
        self._finish(200, {"commitUrl": url, "commitOid": commit, "success": True})

    def _tag(self, repo: Repo, revision: str, body: Any) -> None:
        with self.state.lock:
            commit = _commit(repo, revision)
            if commit is None:
                self._error(404, "RevisionNotFound", "Invalid rev id")
                return
            if body["tag"] in repo.tags:
                self._error(409, None, "Tag already exists")
                return
            repo.tags[body["tag"]] = commit
        self._finish(200, {})

    # --- bodies and answers -------------------------------------------------------

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while (size := int(self.rfile.readline().strip() or b"0", 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _json_body(self) -> Any:
        return json.loads(self._body() or b"{}")

    def _finish(self, status: int, body: Any) -> None:
        """Answer, or for a ``late`` step wait first, so the work lands and the client times out."""
        if getattr(self, "_late", False):
            time.sleep(self.state.slow_seconds)
        self._send_json(status, body, {})

    def _error(self, status: int, code: str | None, message: str) -> None:
        headers = {"X-Error-Code": code} if code else {}
        headers["X-Error-Message"] = message
        if status == 429:
            headers["Retry-After"] = "0"
        self._send(status, {"error": message}, headers)

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        self._send_json(status, body, headers)

    def _send_json(self, status: int, body: Any, headers: dict[str, str]) -> None:
        self._raw(
            status, json.dumps(body).encode(), {"Content-Type": "application/json", **headers}
        )

    def _raw(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout under test)


def _content(repo: Repo, blob: Blob) -> bytes:
    if blob.data is not None:
        return blob.data
    return repo.lfs[blob.lfs or ""].read_bytes()


def _new_commit(state: HubState, repo: Repo, branch: str, files: dict[str, Blob]) -> str:
    """Record ``files`` as a new commit on ``branch`` (callers hold the lock)."""
    parent = repo.refs.get(branch, "")
    seed = f"{parent}:{next(state.counter)}:{sorted((p, b.git_oid) for p, b in files.items())}"
    commit = hashlib.sha1(seed.encode()).hexdigest()
    repo.commits[commit] = files
    repo.refs[branch] = commit
    return commit


def _handler(hub_state: HubState) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        state = hub_state

    return Handler


def _commit(repo: Repo, revision: str | None) -> str | None:
    """The commit a branch, tag or full commit names in ``repo``, or None."""
    name = revision or "main"
    commit = repo.refs.get(name) or repo.tags.get(name)
    known = (*repo.commits, *repo.refs.values(), *repo.tags.values())
    if commit is None and len(name) == 40 and name in known:
        commit = name
    return commit


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up mid-answer is part of the scenarios


@dataclass
class HubServer:
    url: str
    state: HubState


def serve() -> Iterator[HubServer]:
    storage = Path(tempfile.mkdtemp(prefix="hubserver-"))
    state = HubState(storage=storage)
    server = _QuietServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    # shutdown() waits for serve_forever's next poll: 0.05 s, not the default 0.5 s, per test.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield HubServer(state.base, state)
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(storage, ignore_errors=True)
