"""Putting broker messages on the wire and reading answers back: the half of the
protocol a client needs. Kept free of request validation (that is ``protocol``, the
broker's side) and light to import, because the command line imports it on every
``run`` and every call through a broker, where every millisecond counts.

JSON goes through ``dumps`` and ``loads`` here rather than the ``json`` package, whose
import pulls in ``re`` (with ``enum``, ``functools`` and ``collections``: ~4 ms of a
~30 ms ``run``). ``loads`` is the C scanner ``json`` itself uses; ``dumps`` writes
exactly what ``json.dumps(obj, separators=(",", ":"))`` writes (a property test keeps
them equal). The project's error classes are imported only to raise or encode one.

Request:  ``{"v": 1, "id": 7, "op": "get", "session": "as_…", "args": {...}}``
Response: ``{"v": 1, "id": 7, "ok": true, "result": {...}}`` or
          ``{"v": 1, "id": 7, "ok": false, "error": {"code": "not_found", "message": "…", "exit": 4}}``
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (~2 ms)
if TYPE_CHECKING:
    from typing import Any

    from aegis_tui.core.errors import AegisError

try:
    from _json import encode_basestring_ascii as _quote
    from _json import make_scanner as _make_scanner
except ImportError:  # not CPython: the same functions in Python
    from json.encoder import encode_basestring_ascii as _quote
    from json.scanner import make_scanner as _make_scanner

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024  # a request, and a line on the owner channel
# An answer may carry one value: up to 16 MiB (models.MAX_VALUE_BYTES), 22.4 MB in base64.
MAX_ANSWER_BYTES = 24 * 1024 * 1024
MAX_TEXT = 4096

# The masking stream that follows a ``mask`` request: frames of (type, length, bytes).
# Client -> broker: DATA (output to mask), FLUSH (the child went idle), END.
# Broker -> client: DATA (what may be shown) for each, then HITS (JSON counts) after END.
STREAM_HEADER = struct.Struct(">cI")
MAX_STREAM_FRAME = 1024 * 1024
DATA, FLUSH, END, HITS = b"D", b"F", b"E", b"H"


def dumps(value: Any) -> str:
    """Compact JSON, as ``json.dumps(value, separators=(",", ":"))`` writes it."""
    if isinstance(value, str):
        return _quote(value)  # type: ignore[no-any-return]
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    if isinstance(value, dict):
        return "{" + ",".join(_key(key) + ":" + dumps(item) for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _key(key: object) -> str:
    """Keys as ``json.dumps`` writes them: strings, or numbers, booleans and null as strings."""
    if isinstance(key, str):
        return _quote(key)  # type: ignore[no-any-return]
    if isinstance(key, (bool, int, float)) or key is None:
        return _quote(dumps(key))  # type: ignore[no-any-return]
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


class _Strict:
    """What the C scanner reads from a ``json.JSONDecoder``: the defaults of ``json.loads``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.replace("Infinity", "inf"))  # NaN, Infinity, -Infinity as json.loads reads them


_scan = _make_scanner(_Strict())
_SPACE = " \t\n\r"


def loads(data: bytes | str) -> Any:
    """One JSON document, as ``json.loads`` reads UTF-8 text; ``ValueError`` if it is not one."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    start = len(text) - len(text.lstrip(_SPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("not a JSON document") from None
    if text[end:].strip(_SPACE):
        raise ValueError("extra data after the JSON document")
    return value


def encode_request(request_id: int | str, op: str, args: dict[str, Any], session: str | None) -> bytes:
    message: dict[str, Any] = {"v": PROTOCOL_VERSION, "id": request_id, "op": op, "args": args}
    if session:
        message["session"] = session
    return dumps(message).encode() + b"\n"


def encode_result(request_id: int | str | None, result: dict[str, Any]) -> bytes:
    return dumps({"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "result": result}).encode() + b"\n"


def error_code(error: AegisError) -> str:
    """The error's class as the client knows it: the nearest one of ``core.errors`` (a
    refinement defined elsewhere travels as the class it refines)."""
    from aegis_tui.core import errors as core_errors

    known = next(cls for cls in type(error).__mro__ if getattr(core_errors, cls.__name__, None) is cls)
    name = known.__name__.removesuffix("Error") or "Aegis"
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in name).lstrip("_")


def encode_error(request_id: int | str | None, error: AegisError) -> bytes:
    body = {"code": error_code(error), "message": str(error), "exit": error.exit_code}
    return dumps({"v": PROTOCOL_VERSION, "id": request_id, "ok": False, "error": body}).encode() + b"\n"


def error_from_wire(body: Any) -> AegisError:
    """The client side: rebuild the broker's error as the same exception class."""
    from aegis_tui.core import errors as core_errors
    from aegis_tui.core.errors import AegisError

    if not isinstance(body, dict):
        return AegisError("the broker sent an unreadable error")
    code = str(body.get("code", ""))
    class_name = "".join(part.capitalize() for part in code.split("_")) + "Error"
    cls = getattr(core_errors, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, AegisError)):
        cls = AegisError
    return cls(str(body.get("message", "the broker refused the request"))[:MAX_TEXT])
