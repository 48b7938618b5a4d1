"""Attack: an agent relays the app's owner proof through a socket it put in place of
the broker's, and answers its own requests.

Before issue 11 the app proved it held the vault key by answering a one-time
challenge that was bound to nothing: an agent (same user, no key) renamed the broker's
socket, listened on its path, passed the app's bytes to the real broker over its own
connection and, once the app had proved itself there, sent ``approvals.decide`` on that
connection to approve its own ``get``. It printed the raw value, with no pop-up.

Everything here runs for real: a headless broker (``aegis-vault serve``), the app's
side (``BrokerHost``, as the app uses it) in this test's event loop, and the relay as a
separate process of the same user with no vault key. The relay is tried three ways:
only the socket replaced; the lock file rewritten with its own pid as well; and, on
top, disguised as ``python -m aegis_tui`` (its own fake package on ``PYTHONPATH``), so
that only the broker's proof, which names the broker's pid and socket, can give it away.

Also proved: the app attaches to the genuine broker, sees it verified (pid, executable,
command line) and answers a request through the authenticated channel; an
authenticated frame that is tampered with, replayed, reordered, dropped or reflected
closes the connection; and a decision on a plain connection is a protocol error.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aegis_tui.core.credentials import Credentials
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault
from tests.support.broker import Broker, aegis, audit_entries, private_runtime_dir, remove_runtime_dir, without_key

KEY = "3c" * 32
VALUE = "prod-deploy-key-9f8e7d6c5b4a39281706"
CREDENTIAL = "deploy-key"
WAIT = 60.0


def digest(value: str | bytes) -> str:
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).hexdigest()


class World:
    """A vault on disk that unlocks with ``AEGIS_VAULT_KEY``, a private runtime folder,
    and the environments of the owner (with the key) and of an agent (without it)."""

    def __init__(self, root: Path, runtime: str) -> None:
        self.root = root
        self.home = root / "home"
        self.runtime = runtime
        self.vault_path = self.home / "vault.db"
        keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "TMPDIR")
        self.env = {k: os.environ[k] for k in keep if k in os.environ}
        self.env.update({"AEGIS_VAULT_HOME": str(self.home), "HOME": str(root), "XDG_RUNTIME_DIR": runtime,
                         "AEGIS_VAULT_INSECURE_FAST_KDF": "1", "PYTHONDONTWRITEBYTECODE": "1",
                         "AEGIS_VAULT_KEY": KEY})

    @property
    def agent_env(self) -> dict[str, str]:
        return without_key(self.env)

    def broker(self, approval_timeout: str = "10s") -> Broker:
        return Broker(self.env, self.root / "serve.log", approval_timeout=approval_timeout)

    def open_vault(self) -> Vault:
        vault = Vault.open(self.vault_path)
        vault.unlock_with_env_key(KEY)
        return vault


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    runtime = private_runtime_dir()
    w = World(tmp_path, runtime)
    for name in ("AEGIS_VAULT_HOME", "XDG_RUNTIME_DIR", "AEGIS_VAULT_INSECURE_FAST_KDF"):
        monkeypatch.setenv(name, w.env[name])
    monkeypatch.delenv("AEGIS_SESSION", raising=False)
    w.home.mkdir(mode=0o700)
    vault, _ = Vault.create(w.vault_path, passphrase=None, kdf=None, env_key=KEY)
    Credentials(vault).add(CREDENTIAL, Secret(VALUE), service="deploy", context="acme/prod")
    vault.close()
    try:
        yield w
    finally:
        remove_runtime_dir(runtime)


# -- the relay ------------------------------------------------------------------------------------------------------
RELAY = r'''
import base64, hashlib, json, os, socket, sys, threading

path, lock, credential, rewrite_lock = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
hidden = path + ".real"
os.rename(path, hidden)                      # the broker keeps listening, under another name
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
listener.listen(8)
if rewrite_lock:                             # flock is advisory: the same user can write it
    with open(lock, "w") as handle:
        handle.write(f"{os.getpid()}\n")
print("ready", flush=True)
listener.settimeout(60)
app, _ = listener.accept()
upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
upstream.connect(hidden)                     # the relay's OWN connection to the real broker
my_pid = os.getpid()
report = {"forwarded_to_broker": 0, "injected": 0, "value_sha256": None, "error": None, "message": None}
decided = set()
started = threading.Event()
finished = threading.Event()
write_lock = threading.Lock()


def requests_in(message):
    """The pending requests an event carries, however it is wrapped."""
    if isinstance(message, dict):
        if isinstance(message.get("requests"), list):
            yield from message["requests"]
        for value in message.values():
            yield from requests_in(value)
    elif isinstance(message, list):
        for value in message:
            yield from requests_in(value)


def app_to_broker():
    reader = app.makefile("rb")
    for line in reader:
        with write_lock:
            upstream.sendall(line)
        report["forwarded_to_broker"] += 1
    started.set()                           # the app hung up: try anyway


def broker_to_app():
    reader = upstream.makefile("rb")
    for line in reader:
        try:
            app.sendall(line)
        except OSError:
            pass
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if b'"attached"' in line:
            started.set()
        for request in requests_in(message):
            peer = request.get("peer") or {}
            if peer.get("pid") == my_pid and request.get("id") not in decided:
                decided.add(request.get("id"))
                decide = {"v": 1, "id": f"relay-{request.get('id')}", "op": "approvals.decide",
                          "args": {"id": request.get("id"), "allow": True, "uses": 1}}
                with write_lock:
                    upstream.sendall(json.dumps(decide).encode() + b"\n")
                report["injected"] += 1
    started.set()


def own_get():
    started.wait(30)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(60)
    sock.connect(hidden)
    request = {"v": 1, "id": 1, "op": "get", "args": {"ref": credential, "reason": "routine check"}}
    sock.sendall(json.dumps(request).encode() + b"\n")
    answer = json.loads(sock.makefile("rb").readline() or b"{}")
    if answer.get("ok"):
        report["value_sha256"] = hashlib.sha256(base64.b64decode(answer["result"]["value_b64"])).hexdigest()
    else:
        report["error"] = (answer.get("error") or {}).get("code")
        report["message"] = (answer.get("error") or {}).get("message")
    finished.set()


for job in (app_to_broker, broker_to_app, own_get):
    threading.Thread(target=job, daemon=True).start()
finished.wait(90)
print(json.dumps(report), flush=True)
'''


class Relay:
    """The relay as a process of the same user without the vault key."""

    def __init__(self, world: World, broker: Broker, how: str) -> None:
        from aegis_tui.core.broker.runtime import lock_path

        self.world = world
        argv = [broker.socket_path, lock_path(str(world.vault_path)), CREDENTIAL, "0" if how == "socket" else "1"]
        env = world.agent_env
        if how == "disguised":  # ``python -m aegis_tui`` from a fake package: the command line looks right
            fake = world.root / "fake"
            (fake / "aegis_tui").mkdir(parents=True)
            (fake / "aegis_tui" / "__init__.py").write_text("")
            (fake / "aegis_tui" / "__main__.py").write_text(RELAY)
            env = {**env, "PYTHONPATH": str(fake)}
            command = [sys.executable, "-m", "aegis_tui", *argv]
        else:
            script = world.root / "relay.py"
            script.write_text(RELAY)
            command = [sys.executable, str(script), *argv]
        self.proc = subprocess.Popen(command, env=env, cwd=world.root, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        assert ready == b"ready\n", self.proc.stderr.read().decode() if self.proc.stderr else ready

    def report(self) -> dict[str, Any]:
        out, err = self.proc.communicate(timeout=120)
        lines = out.decode().strip().splitlines()
        assert lines, f"the relay printed nothing: {err.decode()}"
        return json.loads(lines[-1])  # type: ignore[no-any-return]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


async def attach_app(world: World) -> tuple[Any, Vault]:
    """The app's side as the app runs it: ``BrokerHost.start`` finds the vault served and attaches."""
    from aegis_tui.tui.broker_host import BrokerHost

    vault = world.open_vault()
    host = BrokerHost(vault, approval_timeout=10.0, on_change=lambda: None)
    await asyncio.wait_for(host.start(), WAIT)
    return host, vault


@pytest.mark.parametrize("how", ["socket", "socket+lock", "disguised"])
async def test_a_relay_in_place_of_the_brokers_socket_cannot_get_its_own_request_approved(world: World,
                                                                                         how: str) -> None:
    from aegis_tui.tui.broker_host import BrokerState

    with world.broker(approval_timeout="3s") as broker:  # long enough for a relay's instant approval
        relay = Relay(world, broker, how)
        try:
            host, vault = await attach_app(world)
            try:
                report = await asyncio.to_thread(relay.report)
                state, problem = host.state, host.problem
            finally:
                await host.stop()
                vault.close()
        finally:
            relay.kill()
    relayed_value = report["value_sha256"] == digest(VALUE)
    assert not relayed_value, "the relay got its own request approved and read the value"
    assert report["value_sha256"] is None and report["error"] == "denied", report
    assert state is BrokerState.ELSEWHERE
    assert f"pid {relay.proc.pid}" in problem and "not the broker" in problem, problem
    entries = audit_entries(world.env)
    assert not [e for e in entries if e["operation"] == "approver.attach"]
    reads = [e for e in entries if e["operation"] == "read"]
    assert reads == []


async def test_the_app_attaches_to_the_genuine_broker_shows_it_verified_and_answers_through_it(world: World) -> None:
    from aegis_tui.core.approvals import Decision
    from aegis_tui.tui.broker_host import BrokerState

    with world.broker() as broker:
        host, vault = await attach_app(world)
        try:
            assert host.state is BrokerState.ATTACHED, host.problem
            verified = host.peer
            assert verified is not None
            assert verified.pid == broker.proc.pid
            assert os.path.realpath(verified.exe) == os.path.realpath(sys.executable)
            assert verified.cmdline[1:4] == ("-m", "aegis_tui", "serve")
            agent = asyncio.ensure_future(asyncio.to_thread(aegis, world.agent_env, "get", CREDENTIAL,
                                                            "--reason", "deploy"))
            queue = host.approvals
            assert queue is not None
            for _ in range(int(WAIT / 0.05)):
                if queue.pending() or agent.done():
                    break
                await asyncio.sleep(0.05)
            assert not agent.done(), agent.result().err
            [pending] = queue.pending()
            assert pending.credential.name == CREDENTIAL
            assert queue.decide(pending.id, Decision(True, uses=1))
            outcome = await asyncio.wait_for(agent, WAIT)
            assert outcome.returncode == 0, outcome.err
            served = digest(outcome.stdout.rstrip(b"\n")) == digest(VALUE)
            assert served
        finally:
            await host.stop()
            vault.close()
    [attach] = [e for e in audit_entries(world.env) if e["operation"] == "approver.attach"]
    peer = attach["detail"]["peer"]
    assert peer["pid"] != broker.proc.pid  # the app (this process) is the one that attached
    assert peer["pid"] == os.getpid() and peer["cmdline"] and peer["exe"]


# -- as an ordinary user: both sides hide their memory -------------------------------------------------------------
def unprivileged(argv: list[str]) -> list[str]:
    """``argv`` as this user without any capability: under root (CI) that is uid 0 with
    every capability dropped, which the kernel treats as an ordinary user (see
    tests/security/test_process_memory.py). Root with CAP_SYS_PTRACE reads anything."""
    if os.geteuid() != 0:
        return argv
    return ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", "--", *argv]


class UnprivilegedBroker(Broker):
    """``aegis-vault serve`` without capabilities: it makes itself non-dumpable, so another
    process of the user can no longer read its ``/proc/PID/exe`` (only its command line)."""

    def serve_argv(self) -> list[str]:
        return unprivileged([sys.executable, "-m", "aegis_tui", "serve", "--approval-timeout", "10s"])



APP_SIDE = r"""
import asyncio, json, os, sys
from aegis_tui.core.hardening import protect_process
from aegis_tui.core.vault import Vault
from aegis_tui.tui.broker_host import BrokerHost

protect_process()  # as the app does first thing

async def main():
    vault = Vault.open(sys.argv[1])
    vault.unlock_with_env_key(sys.argv[2])
    host = BrokerHost(vault, approval_timeout=10.0, on_change=lambda: None)
    await host.start()
    peer = host.peer
    print(json.dumps({"state": str(host.state), "problem": host.problem,
                      "peer": None if peer is None else {"pid": peer.pid, "exe": peer.exe,
                                                         "cmdline": list(peer.cmdline)}}))
    await host.stop()
    vault.close()

asyncio.run(main())
"""


def test_an_app_of_an_ordinary_user_attaches_to_a_broker_that_hides_its_memory(world: World) -> None:
    script = world.root / "app_side.py"
    script.write_text(APP_SIDE)
    env = {k: v for k, v in world.env.items() if k != "AEGIS_VAULT_KEY"}
    with UnprivilegedBroker(world.env, world.root / "serve.log") as broker:
        result = subprocess.run(unprivileged([sys.executable, str(script), str(world.vault_path), KEY]), env=env,
                                capture_output=True, timeout=WAIT, cwd=world.root, start_new_session=True)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        seen = json.loads(result.stdout.decode().splitlines()[-1])
    assert seen["state"] == "attached", seen["problem"]
    assert seen["peer"]["pid"] == broker.proc.pid
    assert seen["peer"]["cmdline"][1:4] == ["-m", "aegis_tui", "serve"]
    [attach] = [e for e in audit_entries(world.env) if e["operation"] == "approver.attach"]
    assert attach["detail"]["peer"]["cmdline"][1] == str(script)


# -- the authenticated channel, frame by frame ---------------------------------------------------------------------
class Owner:
    """An owner tool speaking the channel by hand (it holds the key), to send bad frames."""

    def __init__(self, world: World, path: str) -> None:
        from aegis_tui.core.broker.owner_channel import OwnerHandshake

        vault = world.open_vault()
        try:
            self.handshake = OwnerHandshake(vault.keys.data_key, vault.vault_id, str(world.vault_path))
        finally:
            vault.close()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")

    def send_line(self, line: bytes) -> None:
        self.sock.sendall(line)

    def line(self) -> bytes:
        return self.file.readline()

    def attach(self) -> Any:
        """The handshake; the authenticated channel it opens."""
        self.send_line(json.dumps({"v": 1, "id": 1, "op": "owner.hello", "args": self.handshake.hello()}).encode()
                       + b"\n")
        answer = json.loads(self.line())
        assert answer["ok"], answer
        self.handshake.check(answer["result"], self.sock)
        self.send_line(json.dumps({"v": 1, "id": 2, "op": "owner.prove",
                                   "args": {"proof": self.handshake.proof()}}).encode() + b"\n")
        channel = self.handshake.channel()
        welcome = channel.open(self.line())
        assert welcome["ok"], welcome
        return channel

    def closed(self) -> bool:
        try:
            return self.file.readline() == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@contextlib.contextmanager
def owner(world: World, broker: Broker) -> Iterator[Owner]:
    tool = Owner(world, broker.socket_path)
    try:
        yield tool
    finally:
        tool.close()


def hello(request_id: int) -> dict[str, Any]:
    return {"v": 1, "id": request_id, "op": "hello", "args": {}}


@pytest.mark.parametrize("attack", ["tampered", "replayed", "reordered", "dropped", "reflected", "unauthenticated"])
def test_an_authenticated_frame_that_was_tampered_with_replayed_reordered_or_dropped_closes_the_channel(
        world: World, attack: str) -> None:
    with world.broker() as broker, owner(world, broker) as tool:
        channel = tool.attach()
        first = channel.seal(hello(10))
        tool.send_line(first)
        answer_raw = tool.line()
        answer = channel.open(answer_raw)
        assert answer["ok"] and answer["id"] == 10
        if attack == "tampered":  # a denial turned into an approval in flight: same seq, same MAC
            deny = {"v": 1, "id": 11, "op": "approvals.decide", "args": {"id": 1, "allow": False}}
            flipped = channel.seal(deny).replace(b'"allow":false', b'"allow":true')
            assert b'"allow":true' in flipped
            tool.send_line(flipped)
        elif attack == "replayed":
            tool.send_line(first)
        elif attack == "reordered":
            second, third = channel.seal(hello(11)), channel.seal(hello(12))
            tool.send_line(third + second)
        elif attack == "dropped":
            channel.seal(hello(11))  # never sent
            tool.send_line(channel.seal(hello(12)))
        elif attack == "reflected":  # the broker's own frame, with the very seq it expects next, sent back
            tool.send_line(answer_raw)
        else:
            tool.send_line(json.dumps(hello(11)).encode() + b"\n")
        assert tool.closed(), f"a {attack} frame was accepted"
        assert broker.proc is not None and broker.proc.poll() is None
        assert (aegis(world.agent_env, "list").returncode == 0)
    refused = [e for e in audit_entries(world.env) if e["operation"] == "approver.refused"]
    assert refused and refused[-1]["risk_level"] == "high"


def test_over_the_channel_a_request_has_the_owners_authority_and_on_a_plain_connection_it_does_not(
        world: World) -> None:
    note = {"v": 1, "id": 20, "op": "audit.note", "args": {"text": "rotated the deploy key by hand"}}
    with world.broker() as broker, owner(world, broker) as tool:
        channel = tool.attach()
        tool.send_line(channel.seal(note))
        answer = channel.open(tool.line())
        assert answer["ok"] is True and answer["id"] == 20, answer
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as plain:
            plain.settimeout(WAIT)
            plain.connect(broker.socket_path)
            plain.sendall(json.dumps({**note, "id": 21}).encode() + b"\n")
            refused = json.loads(plain.makefile("rb").readline())
        assert refused["ok"] is False and refused["error"]["code"] == "refused"
    notes = [e for e in audit_entries(world.env) if e["operation"] == "note"]
    assert [n["detail"]["text"] for n in notes] == ["rotated the deploy key by hand"]


def test_the_owner_side_refuses_a_frame_the_broker_did_not_send(world: World) -> None:
    from aegis_tui.core.broker.owner_channel import ChannelBroken

    with world.broker() as broker, owner(world, broker) as tool:
        channel = tool.attach()
        tool.send_line(channel.seal(hello(10)))
        line = tool.line()
        forged = line.replace(b'"id":10', b'"id":99')
        with pytest.raises(ChannelBroken):
            channel.open(forged)
        with pytest.raises(ChannelBroken):  # our own frame reflected back at us
            channel.open(channel.seal(hello(11)))


@pytest.mark.parametrize(("op", "args"), [
    ("approvals.decide", {"id": 1, "allow": True, "uses": 1}),
    ("approvals.subscribe", {}),
    ("owner.prove", {"proof": "00" * 32}),
])
def test_an_owner_operation_on_a_plain_connection_is_a_protocol_error(world: World, op: str,
                                                                       args: dict[str, Any]) -> None:
    with world.broker() as broker:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(WAIT)
            sock.connect(broker.socket_path)
            reader = sock.makefile("rb")
            sock.sendall(json.dumps({"v": 1, "id": 7, "op": op, "args": args}).encode() + b"\n")
            answer = json.loads(reader.readline())
            assert answer["ok"] is False and answer["id"] == 7
            assert answer["error"]["code"] == "protocol", answer
            assert "needs the owner channel" in answer["error"]["message"]
            sock.sendall(b'{"v":1,"id":8,"op":"hello","args":{}}\n')
            assert json.loads(reader.readline())["ok"] is True
        broker.terminate()
        assert "Traceback" not in broker.log_text()


def test_a_wrong_proof_is_refused_and_audited_as_high_risk(world: World) -> None:
    with world.broker() as broker, owner(world, broker) as tool:
        tool.send_line(json.dumps({"v": 1, "id": 1, "op": "owner.hello", "args": tool.handshake.hello()}).encode()
                       + b"\n")
        assert json.loads(tool.line())["ok"]
        tool.send_line(json.dumps({"v": 1, "id": 2, "op": "owner.prove",
                                   "args": {"proof": base64.b64encode(b"\0" * 32).decode()}}).encode() + b"\n")
        answer = json.loads(tool.line())
        assert answer["ok"] is False and answer["error"]["code"] == "refused"
        assert tool.closed()
    [refused] = [e for e in audit_entries(world.env) if e["operation"] == "approver.refused"]
    assert refused["risk_level"] == "high" and refused["detail"]["peer"]["pid"] == os.getpid()
