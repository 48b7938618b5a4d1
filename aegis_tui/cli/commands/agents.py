"""``serve``, ``session start|exec|end|list``, ``grants list|add|revoke``: agent access."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from aegis_tui.cli.render import emit, emit_json, relative, table, timestamp
from aegis_tui.cli.terminal import err
from aegis_tui.cli.unlock import open_agent_access, open_unlocked
from aegis_tui.core.errors import UsageError
from aegis_tui.core.models import parse_duration
from aegis_tui.core.paths import ENV_KEY_VARIABLE, vault_path


# -- serve ----------------------------------------------------------------------------------------
def serve(args: argparse.Namespace) -> int:
    """A headless broker: standing grants are served; new requests wait for an app."""
    import asyncio

    from aegis_tui.core.broker.server import BrokerServer
    from aegis_tui.core.broker.service import HEADLESS, BrokerService

    from aegis_tui.core.hardening import protect_process

    protect_process()  # every value it serves passes through here: unreadable, no core
    timeout = float(parse_duration(args.approval_timeout)) if args.approval_timeout else None
    vault = open_unlocked(args)

    async def run() -> None:
        service = BrokerService(vault, mode=HEADLESS, **({"approval_timeout": timeout} if timeout else {}))
        server = BrokerServer(service, str(vault_path()))
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, stop.set)
        err(f"aegis-vault: broker serving {vault_path()} (headless: only standing grants; "
            "new requests wait for the app); stop with Ctrl-C")
        try:
            await stop.wait()
        finally:
            await server.close()

    try:
        asyncio.run(run())
    finally:
        vault.close()
    err("aegis-vault: broker stopped")
    return 0


# -- sessions ----------------------------------------------------------------------------------------
def _ttl(raw: str) -> int:
    seconds = parse_duration(raw)
    if seconds <= 0:
        raise UsageError("--ttl must be positive, like 30m or 2h")
    return seconds


def _management_access(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Inside an agent session: the session's own view (through the broker if one runs).
    Outside: the owner's, which means unlocking the vault here: through the broker a
    process outside any session has proved nothing, and sees no one's sessions or grants."""
    from aegis_tui.core.access import LocalAccess

    if os.environ.get("AEGIS_SESSION"):
        return open_agent_access(args)
    return LocalAccess(open_unlocked(args))


# How long what an agent left running gets to stop on SIGTERM before SIGKILL.
REAP_SECONDS = 3.0


def session_start(args: argparse.Namespace) -> int:
    access = open_agent_access(args)
    try:
        session, token = access.start_session(args.context, _ttl(args.ttl), args.label or "", None)
    finally:
        access.close()
    sys.stdout.write(f"export AEGIS_SESSION={token}\n")
    err(f"aegis-vault: agent session {session['id']} in context {session['context'] or '(all)'} "
        f"ends {timestamp(session['expires_at'])}; run: eval \"$(aegis-vault session start ...)\"")
    return 0


def session_exec(args: argparse.Namespace) -> int:
    """Run the agent in a new session bound to this process: the agent and everything it
    starts belong to the session whatever their environment says; the session ends (and
    its grants with it) when the agent exits.

    This process holds the session (and may have unlocked the vault), so it is protected
    from the agent's reading first. It is a child subreaper: a double-forked or ``setsid``
    descendant is adopted here instead of by pid 1, and stays in the session's tree. When
    the agent exits, what is left of its tree is ended (SIGTERM, then SIGKILL after
    ``REAP_SECONDS``), so nothing it started outlives the session. The terminal's ^C and
    ^\\ are for the agent: this process only notes them (a handler, not "ignore", which
    the agent would inherit and a shell could not undo); SIGTERM and SIGHUP are passed on
    to the agent, and the tree and the session are ended all the same."""
    import subprocess

    from aegis_tui.core.hardening import become_subreaper, protect_process, reap_tree, wait_adopting

    protect_process()
    command = _command(args.command)
    label = args.label or os.path.basename(command[0])
    access = open_agent_access(args)
    try:
        session, token = access.start_session(args.context, _ttl(args.ttl), label, os.getpid())
    finally:
        access.close()
    # The agent gets its session, never the key: with AEGIS_VAULT_KEY it could unlock the
    # vault itself and step around the broker, its grants and its context.
    env = {key: value for key, value in os.environ.items() if key != ENV_KEY_VARIABLE}
    env["AEGIS_SESSION"] = token
    err(f"aegis-vault: agent session {session['id']} ({session['context'] or 'all contexts'}) for: {label}")
    become_subreaper()
    agent: list[subprocess.Popen[bytes]] = []
    pending: list[int] = []

    def pass_on(signum: int, _frame: object) -> None:
        if agent:
            agent[0].send_signal(signum)
        else:
            pending.append(signum)

    previous = {signum: signal.signal(signum, handler) for signum, handler in (
        (signal.SIGINT, lambda *_: None), (signal.SIGQUIT, lambda *_: None),
        (signal.SIGTERM, pass_on), (signal.SIGHUP, pass_on))}
    try:
        try:
            agent.append(subprocess.Popen(command, env=env))
        except FileNotFoundError:
            raise UsageError(f"command not found: {command[0]}") from None
        except OSError as error:
            raise UsageError(f"cannot run {command[0]}: {error.strerror}") from None
        for signum in pending:  # arrived while it was starting
            agent[0].send_signal(signum)
        code = agent[0].returncode = os.waitstatus_to_exitcode(wait_adopting(agent[0].pid))
    finally:
        left = reap_tree(REAP_SECONDS)
        access = open_agent_access(args)
        try:
            _, revoked = access.end_session(session["id"])
        finally:
            access.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        ended = f"; {left} process(es) it left running were ended" if left else ""
        err(f"aegis-vault: agent session {session['id']} ended; {revoked} grant(s) revoked{ended}")
    return code if code >= 0 else 128 - code


def _command(raw: list[str]) -> list[str]:
    command = raw[1:] if raw[:1] == ["--"] else raw
    if not command:
        raise UsageError("give the command to run after --, e.g. aegis-vault session exec --context acme/dev -- claude")
    return command


def session_end(args: argparse.Namespace) -> int:
    session_id = args.id or _own_session_id(args)
    if not session_id:
        raise UsageError("name the session to end (or set AEGIS_SESSION); see: aegis-vault session list")
    access = _management_access(args)
    try:
        session, revoked = access.end_session(session_id)
    finally:
        access.close()
    err(f"aegis-vault: agent session {session['id']} ended; {revoked} grant(s) revoked")
    return 0


def _own_session_id(args: argparse.Namespace) -> str | None:
    """The public id of the session ``AEGIS_SESSION`` names (it holds the token)."""
    if not os.environ.get("AEGIS_SESSION"):
        return None
    access = open_agent_access(args)
    try:
        return str(access.call("hello").get("session") or "") or None
    finally:
        access.close()


def session_list(args: argparse.Namespace) -> int:
    import time

    access = _management_access(args)
    try:
        sessions = access.sessions()
    finally:
        access.close()
    if not args.all:
        sessions = [s for s in sessions if s["state"] == "active"]
    if args.json:
        emit_json(sessions)
        return 0
    now = time.time()
    rows = [[s["id"], s["context"] or "(all)", s["label"] or "-", s["state"], relative(s["expires_at"], now),
             "pid " + str(s["root_pid"]) if s["root_pid"] else "AEGIS_SESSION"] for s in sessions]
    emit(table(["SESSION", "CONTEXT", "LABEL", "STATE", "ENDS", "BOUND TO"], rows))
    return 0


# -- grants ------------------------------------------------------------------------------------------
def grants_list(args: argparse.Namespace) -> int:
    import time

    from aegis_tui.core.agents.grants import Grant

    access = _management_access(args)
    try:
        grants = access.grants(args.all)
    finally:
        access.close()
    if args.json:
        emit_json(grants)
        return 0
    now = time.time()
    rows = [[g["id"], g["label"], g["context"] or "(all)",
             g["session_id"] or ("no session" if g["outside_sessions"] else "standing"),
             "+".join(g["rights"]), Grant.from_dict({k: v for k, v in g.items() if k != "state"}).binding,
             ",".join(g["scopes"]) or "any", "∞" if g["uses_left"] is None else str(g["uses_left"]),
             "never" if g["expires_at"] is None else relative(g["expires_at"], now), g["state"]] for g in grants]
    emit(table(["GRANT", "CREDENTIAL", "CONTEXT", "SESSION", "RIGHTS", "FOR", "SCOPES", "USES", "EXPIRES", "STATE"],
               rows))


def grants_add(args: argparse.Namespace) -> int:
    """Grants are made by someone who unlocked the vault, never through the broker: an
    agent must not be able to grant itself access."""
    import shlex

    from aegis_tui.core.access import LocalAccess

    selector = f"service:{args.service}" if args.service else f"tag:{args.tag}" if args.tag else ""
    if bool(args.reference) == bool(selector):
        raise UsageError("grant either one credential (NAME) or a selector (--service NAME or --tag NAME)")
    uses = None if args.uses in (None, "unlimited") else _positive(args.uses)
    ttl = parse_duration(args.ttl) if args.ttl else None
    command = shlex.split(args.bound_command) if args.bound_command else []
    program = _program_path(args.program) if args.program else ""
    access = LocalAccess(open_unlocked(args))
    try:
        grant = access.add_grant(ref=args.reference, selector=selector, context=args.context or "",
                                 session=args.session, scopes=args.scope, uses=uses, ttl=ttl, reason=args.reason,
                                 rights=["inject", "reveal"] if args.reveal else ["inject"], command=command,
                                 program=program, cwd=os.path.realpath(args.cwd) if args.cwd else "")
    finally:
        access.close()
    sys.stdout.write(grant["id"] + "\n")
    rights = "inject and reveal" if args.reveal else "inject only"
    err(f"aegis-vault: granted {grant['label']} ({'session ' + grant['session_id'] if grant['session_id'] else 'standing'}; "
        f"{rights})")
    return 0


def _program_path(raw: str) -> str:
    import shutil

    found = shutil.which(raw)
    if found is None:
        raise UsageError(f"--program: no executable {raw!r} on PATH")
    return os.path.realpath(found)


def _positive(raw: str) -> int:
    if not raw.isdigit() or int(raw) <= 0:
        raise UsageError("--uses is a positive number or 'unlimited'")
    return int(raw)


def grants_revoke(args: argparse.Namespace) -> int:
    access = _management_access(args)
    try:
        grant = access.revoke_grant(args.id, args.reason)
    finally:
        access.close()
    err(f"aegis-vault: grant {grant['id']} for {grant['label']} revoked")
    return 0

