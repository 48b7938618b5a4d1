"""Agent sessions: a context an agent works in, for a limited time.

A session narrows what its agent sees: credentials outside its context do not exist
for it ("not found", never "forbidden", so it cannot even learn their names). Ending a
session, or letting it expire, revokes every grant made for it.

A session started with ``session exec`` is also bound to the agent's process (pid plus
the kernel's start time, so a recycled pid does not inherit it): the broker treats
every descendant of that process as part of the session whatever its environment
says, so an agent cannot leave its context by unsetting ``AEGIS_SESSION``.

Two names, two jobs: the session's public id (``as_…``) is what lists, grants and the
audit log show; the token an agent holds in ``AEGIS_SESSION`` (``ast_…``, 256 random
bits) is a bearer secret, stored only as a keyed hash and never listed, so reading the
vault file or a listing gives no way to act as another agent. Even the right token is
refused from outside the process tree its session is bound to.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from aegis_tui.core.actor import Actor
from aegis_tui.core.store.records import SealedRecords
from aegis_tui.core.audit import Risk
from aegis_tui.core.crypto import blind_index, random_hex, random_token
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
    token_hash: str = ""  # keyed hash of the agent's bearer token (``AEGIS_SESSION``)
    parent_id: str | None = None  # started inside this session: ends with it, never outlives it
    sandboxed: bool = False  # its agent runs in an OS sandbox (``session exec`` on Linux with bwrap)

    def state(self, now: float) -> str:
        if self.ended_at is not None:
            return "ended"
        return "active" if now < self.expires_at else "expired"

    def is_live(self, now: float) -> bool:
        return self.state(now) == "active"

    def sees(self, context: str) -> bool:
        return context_contains(self.context, context)

    @property
    def bound(self) -> bool:
        return self.root_pid is not None

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()

    def public_dict(self) -> dict[str, Any]:
        """What may be shown or sent: everything but the token's hash."""
        data = self._asdict()
        del data["token_hash"]
        return data


TOKEN_PREFIX = "ast_"
_TOKEN_LENGTH = len(TOKEN_PREFIX) + 43  # 32 random bytes, url-safe base64 without padding


def new_session_id() -> str:
    return "as_" + random_hex(8)


def new_session_token() -> str:
    return TOKEN_PREFIX + random_token(32)


def token_hash(index_key: bytes, token: str) -> str:
    return blind_index(index_key, "session-token:" + token).hex()


def looks_like_token(raw: str) -> bool:
    return len(raw) == _TOKEN_LENGTH and raw.startswith(TOKEN_PREFIX) and all(
        ch.isascii() and (ch.isalnum() or ch in "-_") for ch in raw[len(TOKEN_PREFIX):])


UNKNOWN_SESSION = ("no such agent session, or not yours (AEGIS_SESSION); "
                   "ask the human to start one with: aegis-vault session exec")


def validate_session_id(raw: str) -> str:
    if not (raw.startswith("as_") and len(raw) == 19 and all(ch in "0123456789abcdef" for ch in raw[3:])):
        raise UsageError("a session id looks like as_0123456789abcdef")
    return raw


class SessionRefused(NotFoundError):
    """A declared session token that does not belong to the caller: unknown, or bound to
    another process tree. One message for both, so a caller cannot probe for sessions;
    ``stolen`` tells the broker's audit entry which it was."""

    def __init__(self, stolen: AgentSession | None) -> None:
        super().__init__(UNKNOWN_SESSION)
        self.stolen = stolen


def session_for(
    sessions: list[AgentSession],
    declared_hash: str | None,
    ancestry: tuple[tuple[int, int], ...],
    now: float,
) -> AgentSession | None:
    """The session a process acts in: the innermost one bound to it or an ancestor (pid
    and start time), else the one whose token it declares in ``AEGIS_SESSION`` (given
    here as the token's keyed hash), else none.

    A declared token must name a session the process may act in: unbound, or bound to
    its own tree. Inside a bound session a process may only declare that session or one
    nested in it, never step sideways. A session that has ended or expired refuses,
    rather than leaving its agent unconfined."""
    chain = set(ancestry)
    bound = [s for s in sessions if s.root_pid is not None and (s.root_pid, s.root_started) in chain]
    session = max(bound, key=lambda s: s.created_at) if bound else None
    if declared_hash:
        found = next((s for s in sessions if s.token_hash and s.token_hash == declared_hash), None)
        if found is None:
            raise SessionRefused(None)
        if found.bound and (found.root_pid, found.root_started) not in chain:
            raise SessionRefused(found)
        if session is not None and found.id != session.id and not _nested_in(found, session, sessions):
            raise SessionRefused(found)
        session = found
    if session is None:
        return None
    state = session.state(now)
    if state != "active":
        raise RefusedError(f"agent session {session.id} has {state}; ask the human to start a new one")
    return session


def _nested_in(inner: AgentSession, outer: AgentSession, sessions: list[AgentSession]) -> bool:
    by_id = {s.id: s for s in sessions}
    current: AgentSession | None = inner
    seen = 0
    while current is not None and current.parent_id and seen < len(sessions):
        if current.parent_id == outer.id:
            return True
        current = by_id.get(current.parent_id)
        seen += 1
    return False


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
        parent: AgentSession | None = None,
    ) -> tuple[AgentSession, str]:
        """A new session and the bearer token its agent gets (shown once, never stored).
        Inside ``parent`` it is a child: within its context, ending no later than it."""
        if not 0 < ttl_seconds <= MAX_SESSION_SECONDS:
            raise UsageError("a session lasts between 1 second and 30 days (--ttl 2h, say)")
        now = self._vault.clock()
        context = validate_context(context)
        expires_at = now + ttl_seconds
        if parent is not None:
            if not parent.sees(context):
                raise RefusedError(f"a session inside agent session {parent.id} stays within its context "
                                   f"({parent.context or 'all contexts'})")
            expires_at = min(expires_at, parent.expires_at)
        token = new_session_token()
        session = AgentSession(
            id=new_session_id(),
            label=validate_free_text(label, "session label", 120),
            context=context,
            created_at=now,
            expires_at=expires_at,
            root_pid=root_pid,
            root_started=root_started,
            created_by=self._actor.describe(),
            token_hash=token_hash(self._vault.keys.index_key, token),
            parent_id=parent.id if parent is not None else None,
        )
        with self._vault.store.transaction():
            self._records.insert(session.to_dict())
            self._vault.audit.append("session.start", self._actor, risk=Risk.MEDIUM, target=session.id,
                                     context=session.context,
                                     detail={"ttl_seconds": ttl_seconds, "label": session.label,
                                             "bound_to_pid": root_pid, "parent": session.parent_id})
        return session, token

    def hash_token(self, token: str) -> str:
        return token_hash(self._vault.keys.index_key, token)

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
            for child in self.list():
                if child.parent_id == session.id and child.ended_at is None:
                    revoked += self.end(child.id, reason=f"{reason} with its parent {session.id}")[1]
            operation = "session.expire" if reason.startswith("expired") else "session.end"
            self._vault.audit.append(operation, self._actor, risk=Risk.MEDIUM, target=session.id,
                                     context=session.context, detail={"grants_revoked": revoked})
        return ended, revoked

    def mark_sandboxed(self, session_id: str) -> AgentSession:
        """Record that the session's agent runs in a sandbox: lists and every approval
        pop-up say so, since a human decides differently about a contained agent."""
        with self._vault.store.transaction():
            found = self._records.get(validate_session_id(session_id))
            if found is None:
                raise NotFoundError(f"no agent session {session_id}; see: aegis-vault session list")
            rev, data = found
            session = AgentSession(**data)
            if not session.sandboxed:
                session = session._replace(sandboxed=True)
                self._records.update(session.to_dict(), rev)
                self._vault.audit.append("session.sandboxed", self._actor, risk=Risk.LOW, target=session.id,
                                         context=session.context, detail={})
        return session

    def end_expired(self) -> list[AgentSession]:
        """Close the books on sessions whose time ran out (their grants end with them)."""
        now = self._vault.clock()
        return [self.end(s.id, reason="expired")[0] for s in self.list() if s.state(now) == "expired"]
