"""The broker's side of ``run`` in a sandboxed session: hand the run to the runner server
(``core/sandbox/runner``), pass on the client's signals, stop the run if the client goes,
read its report.

The runner server is a child of the broker, started once (at the first sandboxed
session) and kept: starting Python and importing the masker for every run would cost
more than a run may add. It and the runners it forks are outside every agent's PID
namespace, so nothing in a sandbox can see, ptrace or read ``/proc`` of the process that
holds the values. A run's stdin, stdout and stderr are the client's (received over the
session socket), so output goes straight to the agent, masked, without passing through
the broker. The values travel on the run's own socket, never in argv or an environment
of ours.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
from typing import Any

from aegis_tui.core.broker.wire import dumps, loads
from aegis_tui.core.errors import AegisError

KILL_AFTER_SECONDS = 3.0  # a client that vanished: SIGTERM to the run, SIGKILL this long after
KILL_NOW = 0  # runner.KILL_NOW
_MAX_REPORT = 1 << 20


class RunnerServer:
    """The one runner server of this broker, started when first needed (and again should
    it have died)."""

    def __init__(self) -> None:
        self._control: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def ensure(self) -> socket.socket:
        if self._control is not None and self._process is not None and self._process.poll() is None:
            return self._control
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "aegis_tui.core.sandbox.runner", str(theirs.fileno())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=None, pass_fds=(theirs.fileno(),),
                env=_runner_env(), cwd="/", close_fds=True, start_new_session=True)
        except OSError as error:
            ours.close()
            raise AegisError(f"could not start the sandboxed runs' runner ({error.strerror})") from None
        finally:
            theirs.close()
        self._control = ours
        return ours

    def close(self) -> None:
        """Closing the control socket ends the server; runs under way end when their own
        sockets close (the command gets SIGTERM, then SIGKILL)."""
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=2)
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
            self._process = None

    async def run(self, link: Any, launch: dict[str, Any], masks: dict[str, list[bytes]]) -> dict[str, Any]:
        """Run ``launch`` (env, command, program, cwd) in ``link``'s sandbox plan with the
        client's fds; the runner's report (exit code or signal, duration, masked counts)."""
        loop = asyncio.get_running_loop()
        config = dumps({"env": launch["env"], "command": launch["command"], "program": launch["program"],
                        "cwd": launch["cwd"], "plan": link.plan,
                        "masks": {name: [base64.b64encode(v).decode() for v in values]
                                  for name, values in masks.items()}}).encode()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            rights = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in (*link.fds, theirs.fileno()))
            try:
                self.ensure().sendmsg([b"run"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
            except OSError:  # the server died since: once more with a new one
                self.close()
                self.ensure().sendmsg([b"run"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
        except OSError as error:
            mine.close()
            raise AegisError(f"could not hand the run to its runner ({error.strerror})") from None
        finally:
            theirs.close()
            link.close()  # the runner has them now
        mine.setblocking(False)
        return await _follow(loop, mine, link, config)


async def _follow(loop: asyncio.AbstractEventLoop, run: socket.socket, link: Any, config: bytes) -> dict[str, Any]:
    """Send the config, pass signals on, stop the run if the client goes, read the report."""
    killer: asyncio.TimerHandle | None = None

    def send(signum: int) -> None:
        with contextlib.suppress(OSError):
            run.send(signum.to_bytes(4, "big"))

    def client_gone(_: object) -> None:
        nonlocal killer
        send(signal.SIGTERM)
        killer = loop.call_later(KILL_AFTER_SECONDS, send, KILL_NOW)

    link.on_signal = send
    link.gone.add_done_callback(client_gone)
    chunks: list[bytes] = []
    try:
        await loop.sock_sendall(run, len(config).to_bytes(4, "big") + config)
        size = 0
        while chunk := await loop.sock_recv(run, 65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX_REPORT:
                break
    except OSError:
        pass
    finally:
        link.on_signal = None
        link.gone.remove_done_callback(client_gone)
        if killer is not None:
            killer.cancel()
        run.close()
    try:
        report = loads(b"".join(chunks))
        if not isinstance(report, dict):
            raise ValueError("not an object")
    except ValueError:
        raise AegisError("the sandboxed run ended without a report") from None
    if "error" in report:
        raise AegisError(str(report["error"])[:500])
    return {"exit_code": report.get("exit_code"), "signal": report.get("signal"),
            "duration": float(report.get("duration") or 0.0), "masked": dict(report.get("masked") or {})}


def _runner_env() -> dict[str, str]:
    """The runner's own environment holds no value (those come with each run); only what
    finds this installation and the tools."""
    keep = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "HOME")
    return {name: os.environ[name] for name in keep if name in os.environ}
