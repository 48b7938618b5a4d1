"""The broker on a real Unix socket, inside the test's event loop, with real clients.

Bad input gets a clear error and the broker keeps serving (the same connection where
the framing allows it); idle and vanished clients are let go; 200 clients at once are
all answered and audited; another user is refused and audited; revoked, expired and
out-of-context credentials are refused exactly as documented; approvals allow, deny
and time out; and the masking stream never hands a value back.

Each test gets its own short ``XDG_RUNTIME_DIR`` (a socket path must stay under 108
bytes), so parallel runs never share a socket.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aegis_tui.core.agents.grants import Grants
from aegis_tui.core.agents.sessions import Sessions
from aegis_tui.core.approvals import Decision, PendingRequest
from aegis_tui.core.broker.client import BrokerClient
from aegis_tui.core.broker.server import DATA, END, FLUSH, HITS, STREAM_HEADER, BrokerServer
from aegis_tui.core.broker.service import APP, HEADLESS, BrokerService
from aegis_tui.core.broker.wire import MAX_FRAME_BYTES, encode_request
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import ConflictError
from aegis_tui.core.models import Status
from aegis_tui.core.secret import Secret

WAIT = 60.0  # generous: a loaded 2-core machine runs two of these files at once
API_VALUE = b"sk_live_4eC39HqLyjWDarjtT1zdp7dc"
DB_VALUE = b"postgres://app:Zx81-very-secret@db.internal/app"
REVEAL = ("inject", "reveal")  # ``get`` returns the raw value: a grant must say it may


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private, short runtime folder: the broker's socket goes in ``aegis-vault/`` below it."""
    folder = Path(tempfile.mkdtemp(prefix="aeg-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def stock(made) -> Credentials:  # type: ignore[no-untyped-def]
    creds = Credentials(made.vault)
    creds.add("api", Secret(API_VALUE), service="stripe", context="acme/dev")
    creds.add("prod-db", Secret(DB_VALUE), service="postgres", context="acme/prod")
    return creds


Starter = Callable[..., Awaitable[BrokerServer]]


@pytest.fixture
async def start_broker(made, runtime: Path) -> AsyncIterator[Starter]:  # type: ignore[no-untyped-def]
    servers: list[BrokerServer] = []

    async def start(*, mode: str = APP, approval_timeout: float = 600.0, idle_timeout: float = 600.0,
                    **limits: Any) -> BrokerServer:
        service = BrokerService(made.vault, mode=mode, approval_timeout=approval_timeout)
        server = BrokerServer(service, str(made.path), idle_timeout=idle_timeout, **limits)
        await server.start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            await server.close()


class Conn:
    """One raw client connection speaking JSON lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._ids = 0

    @classmethod
    async def open(cls, server: BrokerServer) -> Conn:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(server.socket_path, limit=2**22), WAIT)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> None:
        self.writer.write(raw)
        await self.writer.drain()

    async def reply(self) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), WAIT)
        assert line.endswith(b"\n"), "the broker closed the connection instead of answering"
        return json.loads(line)  # type: ignore[no-any-return]

    async def request(self, op: str, args: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._ids += 1
        await self.send(encode_request(self._ids, op, args or {}, session))
        answer = await self.reply()
        assert answer["id"] == self._ids
        return answer

    async def closed_by_peer(self) -> bool:
        """True once the broker has closed this connection (EOF, or a reset after unread input)."""
        try:
            rest = await asyncio.wait_for(self.reader.read(), WAIT)
        except ConnectionResetError:
            return True
        return rest == b""

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, BrokenPipeError):
            pass


async def call(server: BrokerServer, op: str, args: dict[str, Any] | None = None,
               session: str | None = None) -> dict[str, Any]:
    conn = await Conn.open(server)
    try:
        return await conn.request(op, args, session)
    finally:
        await conn.close()


def error_of(answer: dict[str, Any]) -> tuple[str, str]:
    assert answer["ok"] is False
    return answer["error"]["code"], answer["error"]["message"]


def hands_out(answer: dict[str, Any], expected: bytes) -> bool:
    """Whether the answer carries exactly ``expected``. Tests assign this to a name and
    assert the name, so a failure shows ``False``, never a value."""
    return answer.get("ok") is True and base64.b64decode(answer["result"]["value_b64"]) == expected


def audit_ops(vault) -> list[str]:  # type: ignore[no-untyped-def]
    return [entry.operation for entry in vault.audit.entries()]


class PendingWatch:
    """Wakes the test when the approval queue changes (no polling, no sleeps)."""

    def __init__(self, server: BrokerServer) -> None:
        self.queue = server.service.approvals
        self.changed = asyncio.Event()
        self.queue.subscribe(self.changed.set)

    async def until(self, predicate: Callable[[list[PendingRequest]], bool]) -> list[PendingRequest]:
        async def wait() -> list[PendingRequest]:
            while not predicate(self.queue.pending()):
                self.changed.clear()
                if predicate(self.queue.pending()):
                    break
                await self.changed.wait()
            return self.queue.pending()

        return await asyncio.wait_for(wait(), WAIT)

    async def one(self) -> PendingRequest:
        return (await self.until(lambda pending: len(pending) == 1))[0]


# -- bad input ------------------------------------------------------------------------------------------------------
async def test_malformed_json_is_answered_and_the_same_connection_keeps_serving(start_broker, stock) -> None:
    server = await start_broker()
    conn = await Conn.open(server)
    try:
        for junk in (b"{this is not json\n", b"\xff\xfe\x00\x01\n", b"\n", b"[" * 40_000 + b"\n"):
            await conn.send(junk)
            answer = await conn.reply()
            assert error_of(answer) == ("protocol", "request is not valid JSON")
            assert answer["error"]["exit"] == 2 and answer["id"] is None
        hello = await conn.request("hello")
        assert hello["ok"] and hello["result"]["protocol"] == 1
    finally:
        await conn.close()


async def test_a_json_value_that_is_not_a_request_is_answered_on_the_same_connection(start_broker, stock) -> None:
    server = await start_broker()
    conn = await Conn.open(server)
    try:
        await conn.send(b"[1, 2, 3]\n")
        assert error_of(await conn.reply()) == ("protocol", "request must be a JSON object")
        await conn.send(b'{"v": 2, "id": 5, "op": "hello"}\n')
        answer = await conn.reply()
        assert answer["id"] == 5
        assert error_of(answer) == ("protocol", "unsupported protocol version 2; this broker speaks 1")
        assert (await conn.request("list"))["ok"]
    finally:
        await conn.close()


async def test_an_unknown_operation_is_answered_with_its_id_and_the_connection_keeps_serving(start_broker, stock) -> None:
    server = await start_broker()
    conn = await Conn.open(server)
    try:
        await conn.send(b'{"v": 1, "id": "x-9", "op": "vault.dump", "args": {}}\n')
        answer = await conn.reply()
        assert answer["id"] == "x-9"
        assert error_of(answer) == ("protocol", "unknown operation 'vault.dump'")
        assert (await conn.request("hello"))["ok"]
    finally:
        await conn.close()


@pytest.mark.parametrize(("args", "message"), [
    ({"ref": 42}, "get: argument 'ref' has the wrong type or is too long"),
    ({"ref": "api", "scopes": "all"}, "get: argument 'scopes' has the wrong type or is too long"),
    ({"ref": "api", "duration": "forever"}, "get: argument 'duration' has the wrong type or is too long"),
    ({"ref": "x" * 5000}, "get: argument 'ref' has the wrong type or is too long"),
    ({}, "get: missing argument 'ref'"),
    ({"ref": "api", "value": "please"}, "get: unknown argument 'value'"),
])
async def test_wrong_argument_types_are_answered_and_nothing_is_handed_out(start_broker, stock, made, args,
                                                                          message) -> None:
    server = await start_broker()
    before = audit_ops(made.vault)
    conn = await Conn.open(server)
    try:
        await conn.send(json.dumps({"v": 1, "id": 3, "op": "get", "args": args}).encode() + b"\n")
        answer = await conn.reply()
        assert answer["id"] == 3 and error_of(answer) == ("protocol", message)
        assert (await conn.request("hello"))["ok"]
    finally:
        await conn.close()
    assert server.service.approvals.pending() == []
    assert audit_ops(made.vault) == before


async def test_an_oversized_frame_is_answered_then_the_connection_is_closed_and_others_are_served(
        start_broker, stock) -> None:
    server = await start_broker()
    big = await Conn.open(server)
    other = await Conn.open(server)
    try:
        await big.send(b'{"v":1,"id":1,"op":"hello","pad":"' + b"x" * (MAX_FRAME_BYTES + 10) + b'"}\n')
        answer = await big.reply()
        assert error_of(answer) == ("protocol", f"request larger than {MAX_FRAME_BYTES} bytes")
        assert await big.closed_by_peer()
        assert (await other.request("hello"))["ok"]
        assert (await call(server, "hello"))["ok"]
    finally:
        await big.close()
        await other.close()


async def test_bad_input_on_one_connection_does_not_disturb_another(start_broker, stock) -> None:
    server = await start_broker()
    good = await Conn.open(server)
    bad = await Conn.open(server)
    try:
        assert (await good.request("list"))["ok"]
        for junk in (b"}}}\n", b'{"v":1}\n', b'{"v":1,"id":1,"op":"get","args":{"ref":[]}}\n'):
            await bad.send(junk)
            assert (await bad.reply())["ok"] is False
        listed = await good.request("list")
        assert {c["name"] for c in listed["result"]["credentials"]} == {"api", "prod-db"}
    finally:
        await good.close()
        await bad.close()


# -- idle and vanished clients --------------------------------------------------------------------------------------
async def test_a_silent_client_is_closed_after_the_idle_timeout_while_others_are_served(start_broker, stock) -> None:
    server = await start_broker(idle_timeout=1.0)
    silent = await Conn.open(server)
    try:
        assert (await call(server, "hello"))["ok"]
        assert await silent.closed_by_peer()
        assert (await call(server, "list"))["ok"]
    finally:
        await silent.close()


async def test_a_client_leaving_while_waiting_for_approval_withdraws_its_request(start_broker, stock, made) -> None:
    server = await start_broker(approval_timeout=600)
    watch = PendingWatch(server)
    leaver = await Conn.open(server)
    await leaver.send(encode_request(1, "get", {"ref": "api", "reason": "need it"}, None))
    pending = await watch.one()
    assert pending.credential.name == "api" and pending.reason == "need it"
    await leaver.close()
    assert await watch.until(lambda queue: queue == []) == []
    assert server.service.approvals.decide(pending.id, Decision(True, uses=1)) is False  # nothing left to approve
    assert Grants(made.vault).list(include_inactive=True) == []
    ops = audit_ops(made.vault)
    assert "access.request" in ops and "read" not in ops
    assert (await call(server, "hello"))["result"]["pending"] == 0


# -- many clients ---------------------------------------------------------------------------------------------------
async def test_two_hundred_concurrent_clients_are_all_answered_and_audited(start_broker, stock, made) -> None:
    for i in range(4):
        stock.add(f"svc-{i}", Secret(f"value-of-service-{i}-0123456789".encode()), context="acme/dev")
    Grants(made.vault).create(selector="tag:never", context="nowhere")  # an unrelated grant, never used
    Grants(made.vault).create(credential=stock.find("api"), rights=REVEAL)
    for i in range(4):
        Grants(made.vault).create(credential=stock.find(f"svc-{i}"), rights=REVEAL)
    server = await start_broker(max_per_peer=256)  # all 200 come from this one test process
    first_seq = made.vault.audit.tail(1)[0].seq
    names = ["api"] + [f"svc-{i}" for i in range(4)]
    expected = {"api": API_VALUE, **{f"svc-{i}": f"value-of-service-{i}-0123456789".encode() for i in range(4)}}

    async def client(number: int) -> tuple[bool, bool]:
        name = names[number % len(names)]
        conn = await Conn.open(server)
        try:
            got = await conn.request("get", {"ref": name, "reason": f"client {number}"})
            listed = await conn.request("list", {"context": "acme"})
        finally:
            await conn.close()
        right_value = got["ok"] and got["result"]["name"] == name and hands_out(got, expected[name])
        right_list = listed["ok"] and {c["name"] for c in listed["result"]["credentials"]} == set(names) | {"prod-db"}
        return right_value, right_list

    results = await asyncio.wait_for(asyncio.gather(*(client(n) for n in range(200))), 240)
    assert sum(value for value, _ in results) == 200
    assert sum(listing for _, listing in results) == 200
    reads = [e for e in made.vault.audit.entries(after_seq=first_seq) if e.operation == "read"]
    assert len(reads) == 200
    assert sorted(e.target for e in reads) == sorted(names[n % len(names)] for n in range(200))
    assert all(e.detail.get("grant") for e in reads)
    assert server.service.approvals.pending() == []
    report = made.vault.audit.verify()
    assert report.ok, report.problems
    assert report.unsigned_tail == 0


async def test_at_the_total_cap_the_longest_idle_connection_makes_room_and_busy_or_owner_ones_stay(
        start_broker, stock, made) -> None:
    from aegis_tui.core.broker.approver import RemoteApprovalQueue

    server = await start_broker(mode=HEADLESS, max_connections=4)
    approver = await RemoteApprovalQueue.attach(str(made.path), made.vault.keys.data_key, made.vault.vault_id)
    watch = PendingWatch(server)
    waiting, idle, newer = [await Conn.open(server) for _ in range(3)]
    connections = [waiting, idle, newer]
    try:
        await waiting.send(encode_request(1, "get", {"ref": "api", "reason": "deploy"}, None))
        pending = await watch.one()  # busy: it waits for a human
        assert (await idle.request("hello"))["ok"]  # the oldest idle one
        assert (await newer.request("hello"))["ok"]
        fifth = await Conn.open(server)  # over the cap of 4 (the approver counts)
        connections.append(fifth)
        assert (await fifth.request("hello"))["ok"]
        assert await idle.closed_by_peer()
        assert (await newer.request("hello"))["ok"]
        assert approver.connected
        assert approver.decide(pending.id, Decision(True, uses=1))
        served = hands_out(await waiting.reply(), API_VALUE)
        assert served
    finally:
        for conn in connections:
            await conn.close()
        await approver.close()


# -- another user ----------------------------------------------------------------------------------------------------
STRANGER = r"""
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(60)
sock.connect(sys.argv[1])
try:  # the broker answers a stranger on accept and hangs up: it may be gone before this is sent
    sock.sendall(b'{"v":1,"id":1,"op":"list","args":{}}\n')
except (BrokenPipeError, ConnectionResetError):
    pass
data = b""
while not data.endswith(b"\n"):
    try:
        chunk = sock.recv(65536)
    except ConnectionResetError:  # after the queued answer, if our request was left unread
        break
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode())
"""


async def test_a_peer_running_as_another_user_is_refused_and_audited(start_broker, stock, made, runtime) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to run a client as uid 65534 (nobody)")
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    server = await start_broker()
    # Only for this test: let another user reach the socket, as a careless setup would.
    os.chmod(runtime, 0o711)
    os.chmod(os.path.dirname(server.socket_path), 0o711)
    os.chmod(server.socket_path, 0o666)
    before = made.vault.audit.tail(1)[0].seq

    result = await asyncio.to_thread(
        subprocess.run, [python, "-I", "-c", STRANGER, server.socket_path], capture_output=True, timeout=WAIT,
        user=65534, group=65534, extra_groups=[], cwd="/", env={"PATH": "/usr/bin:/bin"},
    )

    assert result.returncode == 0, result.stderr.decode(errors="replace")
    answer = json.loads(result.stdout)
    assert error_of(answer) == ("refused", "this broker only serves the user who runs it")
    assert b"credentials" not in result.stdout and b"api" not in result.stdout
    refusals = [e for e in made.vault.audit.entries(after_seq=before) if e.operation == "broker.refused"]
    assert len(refusals) == 1
    assert refusals[0].detail["peer_uid"] == 65534 and refusals[0].detail["reason"] == "another user"
    assert refusals[0].outcome == "denied" and refusals[0].flagged
    assert (await call(server, "hello"))["ok"]  # the owner is still served


# -- refusals ---------------------------------------------------------------------------------------------------------
async def test_a_revoked_credential_is_refused_with_a_clear_message_and_audited(start_broker, stock, made) -> None:
    Grants(made.vault).create(credential=stock.find("api"), rights=REVEAL)
    stock.set_status("api", Status.REVOKED)
    server = await start_broker()
    watch = PendingWatch(server)
    answer = await call(server, "get", {"ref": "api"})
    assert error_of(answer) == ("refused", "credential 'api' is revoked; its values are no longer handed out")
    assert answer["error"]["exit"] == 8
    assert watch.queue.pending() == []  # nobody is asked to approve a revoked credential
    last = made.vault.audit.tail(1)[0]
    assert (last.operation, last.target, last.outcome) == ("access.refused", "api", "denied")
    assert "revoked" in str(last.detail["reason"])


async def test_an_expired_credential_is_refused_with_a_clear_message_and_audited(start_broker, stock, made) -> None:
    stock.edit("api", expires="2020-01-01")
    Grants(made.vault).create(credential=stock.find("api"), rights=REVEAL)
    server = await start_broker()
    answer = await call(server, "get", {"ref": "api"})
    assert error_of(answer) == ("refused", "credential 'api' expired on 2020-01-01; rotate it or ask the owner")
    last = made.vault.audit.tail(1)[0]
    assert (last.operation, last.target, last.outcome) == ("access.refused", "api", "denied")


async def test_a_request_naming_an_expired_session_is_refused(start_broker, stock, made) -> None:
    session, token = Sessions(made.vault).start("acme", 60)
    Grants(made.vault).create(credential=stock.find("api"), session_id=session.id, rights=REVEAL)
    server = await start_broker()
    served = hands_out(await call(server, "get", {"ref": "api"}, session=token), API_VALUE)
    assert served
    made.clock.advance(61)
    for op, args in (("get", {"ref": "api"}), ("list", {}), ("session.list", {})):
        answer = await call(server, op, args, session=token)
        assert error_of(answer) == ("refused", f"agent session {session.id} has expired; ask the human to start a new one")


async def test_a_request_naming_an_unknown_session_is_not_found(start_broker, stock) -> None:
    server = await start_broker()
    for unknown in ("ast_" + "A" * 43, "as_0123456789abcdef"):  # a token nobody was given; a public id
        answer = await call(server, "list", session=unknown)
        assert error_of(answer)[0] == "not_found" and answer["error"]["exit"] == 4


async def test_outside_its_sessions_context_a_credential_is_not_found_like_a_missing_one(start_broker, stock,
                                                                                          made) -> None:
    _, token = Sessions(made.vault).start("acme/dev", 3600)
    Grants(made.vault).create(credential=stock.find("prod-db"), rights=REVEAL)  # a standing grant would cover it: still hidden
    server = await start_broker()
    listed = await call(server, "list", session=token)
    assert [c["name"] for c in listed["result"]["credentials"]] == ["api"]
    hidden = await call(server, "get", {"ref": "prod-db"}, session=token)
    hidden_by_reference = await call(server, "get", {"ref": "aegis://acme/prod/prod-db"}, session=token)
    stock.destroy("prod-db")
    missing = await call(server, "get", {"ref": "prod-db"})
    missing_by_reference = await call(server, "get", {"ref": "aegis://acme/prod/prod-db"})
    assert error_of(hidden) == error_of(missing)
    assert error_of(hidden_by_reference) == error_of(missing_by_reference)
    assert error_of(hidden)[0] == "not_found"
    assert hidden["error"]["exit"] == missing["error"]["exit"] == 4


# -- approvals -------------------------------------------------------------------------------------------------------
async def test_a_reason_with_markup_and_control_characters_reaches_the_approver_literally(start_broker, stock) -> None:
    server = await start_broker()
    watch = PendingWatch(server)
    reason = "[bold red]URGENT[/] approve \x1b[2J\x1b]0;owned\x07 now\r\nok\t\x00\x7f \u202eevil\u202c"
    via = "curl \x1b[31m[link=http://x]y[/link]"
    conn = await Conn.open(server)
    try:
        await conn.send(encode_request(1, "get", {"ref": "api", "reason": reason, "via": via}, None))
        pending = await watch.one()
        for shown in (pending.reason, pending.via):
            assert "\x1b" not in shown
            assert not any(unicodedata.category(ch) == "Cc" for ch in shown)
            assert all(ch.isprintable() for ch in shown)
        assert "[bold red]URGENT[/] approve" in pending.reason  # shown as typed: markup is text, not style
        assert "␛[2J" in pending.reason
        assert "[link=http://x]y[/link]" in pending.via
        server.service.approvals.decide(pending.id, Decision.deny())
        assert error_of(await conn.reply())[0] == "denied"
    finally:
        await conn.close()


async def test_allow_once_hands_out_the_value_and_uses_up_the_grant(start_broker, stock, made) -> None:
    server = await start_broker()
    watch = PendingWatch(server)
    conn = await Conn.open(server)
    try:
        await conn.send(encode_request(1, "get", {"ref": "api", "reason": "deploy", "scopes": ["charge"]}, None))
        pending = await watch.one()
        assert (pending.credential.name, pending.scopes, pending.peer.pid) == ("api", ("charge",), os.getpid())
        assert server.service.approvals.decide(pending.id, Decision(True, uses=1)) is True
        answer = await conn.reply()
        served = hands_out(answer, API_VALUE)
        assert served
        assert answer["result"]["name"] == "api" and answer["result"]["reference"] == "aegis://acme/dev/api"
        grant = Grants(made.vault).get(answer["result"]["grant"])
        assert grant.uses_left == 0 and grant.state(made.clock()) == "used"
        assert grant.scopes == ("charge",) and grant.session_id is None
        # used up: the next request asks again
        await conn.send(encode_request(2, "get", {"ref": "api"}, None))
        again = await watch.one()
        assert again.id != pending.id
        server.service.approvals.decide(again.id, Decision.deny())
        assert error_of(await conn.reply())[0] == "denied"
    finally:
        await conn.close()
    ops = audit_ops(made.vault)
    assert ops.count("access.request") == 2 and ops.count("grant.create") == 1 and ops.count("read") == 1


async def test_deny_answers_denied_and_creates_no_grant(start_broker, stock, made) -> None:
    server = await start_broker()
    watch = PendingWatch(server)
    conn = await Conn.open(server)
    try:
        await conn.send(encode_request(1, "get", {"ref": "api"}, None))
        server.service.approvals.decide((await watch.one()).id, Decision.deny())
        answer = await conn.reply()
    finally:
        await conn.close()
    assert error_of(answer) == ("denied", "access to 'api' was denied by the vault's owner")
    assert answer["error"]["exit"] == 9
    assert Grants(made.vault).list(include_inactive=True) == []
    last = made.vault.audit.tail(1)[0]
    assert (last.operation, last.outcome, last.target) == ("access.deny", "denied", "api")
    assert "read" not in audit_ops(made.vault)


@pytest.mark.parametrize(("mode", "hint"), [(APP, ""), (HEADLESS, " (no app is attached to this broker: start aegis-vault)")])
async def test_no_answer_within_the_approval_timeout_is_denied(start_broker, stock, made, mode, hint) -> None:
    server = await start_broker(mode=mode, approval_timeout=1)
    answer = await call(server, "get", {"ref": "api"})
    assert error_of(answer) == ("denied", f"no one approved access to 'api' within 1 s{hint}; "
                                          "ask the human to approve it in aegis-vault")
    assert server.service.approvals.pending() == []
    assert made.vault.audit.tail(1)[0].operation == "access.timeout"


async def test_a_session_approval_is_bound_to_the_session_and_its_lifetime(start_broker, stock, made) -> None:
    session, token = Sessions(made.vault).start("acme", 600)
    server = await start_broker()
    watch = PendingWatch(server)
    conn = await Conn.open(server)
    try:
        await conn.send(encode_request(1, "get", {"ref": "api"}, token))
        pending = await watch.one()
        assert pending.session is not None and pending.session.id == session.id
        server.service.approvals.decide(pending.id, Decision(True, ttl_seconds=86400))
        answer = await conn.reply()
    finally:
        await conn.close()
    grant = Grants(made.vault).get(answer["result"]["grant"])
    assert grant.session_id == session.id and grant.expires_at == session.expires_at  # never outlives its session
    covered_now = hands_out(await call(server, "get", {"ref": "api"}, session=token), API_VALUE)
    assert covered_now


# -- the masking stream ------------------------------------------------------------------------------------------------
def masking_every_value(server: BrokerServer) -> None:
    """Which values a stream masks is the service's choice (those handed to that ``run``,
    and only to ``aegis-vault run`` itself: see tests/security/test_mask_oracle.py). The
    transport is tested here: the stream masks whatever masker the service picks."""
    from aegis_tui.core.redaction import Masker

    masker = Masker.for_versions(Credentials(server.service.vault).values(active_only=True))
    server.service.masker_for = lambda request, peer: masker  # type: ignore[method-assign]


async def send_frame(conn: Conn, kind: bytes, payload: bytes = b"") -> None:
    await conn.send(STREAM_HEADER.pack(kind, len(payload)) + payload)


async def read_frame(conn: Conn) -> tuple[bytes, bytes]:
    kind, length = STREAM_HEADER.unpack(await asyncio.wait_for(conn.reader.readexactly(STREAM_HEADER.size), WAIT))
    return kind, await asyncio.wait_for(conn.reader.readexactly(length), WAIT)


async def test_the_masking_stream_never_returns_a_value_in_any_encoding_or_split(start_broker, stock) -> None:
    server = await start_broker()
    masking_every_value(server)
    conn = await Conn.open(server)
    try:
        started = await conn.request("mask")
        assert started["ok"] and started["result"]["max_frame"] > 0
        pieces = [
            b"starting deploy\nkey=" + API_VALUE + b"\n",
            b"auth: Basic " + base64.b64encode(b"user:" + API_VALUE) + b"\n",
            b"b64=" + base64.b64encode(API_VALUE) + b"\n",
            b"hex=" + API_VALUE.hex().encode() + b"\n",
            b"db=" + DB_VALUE[:11],  # split across frames
            DB_VALUE[11:30],
            DB_VALUE[30:] + b" done\n",
        ]
        out = b""
        for piece in pieces:
            await send_frame(conn, DATA, piece)
            kind, shown = await read_frame(conn)
            assert kind == DATA
            out += shown
        await send_frame(conn, END)
        kind, tail = await read_frame(conn)
        assert kind == DATA
        out += tail
        kind, hits_raw = await read_frame(conn)
        assert kind == HITS
        assert await conn.closed_by_peer()
    finally:
        await conn.close()
    forms = [API_VALUE, base64.b64encode(API_VALUE), API_VALUE.hex().encode(), DB_VALUE,
             base64.b64encode(DB_VALUE), DB_VALUE.hex().encode()]
    leaked = any(form in out for form in forms)
    assert not leaked, "a value came back through the masking stream"
    assert out.count(b"[aegis:api]") == 4 and out.count(b"[aegis:prod-db]") == 1
    framed = out.startswith(b"starting deploy\nkey=[aegis:api]\n") and out.endswith(b"[aegis:prod-db] done\n")
    assert framed, "the text around the values was not passed through unchanged"
    assert json.loads(hits_raw) == {"api": 4, "prod-db": 1}


async def test_flush_shows_held_back_text_without_a_newline(start_broker, stock) -> None:
    server = await start_broker()
    masking_every_value(server)
    conn = await Conn.open(server)
    try:
        assert (await conn.request("mask"))["ok"]
        await send_frame(conn, DATA, b"Password: ")
        _, early = await read_frame(conn)
        await send_frame(conn, FLUSH)
        kind, flushed = await read_frame(conn)
        assert kind == DATA and early + flushed == b"Password: "
        await send_frame(conn, END)
        assert await read_frame(conn) == (DATA, b"")
        kind, hits = await read_frame(conn)
        assert (kind, json.loads(hits)) == (HITS, {})
    finally:
        await conn.close()


async def test_an_unknown_stream_frame_ends_the_stream_without_echoing_anything(start_broker, stock) -> None:
    server = await start_broker()
    masking_every_value(server)
    conn = await Conn.open(server)
    try:
        assert (await conn.request("mask"))["ok"]
        await send_frame(conn, b"Z", b"key=" + API_VALUE)
        assert await conn.closed_by_peer()
        assert (await call(server, "hello"))["ok"]
    finally:
        await conn.close()


# -- one broker per vault --------------------------------------------------------------------------------------------
async def test_a_second_broker_for_the_same_vault_refuses_to_start(start_broker, stock, made) -> None:
    first = await start_broker()
    second = BrokerServer(BrokerService(made.vault), str(made.path))
    with pytest.raises(ConflictError, match="a broker already serves this vault"):
        await second.start()
    assert not second.running
    assert (await call(first, "hello"))["ok"]  # the first one was left alone
    await first.close()
    third = await start_broker()
    assert (await call(third, "hello"))["ok"]


async def test_a_stale_socket_file_without_a_lock_holder_is_replaced(start_broker, stock, made, runtime) -> None:
    probe = BrokerServer(BrokerService(made.vault), str(made.path))
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(probe.socket_path)  # a socket file nobody listens on, as a crashed broker leaves it
    stale.close()
    assert os.path.exists(probe.socket_path)
    assert await asyncio.to_thread(BrokerClient.connect, str(made.path)) is None  # clients see no broker
    server = await start_broker()
    assert server.socket_path == probe.socket_path
    assert (await call(server, "hello"))["ok"]
    client = await asyncio.to_thread(BrokerClient.connect, str(made.path))
    assert client is not None
    try:
        hello = await asyncio.to_thread(client.call, "hello")
        assert hello["vault_id"] == made.vault.vault_id
    finally:
        client.close()


async def test_closing_the_broker_removes_its_socket(start_broker, stock) -> None:
    server = await start_broker()
    path = server.socket_path
    assert os.path.exists(path)
    await server.close()
    assert not os.path.exists(path)


# -- upkeep -----------------------------------------------------------------------------------------
async def test_the_broker_rotates_by_policy_what_fell_due_while_it_was_not_running(start_broker, made) -> None:
    credentials = Credentials(made.vault)
    credentials.add("nightly", Secret("first-value-9e1"), rotation_days=7)
    credentials.edit("nightly", rotation_policy={"method": "generate", "length": 32})
    made.clock.advance(10 * 86400)  # the machine was off when it fell due
    server = await start_broker()
    for _ in range(250):
        if server.service.last_lifecycle is not None:
            break
        await asyncio.sleep(0.02)
    assert server.service.last_lifecycle is not None
    [outcome] = server.service.last_lifecycle.rotated
    assert (outcome.name, outcome.ok, outcome.version) == ("nightly", True, 2)
    assert credentials.reveal("nightly").reveal_text() != "first-value-9e1"
