"""``git-credential-aegis``: git's credential helper protocol over the vault.

    git config --global credential.helper aegis
    git config --global credential.useHttpPath true   # to tell repositories apart

``get`` goes through the broker (an approval pop-up when no grant covers it) and
prints the token for git only; ``store`` writes nothing anywhere (the vault already
has it); ``erase`` (git's way of saying the password was rejected) marks the
credential as failing and audits it. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from aegis_tui.cli import refused_undecodable

    if refused_undecodable(args, "git-credential-aegis"):
        return 2
    debug = "--debug" in args
    actions = [arg for arg in args if not arg.startswith("-")]
    if len(actions) != 1 or actions[0] not in ("get", "store", "erase"):
        sys.stderr.write("git-credential-aegis: usage: git-credential-aegis get|store|erase (git calls it)\n")
        return 2
    try:
        return _run(actions[0])
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if debug:
            raise
        from aegis_tui.core.errors import AegisError

        message = str(error) if isinstance(error, AegisError) else f"unexpected error ({type(error).__name__})"
        sys.stderr.write(f"git-credential-aegis: {message}\n")
        return getattr(error, "exit_code", 1)


def _run(action: str) -> int:
    from aegis_tui.cli.unlock import open_agent_access
    from aegis_tui.core.gitcred import format_response, read_request

    request = read_request(sys.stdin.buffer)
    if action == "store":
        return 0
    access = open_agent_access(argparse.Namespace(recovery=False, passphrase_fd=None))
    try:
        if action == "get":
            username, password = access.git_get(request, reason=os.environ.get("AEGIS_REASON", ""))
            sys.stdout.write(format_response(username, password.reveal_text()))
            sys.stdout.flush()
        else:
            name = access.git_erase(request)
            sys.stderr.write(f"git-credential-aegis: {name!r} was rejected by the server; marked as failing\n")
    finally:
        access.close()
    return 0
