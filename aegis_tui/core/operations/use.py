"""Listing credentials and handing out values: ``list``, ``get`` (reveal), ``inject``
(for ``run``), ``git.get`` and ``git.erase``.

Every value goes out through ``obtain``: usable (not revoked, not expired), covered by a
grant with the right this use needs (or a human's approval, which becomes one), counted
and audited in the same transaction, and remembered for the caller's process so its
output can be masked. An owner who unlocked the vault in this process needs no grant;
a reference from outside a project's context always asks the human.
"""

from __future__ import annotations

import base64
from typing import Any

from aegis_tui.core.agents.grants import INJECT, REVEAL, Grant, Grants, GrantSpentError, Use
from aegis_tui.core.agents.policy import check_usable, git_location, list_visible, parse_filter, resolve_git, \
    resolve_visible
from aegis_tui.core.agents.sessions import context_contains
from aegis_tui.core.audit import Outcome, Risk
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import DeniedError, RefusedError
from aegis_tui.core.gitcred import GitRequest, git_username
from aegis_tui.core.models import Credential, validate_context
from aegis_tui.core.operations.caller import Caller, Host, describe
from aegis_tui.core.operations.provenance import git_use, verify_run_client
from aegis_tui.core.operations.registry import INT, STR, STRS, operation
from aegis_tui.core.secret import Secret
from aegis_tui.core.summary import credential_summary

_ASKING = {"ref": (STR, True), "scopes": (STRS, False), "reason": (STR, False), "duration": (INT, False),
           "via": (STR, False)}


@operation("list", {"context": (STR, False), "service": (STR, False), "status": (STR, False), "kind": (STR, False)})
async def list_credentials(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    now = host.vault.clock()
    found = list_visible(Credentials(host.vault, caller.actor), caller.session, parse_filter(args))
    return {"credentials": [credential_summary(c, now) for c in found]}


@operation("get", _ASKING)
async def get(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """The raw value, to the caller: a reveal."""
    credential = resolve_visible(Credentials(host.vault, caller.actor), args["ref"], caller.session)
    value, grant = await obtain(host, credential, caller, Use(REVEAL, cwd=caller.peer.cwd), args,
                                via=args.get("via") or "aegis-vault get")
    return _handed_out(credential, value, grant)


@operation("inject", {**_ASKING, "command": (STRS, True), "program": (STR, True), "project_context": (STR, False)})
async def inject(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """The value for the environment of the one command ``aegis-vault run`` starts."""
    use = (Use(INJECT, tuple(args["command"]), args["program"], caller.peer.cwd) if caller.is_owner
           else verify_run_client(caller.peer, args["command"], args["program"]))
    credential = resolve_visible(Credentials(host.vault, caller.actor), args["ref"], caller.session)
    project = validate_context(args["project_context"]) if args.get("project_context") is not None else None
    outside = project is not None and not context_contains(project, credential.context)
    value, grant = await obtain(host, credential, caller, use, args, via="aegis-vault run -- " + use.command[0],
                                outside_project=project if outside else None)
    return _handed_out(credential, value, grant)


def _handed_out(credential: Credential, value: Secret, grant: Grant | None) -> dict[str, Any]:
    return {"name": credential.name, "reference": credential.reference, "grant": grant.id if grant else None,
            "status": str(credential.status), "value_b64": base64.b64encode(value.reveal()).decode()}


_GIT = {"protocol": (STR, True), "host": (STR, True), "path": (STR, False), "username": (STR, False)}


def _git_request(args: dict[str, Any]) -> GitRequest:
    return GitRequest(args["protocol"].lower(), args["host"].lower(), args.get("path", ""), args.get("username", ""))


@operation("git.get", {**_GIT, "reason": (STR, False)})
async def git_get(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """For git's own transport an inject; for anyone else (``git credential fill``) a reveal."""
    request = _git_request(args)
    credential = resolve_git(Credentials(host.vault, caller.actor), caller.session, request)
    use = git_use(caller.peer)
    value, grant = await obtain(host, credential, caller, use, {"reason": args.get("reason", "")},
                                via=f"git credential for {git_location(request)}")
    return {"name": credential.name, "username": git_username(credential, request),
            "grant": grant.id if grant else None, "password_b64": base64.b64encode(value.reveal()).decode()}


@operation("git.erase", _GIT)
async def git_erase(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    request = _git_request(args)
    credentials = Credentials(host.vault, caller.actor)
    credential = resolve_git(credentials, caller.session, request)
    credentials.mark_failing(credential.name, via=f"git rejected it at {literal(git_location(request), 200)}")
    return {"name": credential.name}


async def obtain(host: Host, credential: Credential, caller: Caller, use: Use, args: dict[str, Any], *,
                 via: str, outside_project: str | None = None) -> tuple[Secret, Grant | None]:
    """The value, under a grant that covers this use, asking the human if none does yet."""
    vault = host.vault
    scopes = tuple(args.get("scopes", ()))
    try:
        check_usable(credential, vault.clock())
        if outside_project is not None and not host.can_ask:
            raise RefusedError(f"{credential.reference} is outside this project's context ({outside_project or 'none'}); "
                               "name it with --need to use it on purpose")
        if caller.is_owner and outside_project is None:
            value = await host.committed(_reveal(host, credential, caller, None, via, use))
            host.remember_given(caller, credential)
            return value, None
        session_id = caller.session.id if caller.session else None
        for _ in range(2):
            grant = None if outside_project is not None else host.grants.find(credential, session_id, scopes, use)
            if grant is None:
                grant = await _ask(host, credential, caller, use, args, via, outside_project)
            try:
                value = await host.committed(_reveal(host, credential, caller, grant, via, use))
            except GrantSpentError:
                continue  # a concurrent request took its last use: look again, or ask
            host.remember_given(caller, credential)
            return value, grant
        raise DeniedError(f"access to {credential.name!r} was granted, but used up by other requests first")
    except RefusedError as refusal:  # also when revoked while waiting: the rolled-back read left no trace
        _audit(host, caller, "access.refused", credential, Risk.HIGH, Outcome.DENIED, reason=str(refusal),
               use=use.right)
        raise


def _reveal(host: Host, credential: Credential, caller: Caller, grant: Grant | None, via: str, use: Use):  # type: ignore[no-untyped-def]
    def work() -> Secret:
        evidence: dict[str, object] = {"use": use.right, **describe(caller)}
        if grant is not None:
            Grants(host.vault, caller.actor).consume(grant)
            evidence["grant"] = grant.id
        if use.program:  # the program, never its arguments: those may hold secrets
            evidence["program"] = literal(use.program, 300)
        return Credentials(host.vault, caller.actor).reveal_id(credential.id, literal(via, 120), evidence)

    return work


async def _ask(host: Host, credential: Credential, caller: Caller, use: Use, args: dict[str, Any], via: str,
               outside_project: str | None) -> Grant:
    from aegis_tui.core.approvals import PendingRequest

    vault = host.vault
    now = vault.clock()
    session = caller.session
    duration = args.get("duration")
    pending = PendingRequest(
        id=0, created_at=now, deadline=now, peer=caller.peer, session=session, credential=credential,
        scopes=tuple(args.get("scopes", ())), reason=literal(args.get("reason", "")),
        duration=duration if duration and duration > 0 else None, via=literal(via, 200),
        right=use.right, command=use.command, program=use.program, bound=bool(session and session.bound),
        outside_project=outside_project or "", warnings=credential_warnings(host, credential),
        sandboxed=bool(session and session.sandboxed),
    )
    _audit(host, caller, "access.request", credential, Risk.HIGH if use.right == REVEAL and session else Risk.MEDIUM,
           scopes=list(pending.scopes), reason=pending.reason, via=pending.via, use=use.right, program=use.program,
           outside_project=outside_project, peer=caller.peer.to_dict())
    decision = await host.ask(pending, caller)
    if decision is None:
        _audit(host, caller, "access.timeout", credential, Risk.MEDIUM, Outcome.DENIED)
        where = "" if host.can_ask else " (no app is attached to this broker: start aegis-vault)"
        raise DeniedError(f"no one approved access to {credential.name!r} within {int(host.approval_timeout)} s"
                          f"{where}; ask the human to approve it in aegis-vault")
    if not decision.allow:
        _audit(host, caller, "access.deny", credential, Risk.MEDIUM, Outcome.DENIED)
        raise DeniedError(f"access to {credential.name!r} was denied by the vault's owner")
    ttl = decision.ttl_seconds
    if session is not None:
        left = session.expires_at - vault.clock()
        ttl = left if decision.for_session or ttl is None else min(ttl, left)
    bind = decision.bind if use.right == INJECT and use.command else "any"
    return Grants(vault).create(
        credential=credential, context=session.context if session else credential.context,
        session_id=session.id if session else None, scopes=decision.scopes or pending.scopes, uses=decision.uses,
        ttl_seconds=ttl, reason=pending.reason, created_by="approved in the app",
        outside_sessions=session is None, rights=(use.right,),
        command=use.command if bind == "argv" else (), program=use.program if bind == "program" else "",
    )


def credential_warnings(host: Host, credential: Credential) -> tuple[str, ...]:
    """What the human should know before approving: exposed, an open incident, expiry."""
    from aegis_tui.core.lifecycle.incidents import Incidents

    warnings = []
    if str(credential.status) == "exposed":
        warnings.append("exposed")
    if any(incident.is_open for incident in Incidents(host.vault).for_credential(credential.id)):
        warnings.append("open incident")
    days = credential.days_to_expiry(host.vault.clock())
    if days is not None and days <= 14:
        warnings.append(f"expires in {days} day{'s' if days != 1 else ''}")
    return tuple(warnings)


def literal(text: str, limit: int = 500) -> str:
    from aegis_tui.core.approvals import literal as shown_literally

    return shown_literally(text, limit)


def _audit(host: Host, caller: Caller, operation_name: str, credential: Credential, risk: Risk,
           outcome: Outcome = Outcome.OK, **detail: object) -> None:
    host.vault.audit.append(operation_name, caller.actor, outcome=outcome, risk=risk, target=credential.name,
                            context=credential.context, detail=detail)

