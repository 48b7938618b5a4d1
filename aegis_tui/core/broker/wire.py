"""Putting broker messages on the wire and reading answers back: the half of the
protocol a client needs. Kept free of ``typing`` and of request validation (that is
``protocol``, the broker's side) because ``aegis-vault get`` through a broker imports
this on every call and every millisecond counts there.

Request:  ``{"v": 1, "id": 7, "op": "get", "session": "as_…", "args": {...}}``
Response: ``{"v": 1, "id": 7, "ok": true, "result": {...}}`` or
          ``{"v": 1, "id": 7, "ok": false, "error": {"code": "not_found", "message": "…", "exit": 4}}``
"""

from __future__ import annotations

import json
import struct

from aegis_tui.core import errors as core_errors
from aegis_tui.core.errors import AegisError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (~2 ms) on the get path
if TYPE_CHECKING:
    from typing import Any

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


def encode_request(request_id: int | str, op: str, args: dict[str, Any], session: str | None) -> bytes:
    message: dict[str, Any] = {"v": PROTOCOL_VERSION, "id": request_id, "op": op, "args": args}
    if session:
        message["session"] = session
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def encode_result(request_id: int | str | None, result: dict[str, Any]) -> bytes:
    return json.dumps({"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "result": result},
                      separators=(",", ":")).encode() + b"\n"


def error_code(error: AegisError) -> str:
    name = type(error).__name__.removesuffix("Error") or "Aegis"
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in name).lstrip("_")


def encode_error(request_id: int | str | None, error: AegisError) -> bytes:
    body = {"code": error_code(error), "message": str(error), "exit": error.exit_code}
    return json.dumps({"v": PROTOCOL_VERSION, "id": request_id, "ok": False, "error": body},
                      separators=(",", ":")).encode() + b"\n"


def error_from_wire(body: Any) -> AegisError:
    """The client side: rebuild the broker's error as the same exception class."""
    if not isinstance(body, dict):
        return AegisError("the broker sent an unreadable error")
    code = str(body.get("code", ""))
    class_name = "".join(part.capitalize() for part in code.split("_")) + "Error"
    cls = getattr(core_errors, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, AegisError)):
        cls = AegisError
    return cls(str(body.get("message", "the broker refused the request"))[:MAX_TEXT])
