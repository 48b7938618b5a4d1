"""The blocking client the command line uses to talk to a running broker.

Light on purpose: agents call the CLI in loops, and asking a running broker must cost
less than unlocking the vault. So it speaks through ``_socket`` (the C module under
``socket``, whose Python half builds enums and imports ``selectors``: ~1.5 ms of a
~30 ms ``run``) and ``wire``'s JSON (no ``json``, no ``re``). The client also checks the
broker's uid (SO_PEERCRED works both ways): a socket in our private folder should only
ever be ours, and we make sure before sending anything.
"""

from __future__ import annotations

import os
import sys

from aegis_tui.core.broker.runtime import peer_credentials, socket_path
from aegis_tui.core.broker.wire import MAX_ANSWER_BYTES, encode_request, error_from_wire, loads
from aegis_tui.core.errors import AegisError, RefusedError

try:
    import _socket as _sockets
except ImportError:  # not CPython
    import socket as _sockets  # type: ignore[no-redef]

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (~2 ms) on the get path
if TYPE_CHECKING:
    from socket import socket
    from typing import Any

APPROVAL_WAIT_SECONDS = 900.0  # longer than any approval timeout: the broker decides when to give up
CALL_TIMEOUT = 60.0
_CHUNK = 1 << 16


class BrokerUnavailable(AegisError):
    """The broker went away mid-conversation."""


class BrokerClient:
    """One connection to the broker; requests go one at a time."""

    def __init__(self, sock: socket, session: str | None) -> None:
        self._sock = sock
        self._buffer = bytearray()  # received, not yet read
        self.session = session
        self._next_id = 0

    @classmethod
    def connect(cls, vault_path: str, session: str | None = None) -> BrokerClient | None:
        """A client if a broker serves this vault, else ``None`` (the caller unlocks itself)."""
        path = socket_path(vault_path)
        if not os.path.exists(path):
            return None
        sock = _sockets.socket(_sockets.AF_UNIX, _sockets.SOCK_STREAM)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            return None  # a stale socket left by a broker that died
        except BaseException:
            sock.close()
            raise
        if peer_credentials(sock)[1] != os.getuid():
            sock.close()
            raise RefusedError(f"the broker socket {path} belongs to another user; remove it")
        return cls(sock, session if session is not None else os.environ.get("AEGIS_SESSION") or None)

    def call(self, op: str, args: dict[str, Any] | None = None, *, timeout: float | None = CALL_TIMEOUT,
             fds: tuple[int, ...] = ()) -> dict[str, Any]:
        """Send one request; the result, or the broker's error raised as the same class.
        ``fds``: descriptors sent with it (SCM_RIGHTS; ``run.start`` lends its stdio)."""
        self._next_id += 1
        self._sock.settimeout(timeout)
        try:
            frame = encode_request(self._next_id, op, args or {}, self.session)
            if fds:
                rights = b"".join(fd.to_bytes(4, sys.byteorder) for fd in fds)
                sent = self._sock.sendmsg([frame], [(_sockets.SOL_SOCKET, _sockets.SCM_RIGHTS, rights)])
                self._sock.sendall(frame[sent:])
            else:
                self._sock.sendall(frame)
            line = self._read_line()
        except TimeoutError:
            raise BrokerUnavailable(f"the broker did not answer {op} within {int(timeout or 0)} s") from None
        except OSError as error:
            raise BrokerUnavailable(f"lost the connection to the broker ({error.strerror or error})") from None
        try:
            reply = loads(line)
            if not isinstance(reply, dict):
                raise ValueError("not an object")
        except ValueError:
            raise BrokerUnavailable("the broker sent an unreadable answer") from None
        if not reply.get("ok"):
            raise error_from_wire(reply.get("error"))
        result = reply.get("result")
        return result if isinstance(result, dict) else {}

    def _read_line(self) -> bytes:
        """One answer, without its newline; an answer carries at most one value."""
        searched = 0
        while (end := self._buffer.find(b"\n", searched)) < 0:
            if len(self._buffer) > MAX_ANSWER_BYTES:
                raise BrokerUnavailable("the broker sent an answer larger than any value")
            searched = len(self._buffer)
            chunk = self._sock.recv(max(_CHUNK, len(self._buffer)))
            if not chunk:
                raise BrokerUnavailable("the broker closed the connection")
            self._buffer += chunk
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 1]
        return line

    def send(self, op: str, args: dict[str, Any] | None = None) -> None:
        """Send a request and do not wait for the answer (a report nobody acts on)."""
        self._next_id += 1
        try:
            self._sock.sendall(encode_request(self._next_id, op, args or {}, self.session))
        except OSError as error:
            raise BrokerUnavailable(f"lost the connection to the broker ({error.strerror or error})") from None

    @property
    def raw(self) -> socket:
        """The socket, for the masking stream that follows a ``mask`` call (write to it;
        read what comes back with ``read_exact``, which sees what ``call`` buffered)."""
        return self._sock

    def read_exact(self, count: int) -> bytes:
        try:
            while len(self._buffer) < count:
                chunk = self._sock.recv(max(_CHUNK, count - len(self._buffer)))
                if not chunk:
                    raise BrokerUnavailable("the broker closed the masking stream")
                self._buffer += chunk
        except TimeoutError:
            raise BrokerUnavailable("the broker did not answer on the masking stream") from None
        except OSError as error:
            raise BrokerUnavailable(f"lost the connection to the broker ({error.strerror or error})") from None
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> BrokerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
