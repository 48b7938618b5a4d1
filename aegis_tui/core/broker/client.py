"""The blocking client the command line uses to talk to a running broker.

Light on purpose (``socket`` and ``json`` only): agents call the CLI in loops, and
asking a running broker must cost less than unlocking the vault. The client also
checks the broker's uid (SO_PEERCRED works both ways): a socket in our private folder
should only ever be ours, and we make sure before sending anything.
"""

from __future__ import annotations

import json
import os
import socket

from aegis_tui.core.broker.runtime import peer_credentials, socket_path
from aegis_tui.core.broker.wire import MAX_ANSWER_BYTES, encode_request, error_from_wire
from aegis_tui.core.errors import AegisError, RefusedError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (~2 ms) on the get path
if TYPE_CHECKING:
    from typing import Any

APPROVAL_WAIT_SECONDS = 900.0  # longer than any approval timeout: the broker decides when to give up
CALL_TIMEOUT = 60.0


class BrokerUnavailable(AegisError):
    """The broker went away mid-conversation."""


class BrokerClient:
    """One connection to the broker; requests go one at a time."""

    def __init__(self, sock: socket.socket, session: str | None) -> None:
        self._sock = sock
        self._file = sock.makefile("rb")
        self.session = session
        self._next_id = 0

    @classmethod
    def connect(cls, vault_path: str, session: str | None = None) -> BrokerClient | None:
        """A client if a broker serves this vault, else ``None`` (the caller unlocks itself)."""
        path = socket_path(vault_path)
        if not os.path.exists(path):
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            return None  # a stale socket left by a broker that died
        if peer_credentials(sock)[1] != os.getuid():
            sock.close()
            raise RefusedError(f"the broker socket {path} belongs to another user; remove it")
        return cls(sock, session if session is not None else os.environ.get("AEGIS_SESSION") or None)

    def call(self, op: str, args: dict[str, Any] | None = None, *, timeout: float = CALL_TIMEOUT) -> dict[str, Any]:
        """Send one request; the result, or the broker's error raised as the same class."""
        self._next_id += 1
        self._sock.settimeout(timeout)
        try:
            self._sock.sendall(encode_request(self._next_id, op, args or {}, self.session))
            line = self._file.readline(MAX_ANSWER_BYTES)
        except socket.timeout:
            raise BrokerUnavailable(f"the broker did not answer {op} within {int(timeout)} s") from None
        except OSError as error:
            raise BrokerUnavailable(f"lost the connection to the broker ({error.strerror or error})") from None
        if not line.endswith(b"\n"):
            raise BrokerUnavailable("the broker closed the connection")
        try:
            reply = json.loads(line)
        except ValueError:
            raise BrokerUnavailable("the broker sent an unreadable answer") from None
        if not reply.get("ok"):
            raise error_from_wire(reply.get("error"))
        result = reply.get("result")
        return result if isinstance(result, dict) else {}

    def send(self, op: str, args: dict[str, Any] | None = None) -> None:
        """Send a request and do not wait for the answer (a report nobody acts on)."""
        self._next_id += 1
        try:
            self._sock.sendall(encode_request(self._next_id, op, args or {}, self.session))
        except OSError as error:
            raise BrokerUnavailable(f"lost the connection to the broker ({error.strerror or error})") from None

    @property
    def raw(self) -> socket.socket:
        """The socket, for the masking stream that follows a ``mask`` call."""
        return self._sock

    def read_exact(self, count: int) -> bytes:
        data = self._file.read(count)
        if len(data) != count:
            raise BrokerUnavailable("the broker closed the masking stream")
        return data

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> BrokerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
