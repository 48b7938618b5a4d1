"""The broker's side of the operations in ``core/operations``: the host they run in.

It keeps what a long-running process can keep between requests (grants, sessions and
resolved names, each cached until the vault changes; the masker each process may use),
asks the human through the approval queue, commits the requests of one event-loop turn
together, and remembers which values it handed to which process so that only those are
masked in that process's output. Which operations exist, who may call them and what
they do is declared once in ``core/operations``; this module only hosts them.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aegis_tui.core.agents.grants import Grants
from aegis_tui.core.agents.sessions import AgentSession, Sessions
from aegis_tui.core.audit import Risk
from aegis_tui.core.approvals import DEFAULT_APPROVAL_TIMEOUT, ApprovalQueue, Decision, PendingRequest
from aegis_tui.core.processes import PeerInfo
from aegis_tui.core.broker.protocol import Request
from aegis_tui.core.broker.sandbox_run import RunnerServer
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import RefusedError, UnlockError
from aegis_tui.core.models import Credential
from aegis_tui.core.operations.caller import Caller, resolve_caller
from aegis_tui.core.operations.perform import perform
from aegis_tui.core.operations.provenance import verify_run_reporter
from aegis_tui.core.operations.registry import Authority
from aegis_tui.core.vault import Vault

if TYPE_CHECKING:
    from aegis_tui.core.lifecycle.rotation import TickReport
    from aegis_tui.core.broker.session_socket import SessionSockets
    from aegis_tui.core.lifecycle.usage import UsageIndex
    from aegis_tui.core.redaction import Masker

HEADLESS, APP = "headless", "app"
T = TypeVar("T")
_GIVEN_PROCESSES = 4096  # processes remembered (oldest forgotten first)
MASK_STREAMS_PER_MINUTE = 120  # per process: a run opens one per output channel


class BrokerService:
    """Hosts the operations for one unlocked vault (see ``core.operations.caller.Host``)."""

    def __init__(self, vault: Vault, *, mode: str = APP, approval_timeout: float = DEFAULT_APPROVAL_TIMEOUT) -> None:
        self.vault = vault
        self.mode = mode
        self.approvals = ApprovalQueue(approval_timeout)
        self.approvals.approvers = 1 if mode == APP else 0
        self.grants = Grants(vault)
        self._sessions: tuple[int, list[AgentSession]] | None = None
        self._maskers: tuple[int, dict[frozenset[str], Masker]] = (-1, {})
        self._batch: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._given: OrderedDict[tuple[int, int], set[str]] = OrderedDict()
        self._mask_opens: dict[tuple[int, int], list[float]] = {}
        self._described: OrderedDict[tuple[int, int], PeerInfo] = OrderedDict()
        self.last_lifecycle: TickReport | None = None
        self._usage: UsageIndex | None = None
        self.session_sockets: SessionSockets | None = None  # set by the server that serves this service
        self.runners = RunnerServer()  # starts sandboxed sessions' runs (started when first needed)

    # -- the host -------------------------------------------------------------------------
    def sessions(self) -> list[AgentSession]:
        version = self.vault.store.change_version()
        if self._sessions is None or version == 0 or self._sessions[0] != version:
            self._sessions = (version, Sessions(self.vault).list())
        return self._sessions[1]

    @property
    def approval_timeout(self) -> float:
        return self.approvals.timeout

    @property
    def can_ask(self) -> bool:
        return self.approvals.approver_attached

    def status(self) -> dict[str, Any]:
        return {"mode": self.mode, "pending": len(self.approvals.pending())}

    async def ask(self, pending: PendingRequest, caller: Caller) -> Decision | None:
        now = self.vault.clock()
        pending = pending._replace(id=self.approvals.new_id(), created_at=now, deadline=now + self.approvals.timeout)
        return await self.approvals.ask(pending, caller.hang_up() if caller.hang_up else None)

    def remember_given(self, caller: Caller, credential: Credential) -> None:
        key = caller.process_key
        self._given.setdefault(key, set()).add(credential.id)
        self._given.move_to_end(key)
        while len(self._given) > _GIVEN_PROCESSES:
            self._given.popitem(last=False)

    def given(self, caller: Caller) -> set[str]:
        return self._given.get(caller.process_key, set())

    async def committed(self, work: Callable[[], T]) -> T:
        """Run ``work`` in a transaction shared with the other requests that arrived in
        the same turn of the event loop: one disk sync and one signature of the audit
        head for all of them, instead of one each (the sync dominates a request's cost).
        Each request runs in its own savepoint, so one failing leaves the others whole."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._batch.append((work, future))
        if len(self._batch) == 1:
            asyncio.get_running_loop().call_soon(self._commit_batch)
        return await future  # type: ignore[no-any-return]

    def _commit_batch(self) -> None:
        batch, self._batch = self._batch, []
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            with self.vault.store.transaction(), self.vault.audit.signing_deferred():
                for work, future in batch:
                    try:
                        with self.vault.store.savepoint():
                            outcomes.append((future, work(), None))
                    except Exception as error:  # noqa: BLE001 - handed to that request's caller
                        outcomes.append((future, None, error))
        except Exception as error:  # the commit itself failed: nothing of the batch happened
            outcomes = [(future, None, error) for _, future in batch]
        for future, result, error in outcomes:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    # -- requests ---------------------------------------------------------------------------
    def caller(self, request: Request, peer: PeerInfo, hang_up: Callable[[], asyncio.Future[None]] | None = None,
               authority: frozenset[Authority] = frozenset(), link: Any = None,
               via_session_socket: bool = False) -> Caller:
        if not self.vault.is_unlocked:
            raise UnlockError("the vault is locked; unlock it in the aegis-vault app")
        return resolve_caller(self, self._as_first_seen(peer), request.session, authority, hang_up, link,
                              via_session_socket)

    def _as_first_seen(self, peer: PeerInfo) -> PeerInfo:
        """A process that holds values makes itself undumpable after its first request,
        and the kernel then hides its executable and folder from us as from anyone: the
        later connections of the same process (pid and start time) are taken to be what
        it was when it could still be read. It cannot have become something else since:
        running another program would have made it readable again."""
        if not peer.ancestry:
            return peer
        key = peer.ancestry[0]
        if peer.exe != "?":
            self._described[key] = peer
            self._described.move_to_end(key)
            while len(self._described) > _GIVEN_PROCESSES:
                self._described.popitem(last=False)
            return peer
        return self._described.get(key, peer)

    async def handle(self, request: Request, peer: PeerInfo,
                     hang_up: Callable[[], asyncio.Future[None]] | None = None, *,
                     authority: frozenset[str] = frozenset(), link: Any = None,
                     via_session_socket: bool = False) -> dict[str, Any]:
        """``hang_up``: how to notice the client leaving, should the request wait for a
        human; ``authority``: what the transport verified (the owner channel); ``link``
        and ``via_session_socket``: what a session socket adds (``session_socket``)."""
        caller = self.caller(request, peer, hang_up, frozenset(Authority(a) for a in authority), link,
                             via_session_socket)
        try:
            return await perform(self, request.op, request.args, caller)
        finally:
            if request.op == "session.end" and self.session_sockets is not None:
                self.session_sockets.prune()  # an ended session's socket goes at once

    # -- sandboxed sessions -----------------------------------------------------------------------
    def open_session_socket(self, session: AgentSession, plan: dict[str, Any]) -> str:
        """Checked here, not in the operation: the plan's module knows the broker's folder,
        and the operations sit below the broker."""
        from aegis_tui.core.errors import UsageError
        from aegis_tui.core.sandbox.plan import SandboxPlan

        if self.session_sockets is None:
            raise RefusedError("this broker does not serve session sockets")
        try:
            checked = SandboxPlan.from_dict(plan).to_dict()
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise UsageError(f"session.sandbox: the plan is not valid ({str(error)[:200]})") from None
        path = self.session_sockets.open(session, checked)
        self.runners.ensure()  # started now, so the session's first run does not wait for it
        return path

    async def start_run(self, caller: Caller, launch: dict[str, Any]) -> dict[str, Any]:
        """The run's child, started by the runner outside the agent's sandbox; the values
        it masks are every active version of the credentials it was given."""
        names = set(launch["values"])
        masks = {name: [secret.reveal() for _, secret in versions]
                 for name, versions in Credentials(self.vault).values(active_only=True).items()
                 if name in names} if names else {}
        return await self.runners.run(caller.link, launch, masks)

    # -- masking ------------------------------------------------------------------------------
    def masker_for(self, request: Request, peer: PeerInfo) -> Masker:
        """The masker for one ``run``'s output: the values handed to that process, and no
        others, so the stream cannot tell anyone whether some text is a vault value.
        Only ``aegis-vault run`` opens one, a bounded number of times a minute."""
        from aegis_tui.core.redaction import Masker

        caller = self.caller(request, peer)
        verify_run_reporter(caller.peer)
        key = caller.process_key
        now = time.monotonic()
        recent = [t for t in self._mask_opens.get(key, []) if now - t < 60.0]
        if len(recent) >= MASK_STREAMS_PER_MINUTE:
            self.vault.audit.append("mask.refused", caller.actor, risk=Risk.HIGH, target="mask",
                                    detail={"reason": "too many masking streams", "peer": caller.peer.to_dict()})
            raise RefusedError("too many masking streams from this process; wait a minute")
        self._mask_opens[key] = [*recent, now]
        if len(self._mask_opens) > _GIVEN_PROCESSES:
            self._mask_opens.pop(next(iter(self._mask_opens)))
        ids = frozenset(self.given(caller))
        version = self.vault.store.change_version()
        if version == 0 or self._maskers[0] != version:
            self._maskers = (version, {})
        masker = self._maskers[1].get(ids)
        if masker is None:
            names = {c.name for c in Credentials(self.vault).list() if c.id in ids} if ids else set()
            values = {name: pairs for name, pairs in Credentials(self.vault).values(active_only=True).items()
                      if name in names} if names else {}
            masker = self._maskers[1][ids] = Masker.for_versions(values)
        return masker

    def mask_finished(self, request: Request, peer: PeerInfo, bytes_seen: int, hits: dict[str, int]) -> None:
        """One audit entry per stream: how much passed and what was hidden (names only)."""
        caller = self.caller(request, peer)
        self.vault.audit.append("mask.stream", caller.actor, risk=Risk.MEDIUM if hits else Risk.LOW, target="mask",
                                detail={"bytes": bytes_seen, "masked": dict(hits)})

    # -- upkeep ------------------------------------------------------------------------------------------
    def sweep(self) -> int:
        """End expired sessions (revoking their grants) and close their sockets; returns
        how many ended."""
        ended = len(Sessions(self.vault).end_expired())
        if self.session_sockets is not None:
            self.session_sockets.prune()
        return ended

    def tick_lifecycle(self) -> TickReport:
        """Rotation by policy and ended overlaps (``RotationManager.tick``), then the usage
        index the access review reads, so the review never waits on the whole audit log.
        Called on a worker thread; the report is kept for the app to show."""
        from aegis_tui.core.lifecycle.rotation import RotationManager
        from aegis_tui.core.lifecycle.usage import UsageIndex

        report = RotationManager(self.vault).tick()
        if self._usage is None:  # kept between ticks: it skips re-reading its own stored record
            self._usage = UsageIndex(self.vault)
        self._usage.refresh()
        self.last_lifecycle = report
        return report
