"""Every operation an agent-facing transport offers, declared once: its name, the
arguments it takes, the authority it needs and the function that performs it.

The broker (``core/broker``) and the in-process path of a command that unlocked the
vault itself (``core/access``) both look operations up here, so their rules
cannot drift apart, and a reader (or a type checker) can follow a name to its handler.
Operations with no handler are carried by the transport itself (the masking stream,
the owner channel's handshake and decisions); they are declared here so that sending
one where it does not belong is a protocol error, never an attribute lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from aegis_tui.core.errors import ProtocolError

if TYPE_CHECKING:
    from aegis_tui.core.operations.caller import Caller, Host

MAX_TEXT = 4096  # characters in one text argument
STR, INT, BOOL, STRS, NUM, OPT_INT, OPT_NUM, COUNTS = "str", "int", "bool", "strs", "num", "int?", "num?", "counts"
OBJ, TEXTS = "obj", "texts"  # a JSON object (its handler checks the inside); names -> texts
MAX_OBJECT_KEYS = 4096
MAX_TEXT_VALUE = 1 << 16  # one value of a TEXTS object (an environment variable may be long)

Schema = dict[str, tuple[str, bool]]  # argument -> (type, required)
Handler = Callable[["Host", dict[str, Any], "Caller"], Awaitable[dict[str, Any]]]


class Authority(StrEnum):
    """Who may ask. ``CALLER``: anyone the broker serves (an agent inside a session sees
    and acts only within it; the human's shell, outside any session, as the rules say).
    ``OWNER``: proved it holds the vault key (it unlocked the vault in-process, or over
    the authenticated owner channel). ``APPROVER``: the app answering approvals."""

    CALLER = "caller"
    OWNER = "owner"
    APPROVER = "approver"


class Operation(NamedTuple):
    name: str
    schema: Schema
    authority: Authority
    handler: Handler | None  # None: carried by the transport (see the module docstring)


OPERATIONS: dict[str, Operation] = {}


def operation(name: str, schema: Schema, authority: Authority = Authority.CALLER) -> Callable[[Handler], Handler]:
    """Declare ``name`` as performed by the decorated coroutine."""

    def register(handler: Handler) -> Handler:
        _declare(Operation(name, schema, authority, handler))
        return handler

    return register


def transport_operation(name: str, schema: Schema, authority: Authority) -> None:
    _declare(Operation(name, schema, authority, None))


def _declare(op: Operation) -> None:
    if op.name in OPERATIONS:
        raise AssertionError(f"operation {op.name} declared twice")
    OPERATIONS[op.name] = op


def _text(value: Any, limit: int = MAX_TEXT) -> bool:
    """A string the JSON decoder could have produced that is still not text: a lone
    surrogate (``"\\ud800"``) cannot be encoded, logged or shown, so it is refused here."""
    if not isinstance(value, str) or len(value) > limit:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_type(kind: str, value: Any) -> bool:
    if kind == STR:
        return _text(value)
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool) and -2**62 < value < 2**62
    if kind == OPT_INT:
        return value is None or check_type(INT, value)
    if kind == NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 10**9
    if kind == OPT_NUM:
        return value is None or check_type(NUM, value)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == STRS:
        return isinstance(value, list) and len(value) <= 64 and all(check_type(STR, item) for item in value)
    if kind == OBJ:
        return isinstance(value, dict) and len(value) <= MAX_OBJECT_KEYS
    if kind == TEXTS:
        return isinstance(value, dict) and len(value) <= MAX_OBJECT_KEYS and all(
            _text(k, 256) and _text(v, MAX_TEXT_VALUE) for k, v in value.items())
    if kind == COUNTS:
        return isinstance(value, dict) and len(value) <= 4096 and all(
            _text(k, 256) and check_type(INT, v) for k, v in value.items())
    raise AssertionError(kind)


def is_text(value: Any, limit: int = MAX_TEXT) -> bool:
    return _text(value, limit)


def validate_args(op: Operation, args: dict[str, Any]) -> None:
    for name in args:
        if name not in op.schema:
            raise ProtocolError(f"{op.name}: unknown argument {str(name)[:40]!r}")
    for name, (kind, required) in op.schema.items():
        if name not in args:
            if required:
                raise ProtocolError(f"{op.name}: missing argument {name!r}")
        elif not check_type(kind, args[name]):
            raise ProtocolError(f"{op.name}: argument {name!r} has the wrong type or is too long")


def find(name: str) -> Operation:
    """The declared operation; a ``ProtocolError`` for anything else."""
    _load_handlers()
    op = OPERATIONS.get(name)
    if op is None:
        raise ProtocolError(f"unknown operation {name[:40]!r}")
    return op


def _load_handlers() -> None:
    """The handler modules register themselves on import; importing them here (once)
    means a transport only needs this module."""
    if "list" not in OPERATIONS:
        from aegis_tui.core.operations import grants, reports, sandbox, sessions, transport, use  # noqa: F401
