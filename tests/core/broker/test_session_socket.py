"""Attack: a sandboxed agent uses the only broker socket it can reach, its session's, to
act for someone else: it declares another session's token, opens the owner channel,
asks for owner operations, or mints itself another socket; a process outside the
session's tree connects to the socket's host path; and the socket outlives its session.

Real ``aegis-vault serve``, a real bwrap sandbox made as ``session exec`` makes it
(``tests/support/sandboxed_session``), the agent a Python script sending raw requests.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.security.conftest import broker, owner  # noqa: F401 - fixtures
from tests.support import sandboxed_session
from tests.support.attacker import ok
from tests.support.broker import audit_entries, wait_until

pytestmark = pytest.mark.skipif(not (sys.platform.startswith("linux") and shutil.which("bwrap")),
                                reason="bubblewrap sandboxes are Linux's")

ASK = r"""
import json, os, socket, sys
path = os.path.join(os.environ.get("XDG_RUNTIME_DIR", ""), "aegis-vault", "session.sock")
def ask(op, args=None, session=None):
    message = {"v": 1, "id": 1, "op": op, "args": args or {}}
    if session is not None:
        message["session"] = session
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(20)
        sock.connect(path)
        sock.sendall(json.dumps(message).encode() + b"\n")
        return json.loads(sock.makefile("rb").readline())
results = {}
for name, (op, args, session) in json.loads(sys.argv[1]).items():
    results[name] = ask(op, args, session)
json.dump(results, open("results.json", "w"))
"""


def _ask(path: str, op: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(20)
        sock.connect(path)
        try:
            sock.sendall(json.dumps({"v": 1, "id": 1, "op": op, "args": args or {}}).encode() + b"\n")
        except BrokenPipeError:
            pass  # refused before it read anything: the refusal is still there to read
        line = sock.makefile("rb").readline()
    return json.loads(line) if line else {"ok": False, "error": {"message": "closed"}}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "ask.py").write_text(ASK)
    return folder


def _in_sandbox(owner, project: Path, requests: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    proc, _ = sandboxed_session.start(owner.env, str(project), [sys.executable, "ask.py", json.dumps(requests)],
                                      stdin=subprocess.DEVNULL)
    assert proc.wait(timeout=120) == 0
    return json.loads((project / "results.json").read_text())


def test_the_session_socket_acts_for_its_session_and_says_it_is_sandboxed(owner, broker, project):
    results = _in_sandbox(owner, project, {"hello": ["hello", {}, None], "list": ["list", {}, None]})
    assert results["hello"]["ok"] and results["hello"]["result"]["sandboxed"] is True
    assert results["hello"]["result"]["session"].startswith("as_")
    names = {c["name"] for c in results["list"]["result"]["credentials"]}
    assert names == {"dev-db", "dev-other"}  # acme/dev only


def test_a_declared_token_is_refused_even_a_real_one(owner, broker, project):
    other = owner("session", "start", "--context", "acme/prod")
    token = next(line.split("=", 1)[1] for line in other.out.splitlines() if "AEGIS_SESSION=" in line)
    results = _in_sandbox(owner, project, {"real": ["list", {}, token.strip()],
                                           "made-up": ["hello", {}, "ast_" + "A" * 43]})
    for name in ("real", "made-up"):
        assert results[name]["ok"] is False
        assert "speaks for its own session only" in results[name]["error"]["message"]
    refusals = [e for e in audit_entries(owner.env) if e["operation"] == "session.refused"]
    assert any("declared a session token" in e["detail"]["reason"] for e in refusals)


def test_owner_operations_are_refused(owner, broker, project):
    results = _in_sandbox(owner, project, {
        "owner.hello": ["owner.hello", {"nonce": "00" * 16}, None],
        "grants.add": ["grants.add", {"ref": "prod-db"}, None],
        "audit.note": ["audit.note", {"text": "hi"}, None],
        "mask": ["mask", {}, None],
    })
    for name, answer in results.items():
        assert answer["ok"] is False, name
        assert "not served on a session socket" in answer["error"]["message"], name


def test_only_the_binder_may_sandbox_its_session(owner, broker, project):
    proc, info_path = sandboxed_session.start(owner.env, str(project), [sys.executable, "ask.py", json.dumps({
        "over the session socket": ["session.sandbox", {"id": "as_0000000000000000",
                                                        "plan": {"hidden": [], "read_only": [], "network": "host"}},
                                    None]})], stay=True, stdin=subprocess.PIPE)
    try:
        info = sandboxed_session.read_info(info_path, proc)
        wait_until(lambda: (project / "results.json").exists(), "the agent's requests")
        inside = json.loads((project / "results.json").read_text())["over the session socket"]
        assert inside["ok"] is False and "not served on a session socket" in inside["error"]["message"]
        plan = {"hidden": [], "read_only": [], "network": "host"}
        # Another process of the user, through the broker's own socket:
        stranger = _ask(broker.socket_path, "session.sandbox", {"id": info["session"], "plan": plan})
        assert stranger["ok"] is False and "bound to" in stranger["error"]["message"]
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=60)


def test_a_process_outside_the_session_tree_is_refused(owner, broker, project):
    proc, info_path = sandboxed_session.start(owner.env, str(project), ["true"], stay=True, stdin=subprocess.PIPE)
    try:
        info = sandboxed_session.read_info(info_path, proc)
        answer = _ask(str(info["socket"]), "hello")
        assert answer["ok"] is False and "speaks for its own session only" in answer["error"]["message"]
        refusals = [e for e in audit_entries(owner.env) if e["operation"] == "session.refused"]
        assert any("outside the session's process tree" in e["detail"]["reason"] for e in refusals)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=60)


def test_the_socket_goes_when_the_session_ends(owner, broker, project):
    proc, info_path = sandboxed_session.start(owner.env, str(project), ["true"], stay=True, stdin=subprocess.PIPE)
    info = sandboxed_session.read_info(info_path, proc)
    assert os.path.exists(str(info["socket"]))
    listed = json.loads(ok(owner("session", "list", "--json")).out)
    assert [s["sandboxed"] for s in listed if s["id"] == info["session"]] == [True]
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0
    wait_until(lambda: not os.path.exists(str(info["socket"])), "the session socket to go", timeout=10)


def test_the_socket_goes_when_the_broker_closes(owner, broker, project):
    proc, info_path = sandboxed_session.start(owner.env, str(project), ["true"], stay=True, stdin=subprocess.PIPE)
    try:
        info = sandboxed_session.read_info(info_path, proc)
        assert os.path.exists(str(info["socket"]))
        broker.terminate()
        assert not os.path.exists(str(info["socket"]))
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=60)
