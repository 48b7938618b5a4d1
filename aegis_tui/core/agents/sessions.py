"""Agent sessions: a context an agent works in, for a limited time.

A session narrows what its agent sees: credentials outside its context do not exist
for it ("not found", never "forbidden", so it cannot even learn their names). Ending a
session, or letting it expire, revokes every grant made for it.

A session started with ``session exec`` is also bound to the agent's process (pid plus
the kernel's start time, so a recycled pid does not inherit it): the broker treats
every descendant of that process as part of the session whatever its environment
says, so an agent cannot leave its context by unsetting ``AEGIS_SESSION``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from aegis_tui.core.actor import Actor
from aegis_tui.core.agents.records import SealedRecords
from aegis_tui.core.audit import Risk
from aegis_tui.core.crypto import random_hex
from aegis_tui.core.errors import NotFoundError, RefusedError, UsageError
from aegis_tui.core.models import validate_context, validate_free_text
from aegis_tui.core.vault import Vault

SESSION_KIND = "session"
MAX_SESSION_SECONDS = 30 * 86400


def context_contains(scope: str, context: str) -> bool:
    """``acme`` contains ``acme`` and ``acme/dev``, not ``acme-old``; ``""`` contains all."""
    return scope == "" or context == scope or context.startswith(scope + "/")


class AgentSession(NamedTuple):
    id: str
    label: str
    context: str
    created_at: float
    expires_at: float
    ended_at: float | None = None
    root_pid: int | None = None
    root_started: int | None = None  # /proc/PID/stat start time of the root process
    created_by: str = ""

    def state(self, now: float) -> str:
        if self.ended_at is not None:
            return "ended"
        return "active" if now < self.expires_at else "expired"

    def is_live(self, now: float) -> bool:
        return self.state(now) == "active"

    def sees(self, context: str) -> bool:
        return context_contains(self.context, context)

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def new_session_id() -> str:
    return "as_" + random_hex(8)


def validate_session_id(raw: str) -> str:
    if not (raw.startswith("as_") and len(raw) == 19 and all(ch in "0123456789abcdef" for ch in raw[3:])):
        raise UsageError("a session id looks like as_0123456789abcdef")
    return raw


def session_for(
    sessions: list[AgentSession],
    declared: str | None,
    ancestry: tuple[tuple[int, int], ...],
    now: float,
) -> AgentSession | None:
    """The session a process acts in: the one bound to it or an ancestor (pid and start
    time), else the one it names in ``AEGIS_SESSION``, else none. A session that has
    ended or expired refuses, rather than leaving its agent unconfined."""
    chain = set(ancestry)
    bound = [s for s in sessions if s.root_pid is not None and (s.root_pid, s.root_started) in chain]
    if bound:
        session = max(bound, key=lambda s: s.created_at)  # the innermost, if sessions nest
        if declared and declared != session.id:
            raise RefusedError(f"this process belongs to agent session {session.id}, not the one it names")
    elif declared:
        found = [s for s in sessions if s.id == declared]
        if not found:
            raise NotFoundError("no such agent session (AEGIS_SESSION); see: aegis-vault session list")
        session = found[0]
    else:
        return None
    state = session.state(now)
    if state != "active":
        raise RefusedError(f"agent session {session.id} has {state}; ask the human to start a new one")
    return session


class Sessions:
    """Start, list and end the agent sessions of one unlocked vault."""

    def __init__(self, vault: Vault, actor: Actor | None = None) -> None:
        self._vault = vault
        self._actor = actor or vault.actor
        self._records = SealedRecords(vault, SESSION_KIND)

    def start(
        self,
        context: str,
        ttl_seconds: int,
        *,
        label: str = "",
        root_pid: int | None = None,
        root_started: int | None = None,
    ) -> AgentSession:
        if not 0 < ttl_seconds <= MAX_SESSION_SECONDS:
            raise UsageError("a session lasts between 1 second and 30 days (--ttl 2h, say)")
        now = self._vault.clock()
        session = AgentSession(
            id=new_session_id(),
            label=validate_free_text(label, "session label", 120),
            context=validate_context(context),
            created_at=now,
            expires_at=now + ttl_seconds,
            root_pid=root_pid,
            root_started=root_started,
            created_by=self._actor.describe(),
        )
        with self._vault.store.transaction():
            self._records.insert(session.to_dict())
            self._vault.audit.append("session.start", self._actor, risk=Risk.MEDIUM, target=session.id,
                                     context=session.context,
                                     detail={"ttl_seconds": ttl_seconds, "label": session.label,
                                             "bound_to_pid": root_pid})
        return session

    def get(self, session_id: str) -> AgentSession:
        found = self._records.get(validate_session_id(session_id))
        if found is None:
            raise NotFoundError(f"no agent session {session_id}; see: aegis-vault session list")
        return AgentSession(**found[1])

    def live(self, session_id: str) -> AgentSession:
        """The session, refusing one that has ended or expired."""
        session = self.get(session_id)
        state = session.state(self._vault.clock())
        if state != "active":
            raise RefusedError(f"agent session {session.id} has {state}; start a new one with: aegis-vault session start")
        return session

    def list(self) -> list[AgentSession]:
        return sorted((AgentSession(**data) for _, data in self._records.all()), key=lambda s: s.created_at)

    def end(self, session_id: str, *, reason: str = "ended") -> tuple[AgentSession, int]:
        """End the session and revoke its grants; returns it and how many grants ended."""
        from aegis_tui.core.agents.grants import Grants

        with self._vault.store.transaction():
            found = self._records.get(validate_session_id(session_id))
            if found is None:
                raise NotFoundError(f"no agent session {session_id}; see: aegis-vault session list")
            rev, data = found
            session = AgentSession(**data)
            if session.ended_at is not None:
                return session, 0
            now = self._vault.clock()
            ended = session._replace(ended_at=min(now, session.expires_at))
            self._records.update(ended.to_dict(), rev)
            revoked = Grants(self._vault, self._actor).revoke_for_session(session.id, reason=f"session {reason}")
            operation = "session.expire" if reason == "expired" else "session.end"
            self._vault.audit.append(operation, self._actor, risk=Risk.MEDIUM, target=session.id,
                                     context=session.context, detail={"grants_revoked": revoked})
        return ended, revoked

    def end_expired(self) -> list[AgentSession]:
        """Close the books on sessions whose time ran out (their grants end with them)."""
        now = self._vault.clock()
        return [self.end(s.id, reason="expired")[0] for s in self.list() if s.state(now) == "expired"]
