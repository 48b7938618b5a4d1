"""A real ``aegis-vault serve`` broker subprocess for end-to-end tests, and helpers
around it: a private runtime folder per test, the CLI run in any folder, the audit log.

Each test gets its own ``XDG_RUNTIME_DIR`` (a short, private 0700 folder: a Unix
socket path is limited to 107 bytes, and pytest's folders are long), so brokers of
parallel tests never meet. ``Broker.start`` waits until the broker answers on its
socket instead of sleeping a fixed time; ``Broker.stop`` (always called from a
finalizer) sends SIGTERM and kills it if it does not go.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

START_TIMEOUT = 60.0  # a loaded 2-core machine may take a while to import and unlock
STOP_TIMEOUT = 30.0
KEY_VARIABLE = "AEGIS_VAULT_KEY"
T = TypeVar("T")


@dataclass
class Outcome:
    """A finished ``aegis-vault`` (or other) process."""

    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")


def private_runtime_dir() -> str:
    """A new private (0700) folder to use as ``XDG_RUNTIME_DIR``; the caller removes it."""
    folder = tempfile.mkdtemp(prefix="aegis-rt-", dir="/tmp")
    os.chmod(folder, 0o700)
    return folder


def remove_runtime_dir(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def without_key(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` minus ``AEGIS_VAULT_KEY``: a process that cannot unlock the vault itself."""
    return {key: value for key, value in env.items() if key != KEY_VARIABLE}


def aegis(env: Mapping[str, str], *args: str, cwd: Path | str | None = None, input: bytes | None = None,
          timeout: float = 120) -> Outcome:
    """``python -m aegis_tui ARGS`` with exactly ``env``, in ``cwd``, without a terminal."""
    proc = subprocess.run([sys.executable, "-m", "aegis_tui", *args], input=input,
                          stdin=subprocess.DEVNULL if input is None else None, capture_output=True,
                          env=dict(env), cwd=cwd, start_new_session=True, timeout=timeout)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def audit_entries(env: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every audit entry, read by the vault's owner (``env`` must hold the key)."""
    result = aegis(env, "audit", "export", "--jsonl")
    assert result.returncode == 0, result.err
    return [json.loads(line) for line in result.out.splitlines() if line.strip()]


def wait_until(check: Callable[[], T | None], what: str, *, timeout: float = START_TIMEOUT,
               interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def socket_answers(path: str) -> bool:
    """Does a broker answer ``hello`` on the socket at ``path``?"""
    if not os.path.exists(path):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(path)
            sock.sendall(b'{"v":1,"id":1,"op":"hello","args":{}}\n')
            reply = sock.makefile("rb").readline()
    except OSError:
        return False
    return reply.startswith(b"{") and json.loads(reply).get("ok") is True


class Broker:
    """``aegis-vault serve`` as a subprocess of the test, on the vault ``env`` names.

    ``env`` must contain ``XDG_RUNTIME_DIR`` (private to the test) and the key to unlock
    the vault; the broker's stderr goes to a file (``log``) nobody has to drain.
    """

    def __init__(self, env: Mapping[str, str], log: Path, *, approval_timeout: str | None = "2s") -> None:
        if "XDG_RUNTIME_DIR" not in env:
            raise ValueError("give the broker a private XDG_RUNTIME_DIR")
        self.env = dict(env)
        self.log = log
        self.approval_timeout = approval_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.folder = os.path.join(self.env["XDG_RUNTIME_DIR"], "aegis-vault")

    def sockets(self) -> list[str]:
        try:
            return sorted(os.path.join(self.folder, name) for name in os.listdir(self.folder)
                          if name.endswith(".sock"))
        except FileNotFoundError:
            return []

    @property
    def socket_path(self) -> str:
        found = self.sockets()
        assert len(found) == 1, f"expected one broker socket, found {len(found)}"
        return found[0]

    def serve_argv(self) -> list[str]:
        args = ["serve"] + (["--approval-timeout", self.approval_timeout] if self.approval_timeout else [])
        return [sys.executable, "-m", "aegis_tui", *args]

    def launch(self, log: Any) -> subprocess.Popen[bytes]:
        """Start ``serve`` writing to ``log``; variants change how (limits, capabilities)."""
        return subprocess.Popen(self.serve_argv(), env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)

    def start(self) -> Broker:
        with open(self.log, "wb") as log:
            self.proc = self.launch(log)

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}: {self.log_text()}")
            found = self.sockets()
            return len(found) == 1 and socket_answers(found[0])

        wait_until(ready, "the broker to answer on its socket")
        return self

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, and the exit code once it has gone (killed if it takes too long)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        return self.proc.returncode

    def stop(self) -> None:
        if self.proc is not None:
            self.terminate()

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def isolate(env: dict[str, str], add_finalizer: Callable[[Callable[[], None]], None]) -> dict[str, str]:
    """Give the ``aegis-vault`` processes of one test a private ``XDG_RUNTIME_DIR`` (removed
    afterwards) and this virtualenv's scripts first on ``PATH`` (so a child can run
    ``aegis-vault`` and git can run ``git-credential-aegis``). Changes ``env`` in place."""
    folder = private_runtime_dir()
    add_finalizer(lambda: remove_runtime_dir(folder))
    env["XDG_RUNTIME_DIR"] = folder
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    return env
