"""The process that starts the ``run`` children of sandboxed sessions, each in a sibling sandbox.

Inside a sandboxed session, ``aegis-vault run`` must not hold the values it asks for:
everything in the agent's sandbox can read everything else there. So the broker starts
the command instead, through this module, outside the agent's PID namespace.

Starting Python, importing the masker and bwrap's helpers and probing bwrap costs far
more than the 40 ms a ``run`` may add; so the broker starts this module once
(``python -m aegis_tui.core.sandbox.runner CONTROL_FD``) and it forks one runner per
run. The control socket (SOCK_SEQPACKET) carries, for each run, the client's stdin,
stdout and stderr and one end of a socket for that run alone (SCM_RIGHTS). The forked
runner makes those its 0, 1 and 2, leaves the broker's session (``setsid``), reads
from its run socket what to run (the environment with the values, the values to mask,
the sandbox plan, the command and folder), and runs the command with ``run_child`` in
its own bwrap sandbox made from the session's plan: its own PID namespace (so two runs
cannot read each other's environment), the same files as the agent (so what it writes
lands in the project). Its report (exit code or signal, duration, occurrences masked per
name; or ``{"error": ...}``, never holding a value) goes back on the run socket.

Signals: the broker writes each signal the client passes on (4 bytes) to the run
socket; the runner raises it in itself and ``run_child``'s relay hands it to the
command. If the run socket closes first (the client or the broker went away), the
command gets SIGTERM and, 3 seconds later, SIGKILL.

Every process here is undumpable (``protect_process``, inherited by the forks) and
outside the agent's PID namespace: nothing in the sandbox can see, ptrace or read
``/proc`` of a process that holds a value.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

import _signal

from aegis_tui.core.broker.wire import dumps, loads
from aegis_tui.core.errors import AegisError, UsageError
from aegis_tui.core.hardening import protect_process
from aegis_tui.core.redaction import Masker
from aegis_tui.core.run.child import run_child
from aegis_tui.core.sandbox.bwrap import bwrap_argv, find_bwrap
from aegis_tui.core.sandbox.plan import SandboxPlan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KILL_AFTER_SECONDS = 3.0
SIGNAL_BYTES = 4
KILL_NOW = 0  # the broker's "stop it now" (SIGKILL to the command, then the runner ends)
_STOP_REQUESTS = "HUP,INT,QUIT,TERM"
_FDS_PER_RUN = 4  # stdin, stdout, stderr, the run socket


def sibling_argv(plan_data: dict[str, Any], command: list[str], cwd: str) -> list[str]:
    """The sandbox command line for the run's child: the agent's plan without its
    session socket (the child is not in the agent's process tree, so that socket would
    refuse it anyway), and without ``--new-session``: the child must stay in the process
    group that receives the client's Ctrl-C. Its controlling terminal, if any, is the
    runner's own private PTY, so there is no terminal of the user's to type into."""
    plan = SandboxPlan.from_dict({**plan_data, "session_socket": None})
    argv = bwrap_argv(plan, [*_with_default_signals(), *command], cwd=cwd)
    split = argv.index("--")
    return [arg for arg in argv[:split] if arg != "--new-session"] + argv[split:]


def _ignore_stop_requests() -> None:
    """bwrap must outlive a Ctrl-C: it does not pass signals on, and when it dies its
    sandbox is killed (``--die-with-parent``) before the command can act on the signal.
    So bwrap is started ignoring them (``run_child`` keeps an inherited "ignore"), the
    relay sends them to the whole group, and the command gets them with their defaults
    back (``_with_default_signals``): it handles them as it would outside, and its exit
    code comes back through bwrap."""
    for name in _STOP_REQUESTS.split(","):
        _signal.signal(getattr(_signal, "SIG" + name), _signal.SIG_IGN)


def _with_default_signals() -> list[str]:
    """The prefix that gives the command default signal dispositions again (GNU env)."""
    return ["env", f"--default-signal={_STOP_REQUESTS}", "--"]


# -- the server: one per broker ---------------------------------------------------------------
def serve(control_fd: int) -> int:
    """Fork a runner for each run the broker sends, until the broker closes the socket."""
    protect_process()
    find_bwrap()  # probed once here, not once per run
    control = socket.socket(fileno=control_fd)
    _signal.signal(_signal.SIGCHLD, _signal.SIG_IGN)  # runners are reaped by the kernel
    space = socket.CMSG_SPACE(_FDS_PER_RUN * 4)
    while True:
        try:
            data, ancillary, _, _ = control.recvmsg(16, space)
        except InterruptedError:
            continue
        fds = _fds_of(ancillary)
        if not data:
            _close(fds)
            return 0
        if len(fds) != _FDS_PER_RUN:
            _close(fds)
            continue
        pid = os.fork()
        if pid == 0:
            control.close()
            _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
            code = 1
            try:
                code = _runner(fds)
            finally:
                os._exit(code)
        _close(fds)


def _fds_of(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % 4
            fds += [int.from_bytes(payload[i:i + 4], sys.byteorder, signed=True) for i in range(0, usable, 4)]
    return fds


def _close(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


# -- one runner: one run -------------------------------------------------------------------
def _runner(fds: list[int]) -> int:
    os.setsid()
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)  # inheritable: the command gets them
    _close([fd for fd in fds[:3] if fd > 2])
    run = socket.socket(fileno=fds[3])
    report: dict[str, Any]
    try:
        config = loads(_read_frame(run))
        report = _run(config, run)
    except Exception as error:  # noqa: BLE001 - reported by type and message, which hold no value
        report = {"error": str(error) if isinstance(error, AegisError) else
                  f"the sandboxed run failed to start ({type(error).__name__})"}
    try:
        run.sendall(dumps(report).encode())
    except OSError:
        pass
    return 0


def _read_frame(run: socket.socket) -> bytes:
    size = int.from_bytes(_read_exact(run, 4), "big")
    return _read_exact(run, size)


def _read_exact(run: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = run.recv(min(count - len(data), 1 << 20))
        if not chunk:
            raise AegisError("the broker went away before the run started")
        data += chunk
    return bytes(data)


def _run(config: dict[str, Any], run: socket.socket) -> dict[str, Any]:
    from binascii import a2b_base64

    masker = Masker({name: [a2b_base64(value) for value in values] for name, values in config["masks"].items()})
    streams: list[Any] = []

    def open_channel(channel: int) -> Any:
        stream = masker.stream()
        streams.append(stream)
        return stream

    program = config["program"]
    if "=" in program:
        raise UsageError(f"cannot run {os.path.basename(program)!r} in the sandbox: its path holds '='")
    argv = sibling_argv(config["plan"], [program, *config["command"][1:]], config["cwd"])
    _ignore_stop_requests()
    threading.Thread(target=_take_signals, args=(run,), daemon=True).start()
    result = run_child(argv, config["env"], filters=open_channel, use_pty=os.isatty(1), program=argv[0])
    hits: dict[str, int] = {}
    for stream in streams:
        for label, count in stream.hits.items():
            hits[label] = hits.get(label, 0) + count
    return {"exit_code": result.exit_code, "signal": result.signal, "duration": result.duration, "masked": hits}


def _take_signals(run: socket.socket) -> None:
    """The broker's signals, raised here so ``run_child``'s relay passes them on; the run
    socket closing means nobody is left to read the output: stop the command."""
    while True:
        try:
            data = _read_exact(run, SIGNAL_BYTES)
        except (AegisError, OSError):
            break
        signum = int.from_bytes(data, "big")
        if signum == KILL_NOW:
            _kill_everything()
        elif 0 < signum < 65:
            os.kill(os.getpid(), signum)
    os.kill(os.getpid(), _signal.SIGTERM)
    time.sleep(KILL_AFTER_SECONDS)
    _kill_everything()


def _kill_everything() -> None:
    """SIGKILL to the command's process group (each child of this runner leads one),
    then this runner ends."""
    for pid in _children():
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, _signal.SIGKILL)
            except OSError:
                pass
    os._exit(1)


def _children() -> list[int]:
    found = []
    try:
        with open(f"/proc/self/task/{os.getpid()}/children", encoding="ascii") as handle:
            found = [int(pid) for pid in handle.read().split()]
    except OSError:
        pass
    return found


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1])))
