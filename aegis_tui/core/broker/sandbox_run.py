"""The broker's side of ``run`` in a sandboxed session: start the runner, hand it what to
run, pass on the client's signals, stop it if the client goes, read its report.

The runner (``core/sandbox/runner``) is a child of the broker, so it and the command it
starts are outside the agent's PID namespace: nothing in the agent's sandbox can see,
ptrace or read ``/proc`` of the process that holds the values. Its stdin, stdout and
stderr are the client's (received over the session socket), so output goes straight to
the agent, masked, without passing through the broker. The values travel on a pipe,
never in argv or the runner's own environment.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import subprocess
import sys
from typing import Any

from aegis_tui.core.broker.wire import dumps, loads
from aegis_tui.core.errors import AegisError

KILL_AFTER_SECONDS = 3.0  # a client that vanished: SIGTERM to the run, SIGKILL this long after
_MAX_REPORT = 1 << 20


async def run_in_sandbox(link: Any, launch: dict[str, Any], masks: dict[str, list[bytes]]) -> dict[str, Any]:
    """Run ``launch`` (env, values, command, program, cwd) in ``link``'s sandbox plan with the
    client's fds; the runner's report (exit code or signal, duration, masked counts)."""
    loop = asyncio.get_running_loop()
    config = dumps({"env": launch["env"], "command": launch["command"], "program": launch["program"],
                    "cwd": launch["cwd"], "plan": link.plan,
                    "masks": {name: [base64.b64encode(v).decode() for v in values] for name, values in masks.items()}})
    config_r, config_w = os.pipe()
    report_r, report_w = os.pipe()
    try:
        runner = subprocess.Popen(
            [sys.executable, "-m", "aegis_tui.core.sandbox.runner", str(config_r), str(report_w)],
            stdin=link.fds[0], stdout=link.fds[1], stderr=link.fds[2], pass_fds=(config_r, report_w),
            env=_runner_env(), cwd="/", close_fds=True)
    except OSError as error:
        for fd in (config_r, config_w, report_r, report_w):
            os.close(fd)
        raise AegisError(f"could not start the sandboxed run ({error.strerror})") from None
    os.close(config_r)
    os.close(report_w)
    link.close()  # the runner has them now
    killer: asyncio.TimerHandle | None = None

    def send(signum: int) -> None:
        if runner.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                runner.send_signal(signum)

    def client_gone(_: object) -> None:
        nonlocal killer
        send(signal.SIGTERM)
        killer = loop.call_later(KILL_AFTER_SECONDS, send, signal.SIGKILL)

    link.on_signal = send
    link.gone.add_done_callback(client_gone)
    try:
        await asyncio.to_thread(_write_all, config_w, config.encode())
        raw = await asyncio.to_thread(_read_report, report_r)
        await asyncio.to_thread(runner.wait)
    finally:
        link.on_signal = None
        link.gone.remove_done_callback(client_gone)
        if killer is not None:
            killer.cancel()
        if runner.poll() is None:
            runner.kill()
            await asyncio.to_thread(runner.wait)
    try:
        report = loads(raw)
        if not isinstance(report, dict):
            raise ValueError("not an object")
    except ValueError:
        raise AegisError("the sandboxed run ended without a report") from None
    if "error" in report:
        raise AegisError(str(report["error"])[:500])
    return {"exit_code": report.get("exit_code"), "signal": report.get("signal"),
            "duration": float(report.get("duration", 0.0)), "masked": dict(report.get("masked", {}))}


def _runner_env() -> dict[str, str]:
    """The runner's own environment holds no value (those come on the pipe); only what
    finds this installation and the tools."""
    keep = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "HOME", "XDG_RUNTIME_DIR")
    return {name: os.environ[name] for name in keep if name in os.environ}


def _write_all(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BrokenPipeError:
        pass  # the runner died before reading: its report (none) says so
    finally:
        os.close(fd)


def _read_report(fd: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        while (chunk := os.read(fd, 65536)) and size < _MAX_REPORT:
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)
