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

    from aegis_tui.cli.hosted_broker import serve_vault
    from aegis_tui.core.hardening import protect_process

    protect_process()  # every value it serves passes through here: unreadable, no core
    timeout = float(parse_duration(args.approval_timeout)) if args.approval_timeout else None
    vault = open_unlocked(args)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, stop.set)

        def ready() -> None:
            err(f"aegis-vault: broker serving {vault_path()} (headless: only standing grants; "
                "new requests wait for the app); stop with Ctrl-C")

        await serve_vault(vault, str(vault_path()), stop, on_ready=ready,
                          **({"approval_timeout": timeout} if timeout else {}))

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

    On Linux with a usable bubblewrap the agent runs in a sandbox (``core/sandbox``): it
    cannot read the vault, the config or the keyring bus, see other processes, or reach
    the owner's socket; its one way to the broker is its session's own socket, which
    speaks for that session only. A broker must therefore serve the vault: if none does,
    this process hosts one (it unlocks the vault) for the session's life.

    This process holds the session (and may have unlocked the vault), so it is protected
    from the agent's reading first. It is a child subreaper: a double-forked or ``setsid``
    descendant is adopted here instead of by pid 1, and stays in the session's tree. When
    the agent exits, what is left of its tree is ended (SIGTERM, then SIGKILL after
    ``REAP_SECONDS``; in a sandbox, its PID namespace ends with it), so nothing it started
    outlives the session. Signals: see ``cli/agent_sandbox.AgentSignals``."""
    import subprocess

    from aegis_tui.cli.agent_sandbox import AgentSignals, explain, make_plan, usable_bwrap
    from aegis_tui.core.hardening import become_subreaper, protect_process, reap_tree, wait_adopting

    command = _command(args.command)
    if args.explain:
        from aegis_tui.core.sandbox.bwrap import find_bwrap

        sys.stdout.write(explain(make_plan(args), find_bwrap() if sys.platform.startswith("linux") else None))
        return 0
    protect_process()
    plan = make_plan(args) if usable_bwrap(args) else None  # a bad rules file stops here: nothing started yet
    label = args.label or os.path.basename(command[0])
    hosted = None
    if plan is not None:
        access, hosted = _broker_for_the_sandbox(args)
    else:
        access = open_agent_access(args)
    try:
        try:
            session, token = access.start_session(args.context, _ttl(args.ttl), label, os.getpid())
            try:
                argv, env = _agent_start(access, session["id"], token, plan, command, args.no_sandbox)
            except BaseException:
                _end_session(args, session["id"], 0)
                raise
        finally:
            access.close()
        contained = "sandboxed" if plan is not None else "not sandboxed"
        err(f"aegis-vault: agent session {session['id']} ({session['context'] or 'all contexts'}, {contained}) "
            f"for: {label}")
        become_subreaper()
        signals = AgentSignals(contained=plan is not None)
        signals.install()
        try:
            try:
                # A sandbox gets a process group of its own: the terminal's ^C is passed on to
                # the agent, and must not kill bwrap (which would take the agent with it).
                agent = subprocess.Popen(argv, env=env, process_group=0 if plan is not None else None)
            except FileNotFoundError:
                raise UsageError(f"command not found: {command[0]}") from None
            except OSError as error:
                raise UsageError(f"cannot run {command[0]}: {error.strerror}") from None
            signals.aim(_sandboxed_agent(agent.pid) if plan is not None else agent.pid)
            code = agent.returncode = os.waitstatus_to_exitcode(wait_adopting(agent.pid))
        finally:
            left = reap_tree(REAP_SECONDS)
            try:
                _end_session(args, session["id"], left)
            finally:
                signals.restore()
    finally:
        if hosted is not None:
            hosted.close()
    return code if code >= 0 else 128 - code


def _broker_for_the_sandbox(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """(access through the broker that serves the vault, the broker this process hosts
    for it or None): a sandboxed agent can reach nothing else."""
    from aegis_tui.cli.hosted_broker import HostedBroker
    from aegis_tui.core.access import BrokerAccess
    from aegis_tui.core.broker.client import BrokerClient
    from aegis_tui.core.broker.runtime import broker_may_run

    path = vault_path()
    client = BrokerClient.connect(path) if broker_may_run(path) else None
    hosted = None
    if client is None:
        hosted = HostedBroker.start(open_unlocked(args), path)
        client = BrokerClient.connect(path)
        if client is None:
            hosted.close()
            raise UsageError("the broker this session hosts does not answer on its socket")
    return BrokerAccess(client, path), hosted


def _agent_start(access, session_id: str, token: str, plan, command: list[str],  # type: ignore[no-untyped-def]
                 unsandboxed_on_purpose: bool) -> tuple[list[str], dict[str, str]]:
    """The command line and environment the agent starts with. Sandboxed: bwrap around
    the command, the session's own socket bound in, no ``AEGIS_*`` at all (the socket says
    which session it is). Not: the command itself with ``AEGIS_SESSION``, never the key
    (with ``AEGIS_VAULT_KEY`` the agent could unlock the vault and step around the broker)."""
    if plan is not None:
        from aegis_tui.core.sandbox.bwrap import bwrap_argv
        from aegis_tui.core.sandbox.plan import sandbox_env

        socket = str(access.call("session.sandbox", {"id": session_id, "plan": plan.to_dict()})["socket"])
        return bwrap_argv(plan.with_session_socket(socket), command, cwd=os.getcwd()), sandbox_env(os.environ)
    if unsandboxed_on_purpose:
        _audit_unsandboxed(access, session_id)
    env = {key: value for key, value in os.environ.items() if key != ENV_KEY_VARIABLE}
    env["AEGIS_SESSION"] = token
    return command, env


def _audit_unsandboxed(access, session_id: str) -> None:  # type: ignore[no-untyped-def]
    from aegis_tui.core.errors import ProtocolError

    try:
        access.call("session.unsandboxed", {"id": session_id})
    except ProtocolError:  # a broker older than this command: say so rather than pretend
        err("aegis-vault: the broker could not record --no-sandbox in the audit log (it is older than this command)")


def _sandboxed_agent(bwrap_pid: int) -> int | None:
    """The agent's host pid once bwrap has started it; None if the sandbox ended first."""
    import time

    from aegis_tui.core.sandbox.bwrap import sandboxed_pid

    pause = 0.0005
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = sandboxed_pid(bwrap_pid)
        if found is not None:
            return found
        try:
            if os.waitid(os.P_PID, bwrap_pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return None
        except ChildProcessError:
            return None
        time.sleep(pause)
        pause = min(pause * 2, 0.01)
    return None


def _end_session(args: argparse.Namespace, session_id: str, left: int) -> None:
    access = open_agent_access(args)
    try:
        _, revoked = access.end_session(session_id)
    finally:
        access.close()
    ended = f"; {left} process(es) it left running were ended" if left else ""
    err(f"aegis-vault: agent session {session_id} ended; {revoked} grant(s) revoked{ended}")


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
             "pid " + str(s["root_pid"]) if s["root_pid"] else "AEGIS_SESSION",
             "yes" if s.get("sandboxed") else "no"] for s in sessions]
    emit(table(["SESSION", "CONTEXT", "LABEL", "STATE", "ENDS", "BOUND TO", "SANDBOXED"], rows))
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

