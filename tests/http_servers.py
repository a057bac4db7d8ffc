"""Loopback HTTP servers for the weights tests: a plain file server and a minimal Hugging Face Hub.

Both listen on 127.0.0.1 on a free port, serve from memory, and record every request as
``(method, path)`` so tests can check what the client asked for.

The Hub server speaks what ``huggingface_hub.hf_hub_download`` (2.x) needs, read from its source:
``HEAD`` then ``GET`` on ``/{repo_id}/resolve/{revision}/{filename}``; the answer carries
``X-Repo-Commit`` (40-hex commit), ``ETag`` (the blob id: sha256 for LFS files, git sha1 otherwise) and
``Content-Length``. Errors are 404s with ``X-Error-Code`` = ``RepoNotFound`` / ``RevisionNotFound`` /
``EntryNotFound``, which huggingface_hub maps to its exception types. ``GET /api/whoami-v2`` answers for
the tokens added with ``HubServer.add_user`` (``Authorization: Bearer <token>``) and 401 for any other.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Route:
    """What the file server answers for one path."""

    body: bytes = b""
    status: int = 200
    truncate_to: int | None = None  # send only this many bytes, announcing the full length, then close
    stall_s: float = 0.0  # wait this long before answering (to provoke client timeouts)
    stall_after: int | None = None  # with stall_s: send this many bytes first, then wait, then the rest
    unannounced: int | None = None  # send this many bytes (body repeated) with no Content-Length, then close


@dataclass
class _State:
    routes: dict[str, Route] = field(default_factory=dict)
    repos: dict[str, tuple[str, dict[str, bytes]]] = field(default_factory=dict)  # repo_id -> (commit, files)
    tampered: dict[str, bytes] = field(default_factory=dict)  # "repo_id/filename" -> bytes sent instead
    users: dict[str, dict] = field(default_factory=dict)  # token -> whoami-v2 answer
    requests: list[tuple[str, str]] = field(default_factory=list)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up early (timeout and truncation tests) are expected, not noise to print


class _Server:
    def __init__(self, handler_cls) -> None:
        self.state = _State()
        state = self.state

        class Handler(handler_cls):
            server_state = state

            def log_message(self, *args):  # keep test output quiet
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self.state.requests


class _FileHandler(BaseHTTPRequestHandler):
    server_state: _State

    def do_GET(self):
        import time

        self.server_state.requests.append(("GET", self.path))
        route = self.server_state.routes.get(self.path)
        if route is None or route.status == 404:
            self.send_error(404, "Not Found")
            return
        if route.stall_s and route.stall_after is None:
            time.sleep(route.stall_s)
        if route.unannounced is not None:
            return self._stream_unannounced(route)
        self.send_response(route.status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        if route.stall_after is not None:  # a transfer that hangs midway (the client is killed meanwhile)
            self.wfile.write(route.body[: route.stall_after])
            self.wfile.flush()
            time.sleep(route.stall_s)
            self.wfile.write(route.body[route.stall_after :])
            return
        self.wfile.write(route.body[: route.truncate_to] if route.truncate_to is not None else route.body)
        self.wfile.flush()
        if route.truncate_to is not None:
            self.close_connection = True

    def _stream_unannounced(self, route: Route) -> None:
        """A mirror that never says how long the file is and keeps sending (until ``unannounced`` bytes or
        the client hangs up)."""
        self.send_response(route.status)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        self.close_connection = True
        chunk, sent = (route.body or b"\0") * max(1, (1 << 16) // max(1, len(route.body))), 0
        try:
            while sent < route.unannounced:
                part = chunk[: route.unannounced - sent]
                self.wfile.write(part)
                sent += len(part)
        except (BrokenPipeError, ConnectionResetError):
            pass


class FileServer(_Server):
    """Serves ``Route``s by path; unknown paths are 404."""

    def __init__(self) -> None:
        super().__init__(_FileHandler)

    def add(self, path: str, body: bytes = b"", **kwargs) -> str:
        self.state.routes[path] = Route(body, **kwargs)
        return self.url + path


class _HubHandler(BaseHTTPRequestHandler):
    server_state: _State

    def _resolve(self, head: bool) -> None:
        self.server_state.requests.append(("HEAD" if head else "GET", self.path))
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._error(404, "RepoNotFound")
        repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        if repo_id not in self.server_state.repos:
            return self._error(404, "RepoNotFound")
        commit, files = self.server_state.repos[repo_id]
        if revision not in ("main", commit):
            return self._error(404, "RevisionNotFound")
        if filename not in files:
            return self._error(404, "EntryNotFound", commit)
        body = files[filename]
        is_lfs = filename.endswith(".safetensors")
        etag = hashlib.sha256(body).hexdigest() if is_lfs else hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()
        self.send_response(200)
        self.send_header("X-Repo-Commit", commit)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if not head:
            self.wfile.write(self.server_state.tampered.get(f"{repo_id}/{filename}", body))

    def _error(self, status: int, code: str, commit: str | None = None) -> None:
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        self._resolve(head=True)

    def do_GET(self):
        if self.path.split("?")[0] == "/api/whoami-v2":
            return self._whoami()
        self._resolve(head=False)

    def _whoami(self) -> None:
        self.server_state.requests.append(("GET", self.path))
        token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        info = self.server_state.users.get(token)
        if info is None:
            return self._error(401, "Unauthorized")
        body = json.dumps(info).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class HubServer(_Server):
    """A read-only Hub with repos added from local folders (e.g. written by ``save_pretrained``)."""

    def __init__(self) -> None:
        super().__init__(_HubHandler)

    def add_repo(
        self,
        repo_id: str,
        folder: Path,
        files: tuple[str, ...] = ("config.json", "model.safetensors"),
        *,
        tamper: bool = False,
    ) -> str:
        """Publish ``files`` of ``folder`` as ``repo_id``; returns the (fake, content-derived) commit sha.

        ``tamper``: GET of ``model.safetensors`` sends one flipped byte while headers announce the real file.
        """
        blobs = {name: (folder / name).read_bytes() for name in files}
        if tamper:
            bad = bytearray(blobs["model.safetensors"])
            bad[-1] ^= 0xFF
            self.state.tampered[f"{repo_id}/model.safetensors"] = bytes(bad)
        commit = hashlib.sha1(b"".join(blobs[n] for n in sorted(blobs)) + repo_id.encode()).hexdigest()
        self.state.repos[repo_id] = (commit, blobs)
        return commit

    def add_user(self, token: str, name: str, *, orgs: tuple[str, ...] = (), role: str = "write") -> None:
        """Make ``token`` a valid token of user ``name`` (member of ``orgs``; ``role`` "read" or "write")."""
        self.state.users[token] = {
            "type": "user",
            "name": name,
            "orgs": [{"name": org} for org in orgs],
            "auth": {"type": "access_token", "accessToken": {"role": role}},
        }

    def api_class(self, serve_instead: Path | None = None) -> type:
        """A stand-in for ``huggingface_hub.HfApi`` whose uploads land on this Hub (which then serves them
        back); ``serve_instead`` makes the Hub hold that folder instead of what was uploaded."""
        hub = self

        class LoopbackApi:
            def __init__(self, endpoint=None, token=None):
                pass

            def create_repo(self, repo_id, private=None, exist_ok=False):
                pass

            def upload_folder(self, *, repo_id, folder_path, **kwargs):
                commit = hub.add_repo(repo_id, Path(serve_instead or folder_path))
                return f"{hub.url}/{repo_id}/commit/{commit}"

        return LoopbackApi
