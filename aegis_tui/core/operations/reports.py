"""``hello``, ``run.report`` and ``audit.note``: what callers may write to the audit log.

A run report comes only from ``aegis-vault run`` itself and names only credentials its
process was handed, so an agent cannot fill the log with runs that never happened or
with names of credentials it never saw. Free-text notes are the owner's. Everything
written is made literal first: the log is read in terminals.
"""

from __future__ import annotations

from typing import Any

from aegis_tui.core.audit import Risk
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import RefusedError
from aegis_tui.core.operations.caller import Caller, Host
from aegis_tui.core.operations.provenance import verify_run_reporter
from aegis_tui.core.operations.registry import COUNTS, NUM, OPT_INT, STR, STRS, Authority, operation
from aegis_tui.core.operations.use import literal


@operation("hello", {})
async def hello(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return {"protocol": 1, "vault_id": host.vault.vault_id, "approver": host.can_ask,
            "session": caller.session.id if caller.session else None,
            "sandboxed": caller.via_session_socket, **host.status()}


def given_names(host: Host, caller: Caller) -> set[str]:
    ids = host.given(caller)
    if not ids:
        return set()
    return {c.name for c in Credentials(host.vault).list() if c.id in ids}


@operation("run.report", {"command": (STR, True), "credentials": (STRS, True), "duration": (NUM, True),
                          "exit_code": (OPT_INT, False), "signal": (OPT_INT, False), "masked": (COUNTS, False)})
async def run_report(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    if not caller.is_owner:
        verify_run_reporter(caller.peer)
        given = given_names(host, caller)
        if not set(args["credentials"]) <= given or not set(args.get("masked", {})) <= given:
            raise RefusedError("a run report names only credentials that run was given")
    audit_run(host, caller, args["command"], args["credentials"], args["duration"], args.get("exit_code"),
              args.get("signal"), args.get("masked", {}))
    return {}


def audit_run(host: Host, caller: Caller, command: str, credentials: list[str], duration: float,
              exit_code: int | None, signal: int | None, masked: dict[str, int], **extra: object) -> None:
    """The ``run`` audit entry, whether ``run`` reported it or the broker ran the child
    itself (``run.start``): names and counts only, never an argument or a value."""
    hidden = {literal(name, 128): count for name, count in masked.items()}
    host.vault.audit.append(
        "run", caller.actor, risk=Risk.MEDIUM if hidden else Risk.LOW, target=literal(command, 120),
        detail={"credentials": [literal(name, 128) for name in credentials],
                "duration": round(float(duration), 3), "exit_code": exit_code,
                "signal": signal, "masked": hidden, **extra},
    )


@operation("audit.note", {"text": (STR, True)}, Authority.OWNER)
async def note(host: Host, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
    host.vault.audit.append("note", caller.actor, risk=Risk.LOW, target="note",
                            detail={"text": literal(args["text"], 2000)})
    return {}
