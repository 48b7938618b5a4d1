"""Attack: stall the broker with idle connections, or crash it with bad frames.

Before issue 11, 1,500 idle connections stalled the broker: on a desktop whose soft
limit on open files is 1,024 it ran out of descriptors, stopped accepting (writing
asyncio's traceback to its log), and the owner's own ``aegis-vault get`` waited until
idle connections timed out. And some frames reached the operations unchecked: a
decision sent on a plain connection ended in an ``AttributeError``.

Here a real ``aegis-vault serve`` runs with the limits of such a desktop (soft 1,024,
hard 4,096). Two thousand idle connections are attempted (one process opening many,
and many processes opening some each, all on the loopback Unix socket), and while
they are held a normal ``aegis-vault get`` with a standing grant must be answered
with the value. Then every kind of bad frame gets a protocol error, the broker keeps
serving, and nothing it wrote to its log is a traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aegis_tui.core.agents.grants import Grants
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault
from tests.support.broker import Broker, aegis, private_runtime_dir, remove_runtime_dir, without_key

KEY = "4d" * 32
VALUE = "ci-token-7e6d5c4b3a29180716253443"
CREDENTIAL = "ci-token"
DESKTOP_FILE_LIMITS = (1024, 4096)  # what a desktop session typically starts with
GET_SECONDS = 20.0  # a cold get takes well under a second; idle connections were let go after 30 s
# 2,000 connections: 1,000 from one process, and 40 from each of 25 more (over the per-process cap)
ONE_PROCESS, PROCESSES, PER_PROCESS = 1000, 25, 40


def digest(value: bytes | str) -> str:
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).hexdigest()


class DesktopBroker(Broker):
    """``aegis-vault serve`` started with a desktop's limits on open files."""

    def launch(self, log: Any) -> subprocess.Popen[bytes]:
        def desktop_limits() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, DESKTOP_FILE_LIMITS)

        return subprocess.Popen(self.serve_argv(), env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, preexec_fn=desktop_limits)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    runtime = private_runtime_dir()
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "TMPDIR")
    values = {k: os.environ[k] for k in keep if k in os.environ}
    values.update({"AEGIS_VAULT_HOME": str(home), "HOME": str(tmp_path), "XDG_RUNTIME_DIR": runtime,
                   "AEGIS_VAULT_INSECURE_FAST_KDF": "1", "PYTHONDONTWRITEBYTECODE": "1", "AEGIS_VAULT_KEY": KEY})
    vault, _ = Vault.create(home / "vault.db", passphrase=None, kdf=None, env_key=KEY)
    credential = Credentials(vault).add(CREDENTIAL, Secret(VALUE), service="ci", context="acme/dev")
    reveal = {"rights": ("inject", "reveal")} if "rights" in inspect.signature(Grants.create).parameters else {}
    Grants(vault).create(credential=credential, reason="the owner's own scripts", **reveal)  # type: ignore[arg-type]
    vault.close()
    try:
        yield values
    finally:
        remove_runtime_dir(runtime)


@pytest.fixture
def broker(env: dict[str, str], tmp_path: Path) -> Iterator[DesktopBroker]:
    with DesktopBroker(env, tmp_path / "serve.log", approval_timeout="5s") as started:
        yield started


# -- 2,000 idle connections ----------------------------------------------------------------------------------------
HOLDER = r'''
import os, resource, socket, sys, time
path, processes, per_process = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < hard:
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
report_r, report_w = os.pipe()
children = []
for _ in range(processes):
    pid = os.fork()
    if pid == 0:
        os.close(report_r)
        held, opened, deadline = [], 0, time.monotonic() + 20
        for _ in range(per_process):           # bounded: never more than asked, nor longer than 20 s
            if time.monotonic() > deadline:
                break
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(2)
            try:
                sock.connect(path)
                opened += 1
                held.append(sock)              # idle: it never sends a byte
            except OSError:
                sock.close()
        os.write(report_w, f"{opened}\n".encode())
        sys.stdin.read()                       # hold them until the test lets go
        os._exit(0)
    children.append(pid)
os.close(report_w)
total = 0
with os.fdopen(report_r) as reports:
    for _ in range(processes):                 # one line each (they keep the pipe open while they hold)
        total += int(reports.readline())
print(total, flush=True)
sys.stdin.read()
for pid in children:
    os.waitpid(pid, 0)
'''


@contextlib.contextmanager
def idle_connections(path: str, processes: int, per_process: int, tmp_path: Path) -> Iterator[int]:
    """``processes`` processes each open ``per_process`` connections and keep them, silent."""
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    proc = subprocess.Popen([sys.executable, str(script), path, str(processes), str(per_process)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=30)


def owner_get(env: dict[str, str]) -> tuple[bool, float, str]:
    """A normal ``aegis-vault get`` from the owner's shell (no key: it asks the broker)."""
    started = time.monotonic()
    try:
        result = aegis(without_key(env), "get", CREDENTIAL, timeout=GET_SECONDS)
    except subprocess.TimeoutExpired:
        return False, time.monotonic() - started, f"no answer within {GET_SECONDS:.0f} s"
    served = result.returncode == 0 and digest(result.stdout.rstrip(b"\n")) == digest(VALUE)
    return served, time.monotonic() - started, result.err


def test_two_thousand_idle_connections_do_not_keep_a_normal_get_from_being_answered(
        broker: DesktopBroker, env: dict[str, str], tmp_path: Path) -> None:
    served, _, err = owner_get(env)
    assert served, f"the standing grant did not serve the value before the flood: {err}"
    with idle_connections(broker.socket_path, 1, ONE_PROCESS, tmp_path) as one_process, \
            idle_connections(broker.socket_path, PROCESSES, PER_PROCESS, tmp_path) as many_processes:
        served, took, err = owner_get(env)
        assert broker.proc is not None and broker.proc.poll() is None, broker.log_text()
    assert served, (f"the owner's get was not answered while idle connections were held ({took:.1f} s; "
                    f"{one_process} + {many_processes} connected): {err}")
    served, _, err = owner_get(env)
    assert served, err
    broker.terminate()
    assert "Traceback" not in broker.log_text(), broker.log_text()[-3000:]


def test_one_process_cannot_hold_more_than_its_share_of_connections(broker: DesktopBroker) -> None:
    from aegis_tui.core.broker import server

    MAX_PER_PEER = getattr(server, "MAX_PER_PEER", 32)
    held: list[socket.socket] = []
    try:
        for _ in range(MAX_PER_PEER + 8):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(30)
            sock.connect(broker.socket_path)
            held.append(sock)
        closed: set[int] = set()
        deadline = time.monotonic() + 4  # within the first-request timeout
        while len(closed) < 8 and time.monotonic() < deadline:
            for number, sock in enumerate(held):
                if number in closed:
                    continue
                sock.settimeout(0.01)
                with contextlib.suppress(TimeoutError, BlockingIOError):
                    if sock.recv(1) == b"":
                        closed.add(number)
        assert len(closed) == 8 and closed == set(range(8))  # its longest-idle ones made room for its newest
        newest = held[-1]
        newest.settimeout(30)
        newest.sendall(b'{"v":1,"id":1,"op":"hello","args":{}}\n')
        assert json.loads(newest.makefile("rb").readline())["ok"] is True
    finally:
        for sock in held:
            sock.close()


def test_a_connection_that_sends_no_request_is_closed_after_the_first_request_timeout(broker: DesktopBroker) -> None:
    from aegis_tui.core.broker import server

    FIRST_REQUEST_TIMEOUT = getattr(server, "FIRST_REQUEST_TIMEOUT", 5.0)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.settimeout(FIRST_REQUEST_TIMEOUT + 20)
        silent.connect(broker.socket_path)
        started = time.monotonic()
        assert silent.recv(1) == b""
        assert time.monotonic() - started < FIRST_REQUEST_TIMEOUT + 15


# -- bad frames ------------------------------------------------------------------------------------------------------
BAD_FRAMES = [
    ("invalid UTF-8 in a name", b'{"v":1,"id":1,"op":"get","args":{"ref":"\xff\xfe"}}\n'),
    ("invalid UTF-8 in an operation", b'{"v":1,"id":1,"op":"ge\xc3","args":{}}\n'),
    ("a lone surrogate in a name", b'{"v":1,"id":1,"op":"get","args":{"ref":"\\ud800"}}\n'),
    ("a lone surrogate in a reason", b'{"v":1,"id":1,"op":"get","args":{"ref":"ci-token","reason":"\\udc80x"}}\n'),
    ("a lone surrogate in scopes", b'{"v":1,"id":1,"op":"get","args":{"ref":"ci-token","scopes":["\\ud83d"]}}\n'),
    ("a lone surrogate in an operation", b'{"v":1,"id":1,"op":"\\ud800","args":{}}\n'),
    ("a lone surrogate in an argument name", b'{"v":1,"id":1,"op":"list","args":{"\\ud800":"x"}}\n'),
    ("a lone surrogate in the session", b'{"v":1,"id":1,"op":"list","session":"\\udfff","args":{}}\n'),
    ("a lone surrogate in the id", b'{"v":1,"id":"\\ud800","op":"hello","args":{}}\n'),
    ("a list for a name", b'{"v":1,"id":1,"op":"get","args":{"ref":["ci-token"]}}\n'),
    ("a number for the operation", b'{"v":1,"id":1,"op":7,"args":{}}\n'),
    ("a list for the arguments", b'{"v":1,"id":1,"op":"list","args":[]}\n'),
    ("an object for the id", b'{"v":1,"id":{},"op":"hello","args":{}}\n'),
    ("a string for the version", b'{"v":"1","id":1,"op":"hello","args":{}}\n'),
    ("true for a number", b'{"v":1,"id":1,"op":"get","args":{"ref":"ci-token","duration":true}}\n'),
    ("a decision before attaching", b'{"v":1,"id":1,"op":"approvals.decide","args":{"id":1,"allow":true}}\n'),
    ("a subscription before attaching", b'{"v":1,"id":1,"op":"approvals.subscribe","args":{}}\n'),
    ("a proof before the hello", b'{"v":1,"id":1,"op":"owner.prove","args":{"proof":"00"}}\n'),
    ("a hello with a nonce that is not hex", b'{"v":1,"id":1,"op":"owner.hello","args":{"nonce":"zz"}}\n'),
    ("a hello with a surrogate nonce", b'{"v":1,"id":1,"op":"owner.hello","args":{"nonce":"\\ud800"}}\n'),
    ("a hello with a number for the nonce", b'{"v":1,"id":1,"op":"owner.hello","args":{"nonce":5}}\n'),
]


def test_every_bad_frame_gets_a_protocol_error_and_the_broker_keeps_serving_without_a_traceback(
        broker: DesktopBroker, env: dict[str, str]) -> None:
    wrong: list[str] = []
    for what, frame in BAD_FRAMES:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(broker.socket_path)
            reader = sock.makefile("rb")
            sock.sendall(frame)
            line = reader.readline()
            answer = json.loads(line) if line else {}
            error = answer.get("error") or {}
            if answer.get("ok") is not False or error.get("code") != "protocol" or error.get("exit") != 2:
                wrong.append(f"{what}: {answer or 'the connection was closed'}")
                continue
            if what.startswith("a hello"):
                continue  # a failed handshake ends its connection; the next one must be served
            sock.sendall(b'{"v":1,"id":2,"op":"hello","args":{}}\n')
            after = reader.readline()
            if json.loads(after or b"{}").get("ok") is not True:
                wrong.append(f"{what}: the same connection was not served afterwards ({after!r})")
    assert not wrong, "\n".join(wrong)
    served, _, err = owner_get(env)
    assert served, err
    assert broker.proc is not None and broker.proc.poll() is None
    # A client that leaves mid-handshake or mid-stream, and one that sends a proof that is not hex.
    for frames in ([b'{"v":1,"id":1,"op":"owner.hello","args":{"nonce":"' + b"ab" * 32 + b'"}}\n'],
                   [b'{"v":1,"id":1,"op":"owner.hello","args":{"nonce":"' + b"ab" * 32 + b'"}}\n',
                    b'{"v":1,"id":2,"op":"owner.prove","args":{"proof":"not hex at all"}}\n'],
                   [b'{"v":1,"id":1,"op":"approvals.attach","args":{}}\n',
                    b'{"v":1,"id":2,"op":"approvals.prove","args":{"proof":"zz"}}\n']):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(broker.socket_path)
            reader = sock.makefile("rb")
            for frame in frames:
                sock.sendall(frame)
                reader.readline()
    served, _, err = owner_get(env)
    assert served, err
    broker.terminate()
    log = broker.log_text()
    assert "Traceback" not in log, log[-3000:]
