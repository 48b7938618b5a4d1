"""A sandboxed agent session made by hand, as ``session exec`` makes one, for the tests.

Run as ``python -m tests.support.sandboxed_session INFO CONTEXT -- AGENT...`` with no
vault key, in the project folder: it starts a session bound to itself through the
running broker, asks for the session's socket (``session.sandbox``), writes
``{"session", "socket"}`` to the file INFO, runs AGENT inside ``bwrap_argv`` with that
socket bound in (stdio inherited), ends the session and exits as AGENT did. With
``--stay`` it waits for stdin to close after AGENT before ending the session.

It stands in for ``session exec`` so these tests do not depend on how that command
evolves; the sandbox itself is the product's (``plan_sandbox``, ``bwrap_argv``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

from aegis_tui.core.broker.client import BrokerClient
from aegis_tui.core.paths import vault_path
from aegis_tui.core.sandbox.bwrap import bwrap_argv
from aegis_tui.core.sandbox.plan import plan_sandbox, sandbox_env


def main(argv: list[str]) -> int:
    stay = "--stay" in argv[: argv.index("--")]
    info_path, context = [arg for arg in argv[: argv.index("--")] if arg != "--stay"]
    agent = argv[argv.index("--") + 1:]
    client = BrokerClient.connect(vault_path())
    assert client is not None, "no broker"
    session = client.call("session.start", {"context": context, "ttl": 600, "bind_pid": os.getpid()})["session"]
    plan = plan_sandbox(vault_path=vault_path(), project_dir=os.getcwd())
    socket = client.call("session.sandbox", {"id": session["id"], "plan": plan.to_dict()})["socket"]
    with open(info_path, "w", encoding="utf-8") as handle:
        json.dump({"session": session["id"], "socket": socket, "pid": os.getpid()}, handle)
    code = subprocess.call(bwrap_argv(plan.with_session_socket(socket), agent, cwd=os.getcwd()),
                           env=sandbox_env(os.environ))
    if stay:
        sys.stdin.read()
    client.call("session.end", {"id": session["id"]})
    client.close()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start(env: dict[str, str], project: str, agent: list[str], *, context: str = "acme/dev", stay: bool = False,
          **popen: object) -> tuple[subprocess.Popen[bytes], str]:
    """The session maker (this module) as a subprocess of a test, without the vault key,
    in ``project``; (the process, the INFO file it writes once the socket exists)."""
    info = os.path.join(project, ".session-info.json")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(info)
    child_env = {key: value for key, value in env.items() if key != "AEGIS_VAULT_KEY"}
    child_env["PYTHONPATH"] = os.pathsep.join([ROOT, child_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    argv = [sys.executable, "-m", "tests.support.sandboxed_session", info, context, *(["--stay"] if stay else []),
            "--", *agent]
    popen.setdefault("start_new_session", True)
    proc = subprocess.Popen(argv, env=child_env, cwd=project, **popen)  # type: ignore[call-overload]
    return proc, info


def read_info(info: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> dict[str, object]:
    """What the session maker wrote: session id, host socket path, its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError):
            with open(info, encoding="utf-8") as handle:
                return dict(json.load(handle))
        if proc.poll() is not None:
            raise AssertionError(f"the session maker exited with {proc.returncode} before its socket existed")
        time.sleep(0.05)
    raise AssertionError("the session maker wrote no info")
