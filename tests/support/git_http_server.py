"""A real git-over-HTTP server on 127.0.0.1, behind HTTP Basic auth, for end-to-end tests.

The credential helper is only worth testing against what git really does: a first
request without credentials, a 401, a ``get``, a retry, then ``store`` or ``erase``.
So this is ``git http-backend`` (git's own smart-HTTP CGI) behind a small stdlib
server that demands one username/token and counts what it was offered.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

REALM = "aegis-test"
# git's own configuration must not leak in from the machine running the tests.
_ISOLATED_GIT = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def make_bare_repo(root: Path, name: str) -> Path:
    """A bare repository under ``root`` that accepts pushes over HTTP."""
    repo = root / name
    env = {"PATH": os.environ.get("PATH", ""), **_ISOLATED_GIT}
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(repo)],
                   env=env, check=True, timeout=30)
    subprocess.run(["git", "-C", str(repo), "config", "http.receivepack", "true"], env=env, check=True, timeout=30)
    return repo


class GitHttpServer:
    """Serves every bare repository under ``root`` to whoever presents ``username``/``token``.

    ``auth_successes`` and ``auth_failures`` count requests that carried credentials;
    ``challenges`` counts those that carried none (git's first try always does).
    """

    def __init__(self, root: Path, username: str, token: str) -> None:
        self.root = root
        self.username = username
        self._expected = f"{username}:{token}".encode()
        self._lock = threading.Lock()  # handler threads count concurrently
        self.auth_successes = self.auth_failures = self.challenges = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._httpd = _Server(self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="git-http-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None and self._thread is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=10)
        self._httpd = self._thread = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return self._httpd.server_address[1]

    def url(self, repo: str) -> str:
        return f"http://127.0.0.1:{self.port}/{repo}"

    def __enter__(self) -> GitHttpServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def authenticate(self, header: str | None) -> bool:
        """Check an ``Authorization`` header and count the outcome."""
        scheme, _, encoded = (header or "").partition(" ")
        try:
            offered = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            offered = b""
        ok = scheme.lower() == "basic" and hmac.compare_digest(offered, self._expected)
        with self._lock:
            if header is None:
                self.challenges += 1
            elif ok:
                self.auth_successes += 1
            else:
                self.auth_failures += 1
        return ok

    def run_backend(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request through ``git http-backend`` as CGI: status, headers, body."""
        parts = urlsplit(handler.path)
        env = {
            "PATH": os.environ.get("PATH", ""), **_ISOLATED_GIT,
            "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": handler.request_version,
            "REMOTE_USER": self.username, "REMOTE_ADDR": handler.client_address[0],
            "REQUEST_METHOD": handler.command, "PATH_INFO": unquote(parts.path), "QUERY_STRING": parts.query,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
        }
        for header, variable in (("Content-Encoding", "HTTP_CONTENT_ENCODING"), ("Git-Protocol", "GIT_PROTOCOL")):
            if value := handler.headers.get(header):
                env[variable] = value
        result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=120)
        head, payload = _split_cgi(result.stdout)
        if result.returncode != 0 and not head:
            return 500, [], result.stderr
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name.lower() not in ("content-length", "transfer-encoding", "connection"):
                headers.append((name, value.strip()))
        return status, headers, payload


def _split_cgi(output: bytes) -> tuple[bytes, bytes]:
    """CGI output is headers, a blank line, then the body; CRLF or bare LF line ends."""
    ends = [(index, len(mark)) for mark in (b"\r\n\r\n", b"\n\n") if (index := output.find(mark)) >= 0]
    if not ends:
        return output, b""
    index, size = min(ends)
    return output[:index], output[index + size:]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # a client that stalls mid-request must not pin a thread forever
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        """Silent: request lines on stderr would drown the test output."""

    def _serve(self) -> None:
        # The body is read even when auth fails, or it would be parsed as the next request.
        body = self._read_body()
        owner = self.server.owner
        if not owner.authenticate(self.headers.get("Authorization")):
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Basic realm="{REALM}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, headers, payload = owner.run_backend(self, body)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
            while self.rfile.readline().strip():
                pass  # trailers, up to the blank line
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: GitHttpServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet about clients hanging up (git does, once it has what it needs); loud otherwise."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]
