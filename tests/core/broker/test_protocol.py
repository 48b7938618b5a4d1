"""The broker's wire format: every malformed request is a ``ProtocolError`` with a
one-line reason (and nothing else ever escapes ``decode_request``, whatever bytes
arrive), valid requests round-trip, and errors cross the wire as the same classes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aegis_tui.core import errors as core_errors
from aegis_tui.core.broker.protocol import Request, decode_request, request_id_of
from aegis_tui.core.operations.registry import find as _find_operation, OPERATIONS as _DECLARED

_find_operation("list")  # loads every handler module
OPERATIONS = {name: op.schema for name, op in _DECLARED.items()}
from aegis_tui.core.broker.wire import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    encode_error,
    encode_request,
    encode_result,
    error_code,
    error_from_wire,
)
from aegis_tui.core.errors import AegisError, ProtocolError, UsageError


def frame(message: Any) -> bytes:
    return json.dumps(message).encode() + b"\n"


def request(op: str = "hello", args: Any = None, **fields: Any) -> bytes:
    message: dict[str, Any] = {"v": 1, "id": 1, "op": op}
    if args is not None:
        message["args"] = args
    message.update(fields)
    return frame({key: value for key, value in message.items() if value is not _ABSENT})


_ABSENT = object()


def refused(line: bytes) -> str:
    with pytest.raises(ProtocolError) as caught:
        decode_request(line)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 200  # one clear line, never an echo of the whole input
    return message


# -- accepted ---------------------------------------------------------------------------------------------------
def test_a_minimal_valid_request_decodes() -> None:
    assert decode_request(b'{"v":1,"id":7,"op":"hello"}\n') == Request(7, "hello", None, {})


def test_a_full_valid_request_decodes_with_its_session_and_args() -> None:
    line = request("get", {"ref": "acme/api", "scopes": ["repo:read"], "reason": "tests", "duration": 60,
                           "via": "curl"}, id="req-1", session="as_0123456789abcdef")
    assert decode_request(line) == Request("req-1", "get", "as_0123456789abcdef",
                                           {"ref": "acme/api", "scopes": ["repo:read"], "reason": "tests",
                                            "duration": 60, "via": "curl"})


def test_a_protocol_error_is_a_usage_error() -> None:
    assert issubclass(ProtocolError, UsageError) and ProtocolError("x").exit_code == 2


# -- refused, each with its reason ----------------------------------------------------------------------------------
@pytest.mark.parametrize("line", [b"{not json}\n", b"\n", b"", b"\xff\xfe\xfd\n", b'{"v":1,"id":1,\n', b"nul\x00l\n",
                                  b"{'v': 1}\n"])
def test_invalid_json_is_refused_as_such(line: bytes) -> None:
    assert refused(line) == "request is not valid JSON"


@pytest.mark.parametrize("depth", [1_000, 30_000, MAX_FRAME_BYTES // 2 - 2])
def test_deeply_nested_json_is_refused_as_invalid_not_a_crash(depth: int) -> None:
    # json's decoder recurses once per level: past the interpreter's limit it raises RecursionError
    assert refused(b"[" * depth + b"]" * depth) in {"request is not valid JSON", "request must be a JSON object"}
    nested_arg = b'{"v":1,"id":1,"op":"get","args":{"ref":' + b"[" * depth + b"]" * depth + b"}}"
    if len(nested_arg) <= MAX_FRAME_BYTES:
        refused(nested_arg)


def test_request_id_of_survives_deep_nesting() -> None:
    assert request_id_of(b"[" * 30_000) is None


@pytest.mark.parametrize("line", [b"[1,2]\n", b"42\n", b'"hello"\n', b"null\n", b"true\n", b"[]\n"])
def test_a_json_value_that_is_not_an_object_is_refused(line: bytes) -> None:
    assert refused(line) == "request must be a JSON object"


@pytest.mark.parametrize(("version", "shown"), [(_ABSENT, "None"), (2, "2"), (0, "0"), ("1", "'1'"), (None, "None"),
                                                ([1], "[1]"), (True, "True"), (1.0, "1.0")])
def test_a_missing_or_wrong_protocol_version_is_refused(version: Any, shown: str) -> None:
    message = refused(request(v=version))
    assert message == f"unsupported protocol version {shown}; this broker speaks {PROTOCOL_VERSION}"


@pytest.mark.parametrize("request_id", [_ABSENT, None, True, False, 1.5, [], {}, "x" * 65, 10**65])
def test_a_bad_request_id_is_refused(request_id: Any) -> None:
    assert refused(request(id=request_id)) == "request id must be a number or a short string"


@pytest.mark.parametrize("request_id", [0, -1, 2**53, "", "abc", "x" * 64, "é"])
def test_ids_that_are_numbers_or_short_strings_are_accepted(request_id: Any) -> None:
    assert decode_request(request(id=request_id)).id == request_id


@pytest.mark.parametrize(("op", "shown"), [(_ABSENT, "None"), ("delete", "delete"), ("GET", "GET"), (5, "5"),
                                           (None, "None"), (["get"], "['get']"), ("get ", "get "),
                                           ("__init__", "__init__")])
def test_an_unknown_operation_is_refused_naming_it(op: Any, shown: str) -> None:
    assert refused(request(op=op)) == f"unknown operation {shown!r}"


def test_an_unknown_operations_name_is_cut_short_in_the_message() -> None:
    message = refused(request(op="x" * 5000))
    assert message == f"unknown operation {'x' * 40!r}"


@pytest.mark.parametrize("session", [5, True, [], {}, "s" * 65])
def test_a_session_that_is_not_a_short_string_is_refused(session: Any) -> None:
    assert refused(request(session=session)) == "session must be a session id string"


@pytest.mark.parametrize("args", [[], "ref", 5, True, None])
def test_args_that_are_not_an_object_are_refused(args: Any) -> None:
    line = frame({"v": 1, "id": 1, "op": "get", "args": args})
    assert refused(line) == "args must be a JSON object"


@pytest.mark.parametrize(("op", "args", "name"), [
    ("get", {"ref": "a", "value": "x"}, "value"),
    ("hello", {"x": 1}, "x"),
    ("list", {"name": "a"}, "name"),
    ("session.start", {"context": "a", "ttl": 1, "bind": 1}, "bind"),
    ("get", {"ref": "a", "y" * 500: 1}, "y" * 40),
])
def test_an_unknown_argument_is_refused_naming_it(op: str, args: dict[str, Any], name: str) -> None:
    assert refused(request(op, args)) == f"{op}: unknown argument {name!r}"


@pytest.mark.parametrize(("op", "args", "name"), [
    ("get", {}, "ref"),
    ("get", {"scopes": []}, "ref"),
    ("run.report", {"command": "ls", "credentials": []}, "duration"),
    ("session.start", {"context": "acme"}, "ttl"),
    ("session.end", {}, "id"),
    ("git.get", {"protocol": "https"}, "host"),
])
def test_a_missing_required_argument_is_refused_naming_it(op: str, args: dict[str, Any], name: str) -> None:
    assert refused(request(op, args)) == f"{op}: missing argument {name!r}"


@pytest.mark.parametrize(("op", "args", "name"), [
    ("get", {"ref": 5}, "ref"),
    ("get", {"ref": None}, "ref"),
    ("get", {"ref": ["a"]}, "ref"),
    ("get", {"ref": "a", "scopes": "repo:read"}, "scopes"),
    ("get", {"ref": "a", "scopes": [1]}, "scopes"),
    ("get", {"ref": "a", "scopes": [None]}, "scopes"),
    ("get", {"ref": "a", "duration": "60"}, "duration"),
    ("get", {"ref": "a", "duration": True}, "duration"),
    ("get", {"ref": "a", "duration": 1.5}, "duration"),
    ("get", {"ref": "a", "duration": 2**62}, "duration"),
    ("grants.list", {"all": "yes"}, "all"),
    ("grants.list", {"all": 1}, "all"),
    ("session.start", {"context": "a", "ttl": "3600"}, "ttl"),
    ("run.report", {"command": "ls", "credentials": [], "duration": -1}, "duration"),
    ("run.report", {"command": "ls", "credentials": [], "duration": 10**9}, "duration"),
    ("run.report", {"command": "ls", "credentials": [], "duration": "1"}, "duration"),
    ("run.report", {"command": "ls", "credentials": [], "duration": False}, "duration"),
    ("run.report", {"command": "ls", "credentials": [], "duration": 1, "exit_code": "0"}, "exit_code"),
    ("run.report", {"command": "ls", "credentials": [], "duration": 1, "signal": 1.0}, "signal"),
    ("run.report", {"command": "ls", "credentials": [], "duration": 1, "masked": []}, "masked"),
    ("run.report", {"command": "ls", "credentials": [], "duration": 1, "masked": {"a": "1"}}, "masked"),
    ("run.report", {"command": "ls", "credentials": [], "duration": 1, "masked": {"a": True}}, "masked"),
    ("run.report", {"command": "ls", "credentials": "api", "duration": 1}, "credentials"),
])
def test_an_argument_of_the_wrong_type_is_refused_naming_it(op: str, args: dict[str, Any], name: str) -> None:
    assert refused(request(op, args)) == f"{op}: argument {name!r} has the wrong type or is too long"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_a_non_finite_number_is_refused_as_a_duration(literal: bytes) -> None:
    line = b'{"v":1,"id":1,"op":"run.report","args":{"command":"ls","credentials":[],"duration":' + literal + b"}}"
    assert refused(line) == "run.report: argument 'duration' has the wrong type or is too long"


@pytest.mark.parametrize(("op", "args", "name"), [
    ("get", {"ref": "x" * 4097}, "ref"),
    ("get", {"ref": "a", "reason": "r" * 4097}, "reason"),
    ("get", {"ref": "a", "scopes": ["s"] * 65}, "scopes"),
    ("get", {"ref": "a", "scopes": ["s" * 4097]}, "scopes"),
    ("run.report", {"command": "ls", "credentials": [], "duration": 1, "masked": {"k" * 257: 1}}, "masked"),
])
def test_too_long_strings_and_lists_are_refused(op: str, args: dict[str, Any], name: str) -> None:
    assert refused(request(op, args)) == f"{op}: argument {name!r} has the wrong type or is too long"


def test_the_longest_allowed_strings_and_lists_are_accepted() -> None:
    args = {"ref": "x" * 4096, "reason": "é" * 4096, "scopes": ["s"] * 64}
    assert decode_request(request("get", args)).args == args


def test_a_frame_over_the_size_limit_is_refused_before_parsing() -> None:
    line = b'{"v":1,"id":1,"op":"hello","pad":"' + b"x" * MAX_FRAME_BYTES + b'"}\n'
    assert refused(line) == f"request larger than {MAX_FRAME_BYTES} bytes"
    assert refused(b"[" * (MAX_FRAME_BYTES + 1)) == f"request larger than {MAX_FRAME_BYTES} bytes"


def test_a_frame_exactly_at_the_size_limit_is_parsed() -> None:
    head = b'{"v":1,"id":1,"op":"hello","pad":"'
    line = head + b"x" * (MAX_FRAME_BYTES - len(head) - 3) + b'"}\n'
    assert len(line) == MAX_FRAME_BYTES
    assert decode_request(line).op == "hello"  # unknown top-level fields are ignored; only args are strict


# -- request ids of refused requests ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("line", "expected"), [
    (b'{"id": 9, "op": "nope"}', 9), (b'{"id": "abc"}', "abc"), (b'{"id": true}', None), (b'{"id": 1.5}', None),
    (b'{"id": "' + b"x" * 65 + b'"}', None), (b"[1]", None), (b"not json", None), (b"\xff", None), (b"7", None),
])
def test_request_id_of_echoes_only_a_valid_id(line: bytes, expected: Any) -> None:
    assert request_id_of(line) == expected


# -- hypothesis: nothing but ProtocolError ever escapes -----------------------------------------------------------------
def decodes_or_refuses(line: bytes) -> None:
    try:
        decode_request(line)
    except ProtocolError:
        pass
    request_id_of(line)  # must not raise either


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_only_ever_raise_protocol_error(data: bytes) -> None:
    decodes_or_refuses(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="[]{}\",:0123456789.eE+-truefalsn \\u", max_size=400))
def test_json_looking_text_only_ever_raises_protocol_error(text: str) -> None:
    decodes_or_refuses(text.encode())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
arg_names = sorted({name for schema in OPERATIONS.values() for name in schema})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_values_only_ever_raise_protocol_error(value: Any) -> None:
    decodes_or_refuses(json.dumps(value).encode())


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries(
    {"v": st.just(1) | json_values, "id": st.integers() | st.text(max_size=70) | json_values,
     "op": st.sampled_from(sorted(OPERATIONS)) | json_values},
    optional={"session": st.none() | st.text(max_size=70) | json_values,
              "args": st.dictionaries(st.sampled_from(arg_names) | st.text(max_size=8), json_values, max_size=6)
              | json_values},
))
def test_request_shaped_json_only_ever_raises_protocol_error(message: dict[str, Any]) -> None:
    decodes_or_refuses(json.dumps(message).encode())


_TEXT = st.text(max_size=40)
_VALUES = {
    "str": _TEXT,
    "int": st.integers(min_value=-(2**62) + 1, max_value=2**62 - 1),
    "int?": st.none() | st.integers(min_value=-(2**62) + 1, max_value=2**62 - 1),
    "bool": st.booleans(),
    "strs": st.lists(_TEXT, max_size=5),
    "num": st.integers(min_value=0, max_value=10**9 - 1)
    | st.floats(min_value=0, max_value=10**9, exclude_max=True, allow_nan=False),
    "num?": st.none() | st.integers(min_value=0, max_value=10**9 - 1)
    | st.floats(min_value=0, max_value=10**9, exclude_max=True, allow_nan=False),
    "counts": st.dictionaries(st.text(max_size=20), st.integers(min_value=-(2**62) + 1, max_value=2**62 - 1),
                              max_size=5),
    "texts": st.dictionaries(st.text(max_size=20), _TEXT, max_size=5),
    "obj": st.dictionaries(st.text(max_size=8), st.integers(min_value=-(2**62) + 1, max_value=2**62 - 1) | _TEXT,
                           max_size=5),
}


@st.composite
def valid_requests(draw: st.DrawFn) -> tuple[int | str, str, dict[str, Any], str | None]:
    op = draw(st.sampled_from(sorted(OPERATIONS)))
    args: dict[str, Any] = {}
    for name, (kind, required) in OPERATIONS[op].items():
        if required or draw(st.booleans()):
            args[name] = draw(_VALUES[kind])
    request_id = draw(st.integers(min_value=-(10**18), max_value=10**18) | st.text(max_size=64))
    session = draw(st.none() | st.text(min_size=1, max_size=64))
    return request_id, op, args, session


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_requests())
def test_valid_requests_round_trip_through_encode_request(generated: tuple[Any, str, dict[str, Any], Any]) -> None:
    request_id, op, args, session = generated
    line = encode_request(request_id, op, args, session)
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # one frame: a newline inside a value is escaped
    assert decode_request(line) == Request(request_id, op, session, args)


def test_an_empty_session_is_not_sent() -> None:
    assert decode_request(encode_request(1, "hello", {}, "")).session is None


# -- errors on the wire -----------------------------------------------------------------------------------------------
ERROR_CLASSES = [core_errors.AegisError, core_errors.UsageError, core_errors.UnlockError, core_errors.NotFoundError,
                 core_errors.VaultFileError, core_errors.IntegrityError, core_errors.ConflictError,
                 core_errors.RefusedError, core_errors.DeniedError, ProtocolError]


def test_the_generator_knows_every_argument_type() -> None:
    assert {kind for schema in OPERATIONS.values() for kind, _ in schema.values()} <= set(_VALUES)


def test_every_core_error_class_is_covered() -> None:
    found = {obj for obj in vars(core_errors).values() if isinstance(obj, type) and issubclass(obj, AegisError)}
    assert found <= set(ERROR_CLASSES)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_error_from_wire_rebuilds_the_same_class_and_message(cls: type[AegisError]) -> None:
    line = encode_error(12, cls("no credential matches 'x'; see: aegis-vault list"))
    reply = json.loads(line)
    assert reply["ok"] is False and reply["id"] == 12 and reply["v"] == PROTOCOL_VERSION
    assert reply["error"]["exit"] == cls.exit_code
    rebuilt = error_from_wire(reply["error"])
    assert type(rebuilt) is cls
    assert str(rebuilt) == "no credential matches 'x'; see: aegis-vault list"
    assert rebuilt.exit_code == cls.exit_code


@pytest.mark.parametrize(("cls", "code"), [(core_errors.NotFoundError, "not_found"),
                                           (core_errors.VaultFileError, "vault_file"), (ProtocolError, "protocol"),
                                           (core_errors.DeniedError, "denied"), (core_errors.AegisError, "aegis")])
def test_error_codes_are_snake_case_names(cls: type[AegisError], code: str) -> None:
    assert error_code(cls("x")) == code


@pytest.mark.parametrize("body", [None, "not_found", 5, [], {"code": "bogus"}, {"code": "__class__"},
                                  {"code": "secret"}, {"code": ""}, {"code": "not_found_error"}, {"code": None},
                                  {"code": "base_exception"}, {"code": "exception"}])
def test_an_unknown_or_unreadable_error_becomes_a_plain_aegis_error(body: Any) -> None:
    rebuilt = error_from_wire(body)
    assert type(rebuilt) is AegisError
    assert str(rebuilt)


def test_an_error_without_a_message_gets_a_default_and_a_huge_one_is_cut() -> None:
    assert str(error_from_wire({"code": "denied"})) == "the broker refused the request"
    assert len(str(error_from_wire({"code": "denied", "message": "m" * 100_000}))) == 4096


def test_encode_result_is_one_json_line() -> None:
    line = encode_result("a", {"text": "two\nlines"})
    assert line.count(b"\n") == 1
    assert json.loads(line) == {"v": 1, "id": "a", "ok": True, "result": {"text": "two\nlines"}}
