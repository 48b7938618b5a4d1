"""``aegis-vault get NAME`` straight to a running broker: the call agents make in loops.

A cold ``get`` through a broker must cost no more than ``pass show``, and the Python
interpreter alone already costs three quarters of that. So this module imports nothing
the interpreter has not loaded at start-up except three C modules (``_socket``,
``_json``, ``binascii``): not ``socket`` (it builds enums: ~4 ms), not ``json`` or
``base64`` (both import ``re``, ~6 ms with ``enum``, ``functools`` and ``collections``),
not ``argparse``, ``typing`` or the project's error classes. Those are imported only on
the way to an error.

It handles only the ordinary case: a vault, a private runtime folder, a socket that
answers and belongs to us. Anything else before the request is sent returns ``None``
and the full command line takes over, which finds the same thing and reports it as
always. Once the request is sent, failures are reported here, with the same classes,
messages and exit codes as ``BrokerClient`` (a second attempt could ask the human twice).

The request is ``{"v":1,"id":1,"op":"get","args":{"ref":NAME},"session":TOKEN}``
(session only when ``AEGIS_SESSION`` is set), exactly what ``BrokerAccess.get`` sends;
the answer's ``result`` carries ``name``, ``status`` and ``value_b64``.

Where the vault and the socket are is worked out here without importing
``core.paths`` and ``core.broker.runtime``; ``tests/test_import_hygiene.py`` checks
that both give the same path in every case they handle.
"""

# No ``from __future__ import annotations``: importing ``__future__`` costs ~0.1 ms here,
# so annotations that name typing's types are strings.
import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any, NoReturn

# Same as core/broker/client.py and wire.py (a test keeps them equal).
APPROVAL_WAIT_SECONDS = 900.0
MAX_ANSWER_BYTES = 24 * 1024 * 1024


def get_through_broker(reference: str) -> int | None:
    """Print the value of ``reference`` as the broker gives it; ``None`` when no broker
    (or not an ordinary one) serves this vault: the caller then takes the long way."""
    path = broker_socket_path()
    if path is None:
        return None
    try:
        import _socket
    except ImportError:  # not CPython: the long way works everywhere
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            sock.connect(path)
            peer = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        except OSError:
            return None  # a stale socket, or something odd: the long way says what
        if int.from_bytes(peer[4:8], sys.byteorder) != os.getuid():
            return None  # not our broker: the long way refuses it by name, before sending anything
        session = os.environ.get("AEGIS_SESSION")
        request = '{"v":1,"id":1,"op":"get","args":{"ref":' + _quote(reference) + "}"
        if session:
            request += ',"session":' + _quote(session)
        sock.settimeout(APPROVAL_WAIT_SECONDS)
        answer = _ask(sock, (request + "}\n").encode())
    finally:
        sock.close()
    return _print(answer)


def broker_socket_path() -> str | None:
    """The socket of this vault's broker when it exists in a private runtime folder
    (inside a sandboxed session, where the vault is hidden, the session's socket).

    ``core.paths.vault_path()`` and ``core.broker.runtime.socket_path()``, without
    their imports; ``None`` where those would raise or the socket is not there."""
    env = os.environ
    home = env.get("AEGIS_VAULT_HOME")
    if home:
        home = os.path.expanduser(home)
    else:
        data_home = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        home = os.path.join(data_home, "aegis-vault")
    base = env.get("XDG_RUNTIME_DIR")
    folder = os.path.join(base, "aegis-vault") if base and os.path.isdir(base) else f"/tmp/aegis-vault-{os.getuid()}"
    try:
        info = os.lstat(folder)
    except (OSError, ValueError):
        return None
    if (info.st_mode & 0o170000) != 0o040000 or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    try:
        vault = os.stat(os.path.join(home, "vault.db"))
    except FileNotFoundError:  # inside a sandboxed session: its own socket, if any
        path = os.path.join(folder, "session.sock")  # runtime.SESSION_SOCKET_NAME
        return path if os.path.exists(path) else None
    except (OSError, ValueError):
        return None
    path = os.path.join(folder, f"vault-{vault.st_dev:x}-{vault.st_ino:x}.sock")
    return path if os.path.exists(path) else None


def _quote(text: str) -> str:
    try:
        from _json import encode_basestring_ascii
    except ImportError:
        from json.encoder import encode_basestring_ascii
    return str(encode_basestring_ascii(text))


def _ask(sock: "Any", request: bytes) -> "dict[str, Any]":
    """Send the request; the broker's ``result``, or its error raised as the same class."""
    chunks: list[bytes] = []
    size = 0
    try:
        sock.sendall(request)
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                _unavailable("the broker closed the connection")
            end = chunk.find(b"\n")
            if end >= 0:
                chunks.append(chunk[:end])
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                _unavailable("the broker sent an answer larger than any value")
    except TimeoutError:
        _unavailable(f"the broker did not answer get within {int(APPROVAL_WAIT_SECONDS)} s")
    except OSError as error:
        _unavailable(f"lost the connection to the broker ({error.strerror or error})")
    reply = _parse(b"".join(chunks))
    if reply.get("ok") is not True:
        from aegis_tui.core.broker.wire import error_from_wire

        raise error_from_wire(reply.get("error"))
    result = reply.get("result")
    if not (isinstance(result, dict) and isinstance(result.get("name"), str)
            and isinstance(result.get("value_b64"), str)):
        _unavailable("the broker sent an unreadable answer")
    return result


class _Decoding:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder``: strict JSON, plain types."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> None:
        raise ValueError(name)  # NaN and Infinity are not JSON


def _parse(line: bytes) -> "dict[str, Any]":
    try:
        from _json import make_scanner
    except ImportError:
        from json.scanner import make_scanner
    try:
        text = line.decode("utf-8")
        reply, end = make_scanner(_Decoding())(text, 0)
        if not isinstance(reply, dict) or text[end:].strip(" \t\r"):
            raise ValueError("not one JSON object")
    except (ValueError, StopIteration, RecursionError):
        _unavailable("the broker sent an unreadable answer")
    return reply


def _print(result: "dict[str, Any]") -> int:
    """The value and nothing else (a newline only for a person at a terminal), as ``get`` prints it."""
    from binascii import a2b_base64

    try:
        value = a2b_base64(result["value_b64"])  # what base64.b64decode does, without importing re
    except ValueError:  # binascii.Error, or a non-ASCII string
        _unavailable("the broker sent an unreadable answer")
    if result.get("status") == "exposed":
        sys.stderr.write(f"aegis-vault: warning: {result['name']!r} is marked exposed; rotate it\n")
    out = sys.stdout.buffer
    out.write(value)
    if sys.stdout.isatty():
        out.write(b"\n")
    out.flush()
    return 0


def _unavailable(message: str) -> "NoReturn":
    from aegis_tui.core.broker.client import BrokerUnavailable

    raise BrokerUnavailable(message)
