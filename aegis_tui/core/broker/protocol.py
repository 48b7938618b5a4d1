"""What the broker accepts: every request is checked here, before any logic sees it:
the version, the frame size, the operation name, and each argument's type and length.
The encoding itself is in ``wire``. Secret values only ever travel broker → client
(base64 in ``value_b64``), never in an error.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from aegis_tui.core.broker.wire import MAX_FRAME_BYTES, MAX_TEXT, PROTOCOL_VERSION
from aegis_tui.core.errors import ProtocolError

_STR, _INT, _BOOL, _STRS, _NUM, _OPT_INT, _OPT_NUM, _COUNTS = (
    "str", "int", "bool", "strs", "num", "int?", "num?", "counts")

# op -> {argument: (type, required)}
OPERATIONS: dict[str, dict[str, tuple[str, bool]]] = {
    "hello": {},
    "list": {"context": (_STR, False), "service": (_STR, False), "status": (_STR, False), "kind": (_STR, False)},
    "get": {"ref": (_STR, True), "scopes": (_STRS, False), "reason": (_STR, False), "duration": (_INT, False),
            "via": (_STR, False)},
    "run.report": {"command": (_STR, True), "credentials": (_STRS, True), "duration": (_NUM, True),
                   "exit_code": (_OPT_INT, False), "signal": (_OPT_INT, False), "masked": (_COUNTS, False)},
    "mask": {},
    "session.start": {"context": (_STR, True), "ttl": (_INT, True), "label": (_STR, False),
                      "bind_pid": (_INT, False)},
    "session.end": {"id": (_STR, True)},
    "session.list": {},
    "grants.list": {"all": (_BOOL, False)},
    "grants.revoke": {"id": (_STR, True), "reason": (_STR, False)},
    "git.get": {"protocol": (_STR, True), "host": (_STR, True), "path": (_STR, False), "username": (_STR, False),
                "reason": (_STR, False)},
    "git.erase": {"protocol": (_STR, True), "host": (_STR, True), "path": (_STR, False),
                  "username": (_STR, False)},
    # An app attaching to a headless broker to answer approvals (see server._approver).
    "approvals.attach": {},
    "approvals.prove": {"proof": (_STR, True)},
    "approvals.decide": {"id": (_INT, True), "allow": (_BOOL, True), "uses": (_OPT_INT, False),
                         "ttl_seconds": (_OPT_NUM, False), "for_session": (_BOOL, False), "scopes": (_STRS, False)},
}


class Request(NamedTuple):
    id: int | str
    op: str
    session: str | None
    args: dict[str, Any]


def _check(kind: str, value: Any) -> bool:
    if kind == _STR:
        return isinstance(value, str) and len(value) <= MAX_TEXT
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool) and -2**62 < value < 2**62
    if kind == _OPT_INT:
        return value is None or _check(_INT, value)
    if kind == _NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 10**9
    if kind == _OPT_NUM:
        return value is None or _check(_NUM, value)
    if kind == _BOOL:
        return isinstance(value, bool)
    if kind == _STRS:
        return isinstance(value, list) and len(value) <= 64 and all(_check(_STR, item) for item in value)
    if kind == _COUNTS:
        return isinstance(value, dict) and len(value) <= 4096 and all(
            isinstance(k, str) and len(k) <= 256 and _check(_INT, v) for k, v in value.items())
    raise AssertionError(kind)


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
    op = message.get("op")
    if not isinstance(op, str) or op not in OPERATIONS:
        raise ProtocolError(f"unknown operation {str(op)[:40]!r}")
    session = message.get("session")
    if session is not None and not (isinstance(session, str) and len(session) <= 64):
        raise ProtocolError("session must be a session id string")
    args = message.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError("args must be a JSON object")
    schema = OPERATIONS[op]
    for name in args:
        if name not in schema:
            raise ProtocolError(f"{op}: unknown argument {str(name)[:40]!r}")
    for name, (kind, required) in schema.items():
        if name not in args:
            if required:
                raise ProtocolError(f"{op}: missing argument {name!r}")
        elif not _check(kind, args[name]):
            raise ProtocolError(f"{op}: argument {name!r} has the wrong type or is too long")
    return Request(request_id, op, session, args)


def request_id_of(line: bytes) -> int | str | None:
    """Best effort: the id of a request that failed validation, to echo it back."""
    try:
        found = json.loads(line).get("id")
    except (ValueError, UnicodeDecodeError, AttributeError, RecursionError):
        return None
    return found if isinstance(found, (int, str)) and not isinstance(found, bool) and len(str(found)) <= 64 else None


