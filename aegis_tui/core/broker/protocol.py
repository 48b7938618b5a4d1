"""What the broker accepts: every request is checked here, before any logic sees it:
the version, the frame size, the operation name (declared in ``core/operations``), and
each argument's type and length; text must be text (no lone surrogates).
The encoding itself is in ``wire``. Secret values only ever travel broker → client
(base64 in ``value_b64``), never in an error.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from aegis_tui.core.broker.wire import MAX_FRAME_BYTES, PROTOCOL_VERSION
from aegis_tui.core.errors import ProtocolError
from aegis_tui.core.operations.registry import find, is_text, validate_args

class Request(NamedTuple):
    id: int | str
    op: str
    session: str | None
    args: dict[str, Any]


def decode_request(line: bytes) -> Request:
    """One line from a client, validated; ``ProtocolError`` with a one-line reason."""
    if len(line) > MAX_FRAME_BYTES:
        raise ProtocolError(f"request larger than {MAX_FRAME_BYTES} bytes")
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting deeper than json can parse
        raise ProtocolError("request is not valid JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("request must be a JSON object")
    if type(message.get("v")) is not int or message.get("v") != PROTOCOL_VERSION:  # not true, not 1.0
        raise ProtocolError(f"unsupported protocol version {message.get('v')!r}; this broker speaks {PROTOCOL_VERSION}")
    request_id = message.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, (int, str)) or len(str(request_id)) > 64:
        raise ProtocolError("request id must be a number or a short string")
    if isinstance(request_id, str) and not is_text(request_id, 64):
        raise ProtocolError("request id must be a number or a short string")
    op = message.get("op")
    if not is_text(op, 64):
        raise ProtocolError(f"unknown operation {str(op)[:40]!r}")
    declared = find(op)
    session = message.get("session")
    if session is not None and not is_text(session, 64):
        raise ProtocolError("session must be a session id string")
    args = message.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError("args must be a JSON object")
    validate_args(declared, args)
    return Request(request_id, op, session, args)


def request_id_of(line: bytes) -> int | str | None:
    """Best effort: the id of a request that failed validation, to echo it back."""
    try:
        found = json.loads(line).get("id")
    except (ValueError, UnicodeDecodeError, AttributeError, RecursionError):
        return None
    return found if isinstance(found, (int, str)) and not isinstance(found, bool) and len(str(found)) <= 64 else None


