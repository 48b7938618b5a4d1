"""A stand-in for ``aegis-vault serve`` on a real Unix socket, answering what a test
scripts: for the fast ``get`` path (``aegis_tui/cli/fast_get.py``), whose handling of
every kind of answer, including broken ones a real broker never sends, is tested
without depending on the broker's own code."""

from __future__ import annotations

import base64
import json
import os
import socket
import tempfile
import threading
from collections.abc import Callable

VALUE = b"sk-fast-0123456789abcdef"


def broker_socket_for(vault_home: str) -> tuple[str, str]:
    """(a new private runtime folder to use as ``XDG_RUNTIME_DIR``, the path where the
    broker of the vault in ``vault_home`` listens under it); the caller removes the folder."""
    runtime = tempfile.mkdtemp(prefix="aeg-", dir="/tmp")  # socket paths are limited to 108 bytes
    os.chmod(runtime, 0o700)
    folder = os.path.join(runtime, "aegis-vault")
    os.mkdir(folder, 0o700)
    info = os.stat(os.path.join(vault_home, "vault.db"))
    return runtime, os.path.join(folder, f"vault-{info.st_dev:x}-{info.st_ino:x}.sock")


def answer(result: dict[str, object]) -> bytes:
    return json.dumps({"v": 1, "id": 1, "ok": True, "result": result}).encode() + b"\n"


def value_answer(value: bytes, name: str = "api", status: str = "active") -> bytes:
    return answer({"name": name, "reference": f"aegis://{name}", "grant": "ag_1", "status": status,
                   "value_b64": base64.b64encode(value).decode()})


class ScriptedBroker:
    """A Unix socket where ``aegis-vault serve`` would listen; each connection's first
    line is kept in ``requests`` and answered with ``reply(line)`` (bytes sent as they
    are, then the connection is closed)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.requests: list[bytes] = []
        self.reply: Callable[[bytes], bytes] = lambda line: value_answer(VALUE)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(path)
        self._server.listen(8)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                line = conn.makefile("rb").readline()
                self.requests.append(line)
                try:
                    conn.sendall(self.reply(line))
                except OSError:
                    pass

    def close(self) -> None:
        """Stop listening, leaving the socket file behind (as a broker that died does).
        ``shutdown`` first: a bare ``close`` would not wake the thread blocked in
        ``accept``, which would go on accepting on the closed socket's file."""
        try:
            self._server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._server.close()
        self._thread.join(timeout=10)
