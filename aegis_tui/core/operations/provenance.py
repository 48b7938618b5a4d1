"""What the broker can verify about the process that asks for a value, from the kernel.

A client may claim anything; the broker only believes ``/proc``. ``inject`` is answered
only to a real ``aegis-vault run`` (this installation's interpreter running this
installation's entry point, with ``run`` and the claimed command on its own command
line), which then starts exactly that command. A git credential is an ``inject`` only
when git's own HTTP transport (``git-remote-http(s)``, started by ``git fetch``, ``push``,
``clone`` or ``ls-remote``) is the one asking; ``git credential fill`` is a reveal.
Reading these files costs a few tens of microseconds (see docs/benchmarks.md).
"""

from __future__ import annotations

import os
import sys

from aegis_tui.core.agents.grants import INJECT, REVEAL, Use
from aegis_tui.core.processes import PeerInfo
from aegis_tui.core.errors import RefusedError

_GIT_TRANSPORTS = {"git-remote-http", "git-remote-https"}
_GIT_FETCHING = {"fetch", "push", "clone", "ls-remote", "remote-https", "remote-http"}
_BETWEEN_GIT_AND_HELPER = {"git", "sh", "dash", "bash"}
_OUR_MODULES = {"aegis_tui", "aegis_tui.cli", "aegis_tui.__main__"}


def _interpreter() -> str:
    return os.path.realpath(sys.executable)


def _entry_points() -> set[str]:
    """The console scripts of this installation (beside its interpreter)."""
    folder = os.path.dirname(sys.executable)
    return {os.path.realpath(os.path.join(folder, name)) for name in ("aegis-vault",)}


def _our_arguments(cmdline: tuple[str, ...]) -> list[str] | None:
    """The arguments after our entry point, when ``cmdline`` runs aegis-vault through this
    installation's interpreter; ``None`` otherwise."""
    args = list(cmdline[1:])
    while args and args[0].startswith("-") and args[0] not in ("-m",):
        if args[0] in ("-c",):
            return None
        args.pop(0)  # interpreter options such as -I, -S, -X importtime
    if len(args) >= 2 and args[0] == "-m" and args[1] in _OUR_MODULES:
        return args[2:]
    if args and os.path.realpath(args[0]) in _entry_points():
        return args[1:]
    return None


def verify_run_client(peer: PeerInfo, command: list[str], program: str) -> Use:
    """The ``Use`` of an ``inject`` request, or a refusal: the peer must be this aegis-vault
    running ``run`` with ``command`` at the end of its own command line, and ``program``
    the executable that command resolves to."""
    if not command or not program:
        raise RefusedError("inject needs the command that will receive the value")
    if os.path.realpath(peer.exe) != _interpreter():
        raise RefusedError("values are injected only into commands that aegis-vault run starts")
    ours = _our_arguments(peer.cmdline)
    if ours is None or "run" not in ours or len(ours) < len(command) or ours[-len(command):] != command:
        raise RefusedError("values are injected only into commands that aegis-vault run starts")
    if not (os.path.isabs(program) and os.path.isfile(program) and os.access(program, os.X_OK)):
        raise RefusedError(f"{os.path.basename(program)!r} is not an executable file")
    if os.path.basename(command[0]) != os.path.basename(program) and command[0] != program:
        raise RefusedError("the program does not match the command")
    return Use(INJECT, tuple(command), os.path.realpath(program), peer.cwd)


def verify_run_reporter(peer: PeerInfo) -> None:
    """Reports and masking streams come from ``aegis-vault run`` itself."""
    ours = _our_arguments(peer.cmdline) if os.path.realpath(peer.exe) == _interpreter() else None
    if ours is None or "run" not in ours:
        raise RefusedError("only aegis-vault run reports runs and masks their output")


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read(65536)
    except OSError:
        return []
    return raw.decode("utf-8", "surrogateescape").split("\x00")[:-1]


def _git_verb(argv: list[str]) -> str:
    """``push`` of ``git -c http.extraHeader=x -C repo push origin``."""
    args = iter(argv[1:])
    for arg in args:
        if arg in ("-c", "-C", "--git-dir", "--work-tree", "--namespace", "--exec-path"):
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return ""


def git_use(peer: PeerInfo) -> Use:
    """``inject`` when git's HTTP transport asks (under a fetch, push, clone or ls-remote),
    else ``reveal``: whoever else runs the helper gets the raw password back."""
    chain = peer.chain
    for index, process in enumerate(chain[1:], start=1):
        name = os.path.basename(process.exe)
        if name in _GIT_TRANSPORTS:
            parent = chain[index + 1] if index + 1 < len(chain) else None
            if parent is None or os.path.basename(parent.exe) != "git":
                break
            if _git_verb(_cmdline(parent.pid)) not in _GIT_FETCHING:
                break
            return Use(INJECT, tuple(_cmdline(process.pid)), os.path.realpath(process.exe), peer.cwd)
        if name not in _BETWEEN_GIT_AND_HELPER:
            break
    return Use(REVEAL, (), "", peer.cwd)
