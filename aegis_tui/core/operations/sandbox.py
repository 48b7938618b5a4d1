"""``session.sandbox`` and ``run.start``: what a sandboxed agent session needs of the broker.

``session.sandbox`` gives a session its own socket, which ``session exec`` binds into the
agent's sandbox in place of the broker's: every request on it acts for that session, so
a contained agent cannot name another session or reach the owner's operations. Only the
process the session is bound to (``session exec`` itself, outside the sandbox) may ask,
and never over a session socket: an agent must not be able to mint sockets.

``run.start`` is ``aegis-vault run`` inside such a session. The agent's process must never
hold a value (everything in its sandbox can read everything else there), so the broker
checks each need exactly as ``inject`` does (the same handler: grants, rights, binding,
approvals, audit) and starts the command itself, outside the agent's PID namespace, in a
sibling sandbox with the same view of the files; the client only lends its stdin,
stdout and stderr and passes on its signals.
"""

from __future__ import annotations

import base64
from typing import Any

from aegis_tui.core.agents.sessions import AgentSession, SessionRefused, validate_session_id
from aegis_tui.core.audit import Risk
from aegis_tui.core.errors import AegisError, RefusedError, UsageError
from aegis_tui.core.operations.caller import Caller, Host
from aegis_tui.core.operations.registry import BOOL, MAX_TEXT_VALUE, OBJ, STR, STRS, TEXTS, is_text, operation
from aegis_tui.core.operations.reports import audit_run
from aegis_tui.core.operations.use import inject

_NOT_THE_BINDER = "only the process a session is bound to (aegis-vault session exec) can sandbox it"
MAX_NEEDS = 1024


@operation("session.sandbox", {"id": (STR, True), "plan": (OBJ, True)})
async def sandbox(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """A socket for the session; marks the session sandboxed (lists and pop-ups show it)."""
    session = _binders_session(host, args, caller)
    path = host.open_session_socket(session, args["plan"])  # the host checks the plan
    from aegis_tui.core.agents.sessions import Sessions

    await host.committed(lambda: Sessions(host.vault, caller.actor).mark_sandboxed(session.id))
    return {"socket": path}


def _binders_session(host: Host, args: dict[str, Any], caller: Caller) -> AgentSession:
    """The session named in ``args``, when the caller is the process it is bound to
    (``session exec``) and asks over the broker's own socket; else a refusal."""
    wanted = validate_session_id(args["id"])
    if caller.via_session_socket:
        raise RefusedError("a session socket cannot speak about its session's sandbox")
    session = next((s for s in host.sessions() if s.id == wanted), None)
    if (session is None or not session.bound or caller.peer.pid != session.root_pid
            or caller.process_key != (session.root_pid, session.root_started)):
        raise RefusedError(_NOT_THE_BINDER)
    if not session.is_live(host.vault.clock()):
        raise RefusedError(f"agent session {session.id} has {session.state(host.vault.clock())}")
    return session


@operation("session.unsandboxed", {"id": (STR, True)})
async def unsandboxed(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """The binder says its agent runs without a sandbox (``--no-sandbox``): audited, so
    the owner sees which agents ran uncontained."""
    session = _binders_session(host, args, caller)
    host.vault.audit.append("session.unsandboxed", caller.actor, risk=Risk.MEDIUM, target=session.id,
                            context=session.context, detail={})
    return {}


@operation("run.start", {"needs": (TEXTS, True), "contexts": (TEXTS, False), "command": (STRS, True),
                         "program": (STR, True), "cwd": (STR, True), "reason": (STR, False),
                         "env": (TEXTS, True), "tty": (BOOL, False)})
async def run_start(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """``needs``: variable -> reference; ``contexts``: variable -> the project context its
    reference resolves in (from a project file); ``env``: the client's environment."""
    session = caller.session
    if caller.link is None or not caller.via_session_socket or session is None or not session.sandboxed:
        raise RefusedError("run.start is for aegis-vault run inside a sandboxed session, over its socket")
    command, program, cwd = list(args["command"]), args["program"], args["cwd"]
    if not command or not cwd.startswith("/"):
        raise UsageError("run.start needs a command and an absolute folder")
    needs, contexts = args["needs"], args.get("contexts", {})
    if len(needs) > MAX_NEEDS:
        raise UsageError(f"run.start takes at most {MAX_NEEDS} needs")
    env = _environment(args["env"])
    values: dict[str, bytes] = {}
    for variable, reference in needs.items():
        if not (variable.isascii() and variable.isidentifier()):
            raise UsageError(f"{variable[:60]!r} is not an environment variable name")
        asked: dict[str, Any] = {"ref": reference, "reason": args.get("reason", ""), "command": command,
                                 "program": program}
        if variable in contexts:
            asked["project_context"] = contexts[variable]
        try:
            answer = await inject(host, asked, caller)
        except SessionRefused:
            raise
        except AegisError as error:  # as ``run`` says it: which variable could not be filled
            raise type(error)(f"{variable}: {error}") from None
        raw = base64.b64decode(answer["value_b64"])
        if b"\x00" in raw:
            raise UsageError(f"{variable}: credential {answer['name']!r} holds a NUL byte, which an environment "
                             "variable cannot carry")
        env[variable] = raw.decode("utf-8", "surrogateescape")
        values[answer["name"]] = raw
    report = await host.start_run(caller, {"env": env, "values": values, "command": command, "program": program,
                                           "cwd": cwd, "tty": bool(args.get("tty"))})
    audit_run(host, caller, _name(command[0]), sorted(values), report["duration"], report.get("exit_code"),
              report.get("signal"), report.get("masked", {}), sandboxed=True)
    return {key: report.get(key) for key in ("exit_code", "signal", "duration", "masked", "error")}


def _name(program: str) -> str:
    return program.rsplit("/", 1)[-1]


def _environment(raw: dict[str, str]) -> dict[str, str]:
    """The client's environment, as its child will get it: names that are names, no
    ``AEGIS_*`` (the child must not learn a session token or a vault key), no NUL."""
    env = {}
    for name, value in raw.items():
        if not name or "=" in name or "\x00" in name or "\x00" in value or not is_text(value, MAX_TEXT_VALUE):
            raise UsageError("run.start: the environment holds a name or value a process cannot carry")
        if not name.startswith("AEGIS_"):
            env[name] = value
    return env
