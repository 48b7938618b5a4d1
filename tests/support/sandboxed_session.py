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

import json
import os
import subprocess
import sys

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
