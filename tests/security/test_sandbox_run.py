"""``aegis-vault run`` inside a sandboxed session: the broker starts the command.

Attack: the agent, in its sandbox, reads the value a ``run`` child was given: from the
child's ``/proc/PID/environ``, from the memory of the ``run`` client or of the child
(``/proc/PID/mem``), from any command line. Before the broker started the children, the
``run`` client inside the sandbox held the value and started the child there, so both
were the agent's to read. Now neither process exists in the agent's PID namespace: the
test searches everything it can see in ``/proc`` for the value.

And ``run`` still behaves as ``run``: output masked, the exit code returned, Ctrl-C
reaching the command (on pipes, and on a terminal through its own PTY), a PTY when the
agent's side is a terminal, files written into the project, the command stopped when
its client vanishes.

Real ``aegis-vault serve``, a real bwrap sandbox (``tests/support/sandboxed_session``),
real processes; one standing grant of ``dev-db`` (inject) for the agent.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.security.conftest import broker, owner  # noqa: F401 - fixtures
from tests.support import sandboxed_session
from tests.support.attacker import DEV_DB, ok
from tests.support.broker import audit_entries, wait_until
from tests.support.canary import leaked_forms

pytestmark = pytest.mark.skipif(not (sys.platform.startswith("linux") and shutil.which("bwrap")),
                                reason="bubblewrap sandboxes are Linux's")

WAIT = 60.0

# The agent: starts a run that keeps the value for a while, then searches every process
# it can see for it (environment, command line, readable memory) and for the variable.
SCAN = r"""
import json, os, subprocess, sys, time
needle = bytes.fromhex(open("needle.hex").read())
run = subprocess.Popen(["aegis-vault", "run", "--need", "dev-db", "--", "sh", "-c",
                        "echo started > started.txt; sleep 30"])
for _ in range(1200):
    if os.path.exists("started.txt"):
        break
    time.sleep(0.05)
found, visible = [], []
for pid in os.listdir("/proc"):
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    visible.append(pid)
    for name in ("environ", "cmdline"):
        try:
            data = open(f"/proc/{pid}/{name}", "rb").read()
        except OSError:
            continue
        if needle in data:
            found.append([pid, name])
        if name == "environ" and b"DEV_DB=" in data:
            found.append([pid, "the DEV_DB variable"])
    try:
        maps = open(f"/proc/{pid}/maps").read().splitlines()
        mem = open(f"/proc/{pid}/mem", "rb", 0)
    except OSError:
        continue
    with mem:
        for line in maps:
            where, perms = line.split()[:2]
            start, end = (int(x, 16) for x in where.split("-"))
            if "r" not in perms or end - start > 1 << 28:
                continue
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            if chunk and needle in chunk:
                found.append([pid, "mem"])
                break
run.terminate()
run.wait()
json.dump({"found": found, "visible": visible, "started": os.path.exists("started.txt")}, open("scan.json", "w"))
"""


@pytest.fixture
def granted(owner):  # type: ignore[no-untyped-def]
    ok(owner("grants", "add", "dev-db"))
    return owner


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def in_sandbox(owner, project: Path, script: str, timeout: float = WAIT) -> subprocess.CompletedProcess[bytes]:  # type: ignore[no-untyped-def]
    proc, _ = sandboxed_session.start(owner.env, str(project), ["sh", "-c", script], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        tree = subprocess.run(["ps", "-eo", "pid,ppid,pgid,stat,args", "--forest"], capture_output=True, text=True)
        proc.kill()
        proc.communicate()
        raise AssertionError(f"the sandboxed agent did not finish; processes:\n{tree.stdout[-6000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_run_masks_the_output_returns_the_exit_code_and_writes_into_the_project(granted, broker, project):
    done = in_sandbox(granted, project, 'aegis-vault run --need dev-db -- sh -c \'echo "value=$DEV_DB"; '
                                        'echo "$DEV_DB" >&2; echo made > made.txt; exit 7\'; echo "rc=$?"')
    assert done.returncode == 0, done.stderr[-2000:]
    assert leaked_forms(done.stdout + done.stderr, DEV_DB) == []
    assert b"value=[aegis:dev-db]" in done.stdout and b"[aegis:dev-db]" in done.stderr
    assert b"rc=7" in done.stdout
    assert b"masked 2 occurrence(s)" in done.stderr
    assert (project / "made.txt").read_text() == "made\n"
    runs = [e for e in audit_entries(granted.env) if e["operation"] == "run"]
    assert runs[-1]["detail"]["exit_code"] == 7 and runs[-1]["detail"]["masked"] == {"dev-db": 2}
    assert runs[-1]["detail"]["sandboxed"] is True
    assert leaked_forms(json.dumps(audit_entries(granted.env)).encode(), DEV_DB) == []


def test_the_value_is_nowhere_the_agent_can_look(granted, broker, project):
    (project / "needle.hex").write_text(DEV_DB.encode().hex())
    (project / "scan.py").write_text(SCAN)
    done = in_sandbox(granted, project, f"{sys.executable} scan.py")
    assert done.returncode == 0, done.stderr[-2000:]
    scan = json.loads((project / "scan.json").read_text())
    assert scan["started"], "the run never started"
    assert len(scan["visible"]) >= 3  # it did look: its shell, its aegis-vault run, the sandbox's init
    assert scan["found"] == []


def test_ctrl_c_reaches_the_child_on_pipes(granted, broker, project):
    done = in_sandbox(granted, project, (
        "aegis-vault run --need dev-db -- sh -c 'trap \"echo got-int > int.txt; exit 5\" INT; echo ready > ready.txt; "
        "while :; do sleep 0.05; done' & "
        "i=0; while [ ! -e ready.txt ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; "
        "kill -INT $!; wait $!; echo \"rc=$?\""))
    assert done.returncode == 0, done.stderr[-2000:]
    assert (project / "int.txt").read_text() == "got-int\n"
    assert b"rc=5" in done.stdout


def test_a_vanished_client_stops_the_child(granted, broker, project):
    done = in_sandbox(granted, project, (
        "aegis-vault run --need dev-db -- sh -c 'trap \"echo got-term > term.txt; exit 0\" TERM; "
        "echo ready > ready.txt; while :; do sleep 0.05; done' & "
        "i=0; while [ ! -e ready.txt ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; kill -KILL $!"))
    assert done.returncode == 0, done.stderr[-2000:]
    wait_until(lambda: (project / "term.txt").exists(), "the child to get SIGTERM", timeout=10)


def _read_until(fd: int, wanted: bytes, timeout: float = WAIT) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"never saw {wanted!r}; saw {seen[-500:]!r}")
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    if wanted not in seen:
        raise AssertionError(f"never saw {wanted!r}; saw {seen[-500:]!r}")
    return seen


def test_under_a_terminal_the_child_gets_one_and_ctrl_c(granted, broker, project):
    script = ("aegis-vault run --need dev-db -- python3 -c 'import sys; print(\"tty\", sys.stdin.isatty())'; "
              "aegis-vault run --need dev-db -- sh -c 'trap \"echo got-int > int.txt; exit 4\" INT; echo ready; "
              "while :; do sleep 0.05; done'; echo \"rc=$?\"; sleep 0.2")
    info = str(project / ".session-info.json")
    env = {k: v for k, v in granted.env.items() if k != "AEGIS_VAULT_KEY"}
    env["PYTHONPATH"] = os.pathsep.join([sandboxed_session.ROOT, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["TERM"] = "xterm"
    pid, master = pty.fork()
    if pid == 0:
        os.chdir(project)
        os.execve(sys.executable, [sys.executable, "-m", "tests.support.sandboxed_session", info, "acme/dev", "--",
                                   "sh", "-c", script], env)
    try:
        seen = _read_until(master, b"ready")
        assert b"tty True" in seen
        os.write(master, b"\x03")
        seen += _read_until(master, b"rc=4")
        assert (project / "int.txt").read_text() == "got-int\n"
        assert leaked_forms(seen, DEV_DB) == []
    finally:
        _drain(master)
        os.close(master)
        _reap(pid)


def _drain(fd: int, timeout: float = 10.0) -> None:
    """Read what is left until the other side closes (the session ends on its own)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and select.select([fd], [], [], 0.2)[0]:
        try:
            if not os.read(fd, 4096):
                return
        except OSError:
            return


def _reap(pid: int) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
