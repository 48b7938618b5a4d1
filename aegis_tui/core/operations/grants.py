"""``grants.list``, ``grants.revoke``, ``grants.add``.

An agent sees and revokes only its own session's grants (revoking is always safe for
it: it only gives up access). Adding a grant, and anything about other sessions'
grants, is the owner's: an agent must never be able to grant itself access.
"""

from __future__ import annotations

from typing import Any

from aegis_tui.core.agents.grants import INJECT, RIGHTS, Grant, Grants, validate_grant_id
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import NotFoundError, RefusedError, UsageError
from aegis_tui.core.operations.caller import Caller, Host
from aegis_tui.core.operations.registry import BOOL, INT, NUM, STR, STRS, Authority, operation


def _visible_grants(host: Host, caller: Caller, include_inactive: bool) -> list[Grant]:
    grants = host.grants.list(include_inactive=include_inactive)
    if caller.session is None and caller.is_owner:
        return grants
    if caller.session is None:
        raise RefusedError("listing or revoking grants needs the vault's owner: run it outside any agent session, "
                           "where aegis-vault unlocks the vault")
    return [grant for grant in grants if grant.session_id == caller.session.id]


@operation("grants.list", {"all": (BOOL, False)})
async def list_grants(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    now = host.vault.clock()
    return {"grants": [{**g.to_dict(), "state": g.state(now)}
                       for g in _visible_grants(host, caller, bool(args.get("all")))]}


@operation("grants.revoke", {"id": (STR, True), "reason": (STR, False)})
async def revoke(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    wanted = validate_grant_id(args["id"])
    if not any(grant.id == wanted for grant in _visible_grants(host, caller, True)):
        raise NotFoundError(f"no grant {wanted}; see: aegis-vault grants list")
    return {"grant": Grants(host.vault, caller.actor).revoke(wanted, reason=args.get("reason", "")).to_dict()}


@operation("grants.add", {"ref": (STR, False), "selector": (STR, False), "context": (STR, False),
                          "session": (STR, False), "scopes": (STRS, False), "uses": (INT, False),
                          "ttl": (NUM, False), "reason": (STR, False), "rights": (STRS, False),
                          "command": (STRS, False), "program": (STR, False), "cwd": (STR, False)},
           Authority.OWNER)
async def add(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    from aegis_tui.core.agents.sessions import validate_session_id

    rights = tuple(args.get("rights") or (INJECT,))
    if set(rights) - set(RIGHTS):
        raise UsageError("a grant's rights are inject and/or reveal")
    session_id = validate_session_id(args["session"]) if args.get("session") else None
    if session_id is not None and not any(s.id == session_id for s in host.sessions()):
        raise NotFoundError(f"no agent session {session_id}; see: aegis-vault session list")
    credential = Credentials(host.vault).resolve(args["ref"]) if args.get("ref") else None
    grant = Grants(host.vault, caller.actor).create(
        credential=credential, selector=args.get("selector", ""), context=args.get("context", ""),
        session_id=session_id, scopes=args.get("scopes", ()), uses=args.get("uses"), ttl_seconds=args.get("ttl"),
        reason=args.get("reason", ""), rights=rights, command=tuple(args.get("command", ())),
        program=args.get("program", ""), cwd=args.get("cwd", ""))
    return {"grant": grant.to_dict()}
