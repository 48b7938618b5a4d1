"""Attack: an agent of the same user reads the key out of ``/proc/PID/environ`` of a
process that holds it, or forces that process to dump its memory (and every value in it)
to a core file.

Before issue 11 this worked against every aegis-vault process: ``serve`` (the broker,
which holds every decrypted value it served), ``session exec`` and the ``run`` client
both had ``AEGIS_VAULT_KEY`` in a readable environment, and ``prlimit --core=unlimited
--pid PID`` then ``kill -SEGV PID`` left a core in the process's working folder
(``core_pattern`` is ``core`` here). Now each of them makes itself non-dumpable and
drops its core limit to (0, 0) before it reads a key or a value.

The attacker and its targets run as the SAME unprivileged identity: under root (CI) both
are uid 0 with every capability dropped (``setpriv --bounding-set=-all``), which the
kernel treats exactly as two processes of one ordinary user: without ``CAP_SYS_PTRACE``
and ``CAP_SYS_RESOURCE`` only the uid match and the target's dumpable flag decide. (uid
65534 would do as well, but it cannot run this interpreter when Python lives in a
folder only root can enter, as under pyenv in /root.) Root with its capabilities reads
everything and would prove nothing. The broker also runs unprivileged, so what it can
still learn about a protected client is what a user's broker learns.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pty
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.broker import isolate, socket_answers, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl are Linux's")

KEY = "5f" * 32
VALUE = "ghp_memory" + "91c3e5" * 4
WAIT = 60.0

# What the attacker does, from its own process: read the environment and open the memory.
PEEK = """
import json, sys
pid = int(sys.argv[1])
found = {}
for name in ("environ", "mem"):
    try:
        with open(f"/proc/{pid}/{name}", "rb") as handle:
            found[name] = handle.read(1 << 20).decode("latin-1") if name == "environ" else "opened"
    except OSError as error:
        found[name + "_error"] = error.errno
print(json.dumps(found))
"""


def unprivileged(argv: list[str]) -> list[str]:
    """``argv`` run as this user without any capability (see the module docstring)."""
    if os.geteuid() != 0:
        return argv
    return ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", "--", *argv]


def ok(result):  # type: ignore[no-untyped-def]
    assert result.returncode == 0, (result.returncode, result.err)
    return result


def children_of(pid: int) -> list[int]:
    found = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for thread in threads:
        with contextlib.suppress(OSError):
            found += [int(x) for x in Path(f"/proc/{pid}/task/{thread}/children").read_text().split()]
    return found


def cores_in(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name == "core" or name.startswith("core."))


@dataclass
class Target:
    """An aegis-vault process of the user, holding the key or a value, in its own folder."""

    what: str
    proc: subprocess.Popen[bytes]
    cwd: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Lab:
    """A vault that unlocks with ``AEGIS_VAULT_KEY`` and holds one credential; targets
    started in it; everything they started is ended afterwards."""

    def __init__(self, cli, tmp_path: Path, add_finalizer) -> None:  # type: ignore[no-untyped-def]
        isolate(cli.env, add_finalizer)
        cli.env["AEGIS_VAULT_KEY"] = KEY
        ok(cli("init", "--no-passphrase"))
        ok(cli("add", "gh", "--context", "acme/dev", input=VALUE))
        self.cli = cli
        self.tmp = tmp_path
        self.started: list[subprocess.Popen[bytes]] = []
        self.pids: list[int] = []
        add_finalizer(self.close)

    def start(self, what: str, *args: str, key: bool = True, ready=None) -> Target:  # type: ignore[no-untyped-def]
        cwd = self.tmp / f"cwd-{what.replace(' ', '-')}"
        cwd.mkdir()
        log = self.tmp / f"{what.replace(' ', '-')}.log"
        env = dict(self.cli.env)
        if not key:
            env.pop("AEGIS_VAULT_KEY")
        with open(log, "wb") as out:
            proc = subprocess.Popen(unprivileged([sys.executable, "-m", "aegis_tui", *args]), env=env, cwd=cwd,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        return self._started(what, proc, cwd, log, ready)

    def start_app(self) -> Target:
        """``aegis-vault`` (the app) on a terminal of its own; it unlocks with the key."""
        what = "app"
        cwd = self.tmp / "cwd-app"
        cwd.mkdir()
        log = self.tmp / "app.log"
        master, terminal = pty.openpty()
        termios.tcsetwinsize(terminal, (40, 120))
        env = {**self.cli.env, "TERM": "xterm-256color"}
        proc = subprocess.Popen(unprivileged([sys.executable, "-m", "aegis_tui"]), env=env, cwd=cwd, stdin=terminal,
                                stdout=terminal, stderr=terminal, start_new_session=True)
        os.close(terminal)
        shown = bytearray()

        def drain() -> None:  # the app must never block on a full terminal
            with open(log, "wb") as out:
                while True:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:
                        break
                    if not chunk:
                        break
                    shown.extend(chunk)
                    out.write(chunk)
            os.close(master)

        threading.Thread(target=drain, daemon=True).start()
        # Its first output comes after protect_process: the first thing the launcher does.
        return self._started(what, proc, cwd, log, lambda _: len(shown) > 0)

    def _started(self, what, proc, cwd, log, ready) -> Target:  # type: ignore[no-untyped-def]
        self.started.append(proc)
        target = Target(what, proc, cwd, log)

        def is_ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{what} exited with {proc.returncode}: {target.log_text()}")
            return bool(ready(target)) if ready else bool(children_of(proc.pid))

        wait_until(is_ready, f"{what} to be running", timeout=WAIT)
        self.pids += children_of(proc.pid)
        return target

    def broker(self) -> Target:
        def answers(target: Target) -> bool:
            folder = Path(self.cli.env["XDG_RUNTIME_DIR"]) / "aegis-vault"
            sockets = list(folder.glob("*.sock")) if folder.exists() else []
            return len(sockets) == 1 and socket_answers(str(sockets[0]))

        return self.start("serve", "serve", "--approval-timeout", "2s", ready=answers)

    def attack_environ(self, target: Target) -> dict:
        result = subprocess.run(unprivileged([sys.executable, "-c", PEEK, str(target.pid)]), capture_output=True,
                                text=True, timeout=WAIT)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def attack_core(self, target: Target) -> str:
        """Raise the target's core limit and crash it; what ``prlimit`` said."""
        raised = subprocess.run(unprivileged(["prlimit", "--core=unlimited", "--pid", str(target.pid)]),
                                capture_output=True, text=True, timeout=WAIT)
        subprocess.run(unprivileged(["kill", "-SEGV", str(target.pid)]), check=True, timeout=WAIT)
        target.proc.wait(timeout=WAIT)
        return f"prlimit exit {raised.returncode}: {raised.stderr.strip()}"

    def close(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=WAIT)
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for core in self.tmp.glob("cwd-*/core*"):
            core.unlink()


@pytest.fixture
def lab(cli, tmp_path: Path, request) -> Iterator[Lab]:  # type: ignore[no-untyped-def]
    yield Lab(cli, tmp_path, request.addfinalizer)


def start_target(lab: Lab, what: str) -> Target:
    if what == "serve":
        return lab.broker()
    if what == "run":  # no broker: the run client unlocks the vault with the key itself
        return lab.start("run", "run", "--need", "gh=TOKEN", "--", "sleep", "60")
    if what == "run through a broker":  # the key is the broker's; the client holds the value
        ok(lab.cli("grants", "add", "gh"))
        lab.broker()
        return lab.start("run through a broker", "run", "--need", "gh=TOKEN", "--", "sleep", "60", key=False)
    if what == "session exec":
        return lab.start("session exec", "session", "exec", "--context", "acme/dev", "--", "sleep", "60")
    if what == "app":
        return lab.start_app()
    raise AssertionError(what)


TARGETS = ["serve", "run", "run through a broker", "session exec", "app"]


@pytest.mark.parametrize("what", TARGETS)
def test_another_process_of_the_user_cannot_read_the_environment_or_memory(lab, what):
    target = start_target(lab, what)
    found = lab.attack_environ(target)
    leaked = KEY in found.get("environ", "") or VALUE in found.get("environ", "")
    assert not leaked, f"{what}: the attacker read the key from /proc/{target.pid}/environ"
    assert found.get("environ_error") == errno.EACCES, (what, sorted(found))
    assert found.get("mem_error") == errno.EACCES, (what, sorted(found))


@pytest.mark.parametrize("what", TARGETS)
def test_a_forced_crash_writes_no_core(lab, what):
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip(f"core_pattern is {pattern!r}: cores do not land in the crashing process's folder")
    target = start_target(lab, what)
    said = lab.attack_core(target)
    assert target.proc.returncode == -signal.SIGSEGV, (target.proc.returncode, target.log_text())
    assert cores_in(target.cwd) == [], f"{what} dumped core after the attacker's SIGSEGV ({said})"


def test_the_run_client_gets_its_value_from_an_unprivileged_broker_although_it_hides_itself(lab):
    # The other side of hiding: a broker of the same user cannot read a protected
    # client's /proc/PID/exe or cwd. run through the broker must still work.
    ok(lab.cli("grants", "add", "gh"))
    lab.broker()
    probe = lab.tmp / "probe"
    probe.mkdir()
    env = {k: v for k, v in lab.cli.env.items() if k != "AEGIS_VAULT_KEY"}
    started = time.monotonic()
    result = subprocess.run(unprivileged([sys.executable, "-m", "aegis_tui", "run", "--need", "gh=TOKEN", "--", "sh",
                                          "-c", 'test "$TOKEN" = "$EXPECTED" && echo same']),
                            env={**env, "EXPECTED": VALUE}, cwd=probe, capture_output=True, timeout=WAIT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    assert result.returncode == 0, (result.returncode, result.stderr.decode(errors="replace"))
    assert result.stdout == b"same\n"
    assert time.monotonic() - started < WAIT


CHILD_AFTER_UNLOCK = """
import argparse, os, subprocess
from aegis_tui.cli.unlock import open_unlocked
vault = open_unlocked(argparse.Namespace())
vault.close()
# A child started afterwards with the environment as it now is (hooks, git, editors).
print(subprocess.run(["sh", "-c", "echo ${AEGIS_VAULT_KEY:-none}"], capture_output=True, text=True).stdout.strip())
print(open_unlocked(argparse.Namespace()).vault_id != "")  # a second unlock still finds the key
"""


def test_once_the_cli_has_read_the_key_no_child_it_starts_inherits_it(lab):
    result = subprocess.run([sys.executable, "-c", CHILD_AFTER_UNLOCK], env=lab.cli.env, cwd=lab.tmp,
                            capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 0, result.stderr
    inherited, second_unlock = result.stdout.split()
    assert inherited == "none", "a child started after unlocking inherited AEGIS_VAULT_KEY"
    assert second_unlock == "True"
