"""Who is asking, and what the operations need from wherever they run.

A ``Caller`` is built the same way by every transport: the requesting process as the
kernel describes it (``PeerInfo``), the agent session it acts in (by process ancestry
first, then by the bearer token it presents), and the authority it proved. A ``Host``
is what the broker or an in-process command gives the handlers: the vault, cached
grants and sessions, a way to ask the human, a way to commit, and the memory of which
values each process was handed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

from aegis_tui.core.actor import Actor
from aegis_tui.core.agents.sessions import AgentSession, SessionRefused, looks_like_token, session_for
from aegis_tui.core.audit import Outcome, Risk
from aegis_tui.core.processes import PeerInfo
from aegis_tui.core.operations.registry import Authority

if TYPE_CHECKING:
    import asyncio

    from aegis_tui.core.agents.grants import Grants
    from aegis_tui.core.approvals import Decision, PendingRequest
    from aegis_tui.core.models import Credential
    from aegis_tui.core.vault import Vault

T = TypeVar("T")


class Caller(NamedTuple):
    peer: PeerInfo
    session: AgentSession | None
    actor: Actor
    authority: frozenset[Authority] = frozenset()
    hang_up: Callable[[], asyncio.Future[None]] | None = None  # starts watching for the client leaving
    # What a session socket carries beside the request: the sandboxed ``run`` client's
    # terminal or pipes (fds 0, 1, 2) and its forwarded signals (``run.start`` only).
    link: Any = None
    # The request came over a sandboxed session's own socket (not the broker's socket).
    via_session_socket: bool = False

    @property
    def is_owner(self) -> bool:
        return Authority.OWNER in self.authority

    @property
    def process_key(self) -> tuple[int, int]:
        """The requesting process, pid and start time: what it was handed is kept under this."""
        return self.peer.ancestry[0] if self.peer.ancestry else (self.peer.pid, 0)


class Host(Protocol):
    """What operations need from the place they run in (the broker, or this process)."""

    vault: Vault
    grants: Grants
    approval_timeout: float  # seconds a request waits for a human

    def sessions(self) -> list[AgentSession]: ...

    def status(self) -> dict[str, Any]:
        """What ``hello`` reports about the host (mode, requests waiting)."""

    async def ask(self, pending: PendingRequest, caller: Caller) -> Decision | None:
        """A human's answer; ``None`` when nobody answered in time."""

    @property
    def can_ask(self) -> bool:
        """Whether a human can be asked at all (an app is attached)."""

    async def committed(self, work: Callable[[], T]) -> T: ...

    def remember_given(self, caller: Caller, credential: Credential) -> None: ...

    def given(self, caller: Caller) -> set[str]:
        """Ids of the credentials handed to this caller's process."""

    def open_session_socket(self, session: AgentSession, plan: dict[str, Any]) -> str:
        """A socket that speaks for ``session`` only; its host path (``session.sandbox``)."""

    async def start_run(self, caller: Caller, launch: dict[str, Any]) -> dict[str, Any]:
        """Start one sandboxed ``run`` child outside the agent's sandbox; its report when
        it has ended (``run.start``)."""


def actor_for(vault: Vault, peer: PeerInfo, session: AgentSession | None) -> Actor:
    chain = peer.chain
    return Actor(user=vault.actor.user, uid=peer.uid, pid=peer.pid, program=chain[0].name if chain else "?",
                 parent_pid=chain[1].pid if len(chain) > 1 else 0, parent=chain[1].name if len(chain) > 1 else "",
                 session_id=session.id if session else None)


def resolve_caller(host: Host, peer: PeerInfo, declared_token: str | None, authority: frozenset[Authority],
                   hang_up: Callable[[], asyncio.Future[None]] | None = None, link: Any = None,
                   via_session_socket: bool = False) -> Caller:
    """The caller of one request. A token that is not the caller's (unknown, or bound to
    a process tree the caller is not in) is refused with one message for both, and a
    token used from outside its tree is audited as an attempted theft."""
    from aegis_tui.core.agents.sessions import token_hash

    vault = host.vault
    declared = None
    if declared_token:
        declared = token_hash(vault.keys.index_key, declared_token) if looks_like_token(declared_token) else "-"
    try:
        session = session_for(host.sessions(), declared, peer.ancestry, vault.clock())
    except SessionRefused as refusal:
        if refusal.stolen is not None:
            vault.audit.append("session.refused", actor_for(vault, peer, None), outcome=Outcome.DENIED,
                               risk=Risk.HIGH, target=refusal.stolen.id, context=refusal.stolen.context,
                               detail={"reason": "its token was presented from outside the session's process tree",
                                       "peer": peer.to_dict()})
        raise
    return Caller(peer, session, actor_for(vault, peer, session), authority, hang_up, link, via_session_socket)


def describe(caller: Caller) -> dict[str, Any]:
    """Where a request came from, for its audit entry."""
    peer = caller.peer
    return {"exe": peer.exe, "cwd": peer.cwd, "chain": peer.describe()}


def session_of_this_process(vault: Vault) -> AgentSession | None:
    """The agent session this process acts in, for a command that unlocked the vault
    itself: found exactly as the broker finds a caller's (``resolve_caller``)."""
    import os

    from aegis_tui.core.operations.local_host import LocalHost
    from aegis_tui.core.processes import describe_process

    return resolve_caller(LocalHost(vault), describe_process(os.getpid(), os.getuid()),
                          os.environ.get("AEGIS_SESSION") or None, frozenset({Authority.OWNER})).session
