"""The process that starts one ``run`` child of a sandboxed session, in a sibling sandbox.

Inside a sandboxed session, ``aegis-vault run`` must not hold the values it asks for:
everything in the agent's sandbox can read everything else there. So the broker starts
this module instead (``python -m aegis_tui.core.sandbox.runner CONFIG_FD REPORT_FD``),
outside the agent's PID namespace, with the client's stdin, stdout and stderr as its own
0, 1 and 2. It reads from CONFIG_FD what to run: the environment with the values, the
values to mask, the sandbox plan, the command and folder. It makes itself unreadable
(``protect_process``), leaves the broker's session and process group (``setsid``), and
runs the command through ``run_child`` in a sandbox made from the same plan as the
agent's (so the files it writes land where the agent expects), with its output masked.
What came of it (exit code or signal, duration, occurrences masked per name) goes to
REPORT_FD as one JSON object; a failure to start as ``{"error": "..."}``, which never
holds a value.

Signals the broker sends it (the client's SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH)
reach the child through ``run_child``'s relay.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def sibling_argv(plan_data: dict[str, Any], command: list[str], cwd: str) -> list[str]:
    """The sandbox command line for the run's child: the agent's plan without its
    session socket (the child is not in the agent's process tree, so that socket would
    refuse it anyway), and without ``--new-session``: the child must stay in the process
    group that receives the client's Ctrl-C. Its controlling terminal, if any, is the
    runner's own private PTY, so there is no terminal of the user's to type into."""
    from aegis_tui.core.sandbox.bwrap import bwrap_argv
    from aegis_tui.core.sandbox.plan import SandboxPlan

    plan = SandboxPlan.from_dict({**plan_data, "session_socket": None})
    argv = bwrap_argv(plan, command, cwd=cwd)
    split = argv.index("--")
    return [arg for arg in argv[:split] if arg != "--new-session"] + argv[split:]


def main(config_fd: int, report_fd: int) -> int:
    from aegis_tui.core.broker.wire import dumps, loads
    from aegis_tui.core.hardening import protect_process

    protect_process()  # before the values arrive
    os.setsid()
    report: dict[str, Any]
    try:
        config = loads(_read_all(config_fd))
        report = _run(config)
    except Exception as error:  # noqa: BLE001 - reported by type and message, which hold no value
        from aegis_tui.core.errors import AegisError

        report = {"error": str(error) if isinstance(error, AegisError) else
                  f"the sandboxed run failed to start ({type(error).__name__})"}
    os.write(report_fd, dumps(report).encode())
    os.close(report_fd)
    return 0


def _run(config: dict[str, Any]) -> dict[str, Any]:
    from binascii import a2b_base64

    from aegis_tui.core.redaction import Masker
    from aegis_tui.core.run.child import run_child

    masker = Masker({name: [a2b_base64(value) for value in values] for name, values in config["masks"].items()})
    streams: list[Any] = []

    def open_channel(channel: int) -> Any:
        stream = masker.stream()
        streams.append(stream)
        return stream

    command = [config["program"], *config["command"][1:]]
    argv = sibling_argv(config["plan"], command, config["cwd"])
    result = run_child(argv, config["env"], filters=open_channel, use_pty=os.isatty(1), program=argv[0])
    hits: dict[str, int] = {}
    for stream in streams:
        for label, count in stream.hits.items():
            hits[label] = hits.get(label, 0) + count
    return {"exit_code": result.exit_code, "signal": result.signal, "duration": result.duration, "masked": hits}


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
