"""``session.start``, ``session.end``, ``session.list``.

Anyone may start a session (it only narrows what its agent sees); inside a session the
new one is its child. Binding to a process tree is allowed only to the caller itself:
binding pid 1 would put every process of the user, the owner's shell included, in the
session. An agent sees and ends only its own session and those nested in it; the owner
sees and ends all. To anyone else a session it may not see does not exist.
"""

from __future__ import annotations

from typing import Any

from aegis_tui.core.agents.sessions import UNKNOWN_SESSION, AgentSession, Sessions, validate_session_id
from aegis_tui.core.errors import NotFoundError, RefusedError, UsageError
from aegis_tui.core.operations.caller import Caller, Host
from aegis_tui.core.operations.registry import INT, STR, operation


@operation("session.start", {"context": (STR, True), "ttl": (INT, True), "label": (STR, False),
                             "bind_pid": (INT, False)})
async def start(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    root_pid = args.get("bind_pid")
    started = None
    if root_pid is not None:
        if root_pid != caller.peer.pid:
            raise UsageError("a session can only be bound to the process that starts it (aegis-vault session exec)")
        started = caller.process_key[1]
    session, token = Sessions(host.vault, caller.actor).start(
        args["context"], args["ttl"], label=args.get("label", ""), root_pid=root_pid, root_started=started,
        parent=caller.session)
    return {"session": session.public_dict(), "token": token}


def visible_sessions(host: Host, caller: Caller) -> list[AgentSession]:
    """Inside a session, that one and those nested in it (the owner's key does not widen
    a session); outside, the owner sees every session, and anyone else none."""
    everything = host.sessions()
    if caller.session is None and caller.is_owner:
        return everything
    if caller.session is None:
        raise RefusedError("listing or ending sessions needs the vault's owner: run it outside any agent session, "
                           "where aegis-vault unlocks the vault")
    mine = {caller.session.id}
    for session in everything:  # sessions are listed oldest first: parents before children
        if session.parent_id in mine:
            mine.add(session.id)
    return [session for session in everything if session.id in mine]


@operation("session.end", {"id": (STR, True)})
async def end(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    wanted = validate_session_id(args["id"])
    if not any(session.id == wanted for session in visible_sessions(host, caller)):
        raise NotFoundError(UNKNOWN_SESSION)
    session, revoked = Sessions(host.vault, caller.actor).end(wanted)
    return {"session": session.public_dict(), "grants_revoked": revoked}


@operation("session.list", {})
async def list_sessions(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    now = host.vault.clock()
    return {"sessions": [{**s.public_dict(), "state": s.state(now)} for s in visible_sessions(host, caller)]}
