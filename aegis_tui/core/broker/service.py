"""The broker's decisions, independent of any transport.

For every request: who is asking (the peer's process, and the agent session it belongs
to: by process ancestry first, so an agent cannot leave its session by changing its
environment, then by the session it names), what it may see (its session's context),
whether a grant covers it, and if not, a human decision through the approval queue.
Every decision is audited with the requesting process as the actor.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from aegis_tui.core.actor import Actor
from aegis_tui.core.agents.grants import Grant, Grants, GrantSpentError
from aegis_tui.core.agents.policy import (
    check_usable,
    git_location,
    list_visible,
    parse_filter,
    resolve_git,
    resolve_visible,
)
from aegis_tui.core.agents.sessions import AgentSession, Sessions, session_for
from aegis_tui.core.audit import Outcome, Risk
from aegis_tui.core.broker.approvals import DEFAULT_APPROVAL_TIMEOUT, ApprovalQueue, PendingRequest, literal
from aegis_tui.core.broker.peer import PeerInfo
from aegis_tui.core.broker.protocol import Request
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.gitcred import GitRequest
from aegis_tui.core.errors import DeniedError, NotFoundError, RefusedError, UnlockError, UsageError
from aegis_tui.core.models import Credential
from aegis_tui.core.secret import Secret
from aegis_tui.core.summary import credential_summary
from aegis_tui.core.vault import Vault

if TYPE_CHECKING:
    from aegis_tui.core.lifecycle.rotation import TickReport
    from aegis_tui.core.lifecycle.usage import UsageIndex

HEADLESS, APP = "headless", "app"
T = TypeVar("T")
_SESSION_FREE_OPS = {"hello"}


class Caller(NamedTuple):
    peer: PeerInfo
    session: AgentSession | None
    actor: Actor
    hang_up: Callable[[], asyncio.Future[None]] | None = None  # starts watching for the client leaving


def _git_request(args: dict[str, Any]) -> GitRequest:
    return GitRequest(args["protocol"].lower(), args["host"].lower(), args.get("path", ""), args.get("username", ""))


def git_username(credential: Credential, request: GitRequest) -> str:
    """A token usually needs some user name; git hosts accept any for tokens."""
    return credential.fields.get("username") or request.username or "x-access-token"


class BrokerService:
    """Answers broker requests for one unlocked vault."""

    def __init__(self, vault: Vault, *, mode: str = APP, approval_timeout: float = DEFAULT_APPROVAL_TIMEOUT) -> None:
        self.vault = vault
        self.mode = mode
        self.approvals = ApprovalQueue(approval_timeout)
        self.approvals.approvers = 1 if mode == APP else 0
        self._grants = Grants(vault)
        self._sessions: tuple[int, list[AgentSession]] | None = None
        self._masker: tuple[int, Any] | None = None
        self._batch: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._resolved: tuple[int, dict[tuple[str, str | None], Credential]] = (-1, {})
        self._peers: dict[PeerInfo, dict[str, str]] = {}
        self.last_lifecycle: TickReport | None = None
        self._usage: UsageIndex | None = None

    # -- who is asking --------------------------------------------------------------------
    def _all_sessions(self) -> list[AgentSession]:
        version = self.vault.store.change_version()
        if self._sessions is None or version == 0 or self._sessions[0] != version:
            self._sessions = (version, Sessions(self.vault).list())
        return self._sessions[1]

    def _session_of(self, request: Request, peer: PeerInfo) -> AgentSession | None:
        return session_for(self._all_sessions(), request.session, peer.ancestry, self.vault.clock())

    def _evidence(self, peer: PeerInfo) -> dict[str, str]:
        """Where a request came from, for its audit entry: the executable, the working
        folder and the process chain, as three strings (a connection's peer does not change,
        so this is built once per peer)."""
        found = self._peers.get(peer)
        if found is None:
            if len(self._peers) > 4096:
                self._peers.clear()
            found = self._peers[peer] = {"exe": peer.exe, "cwd": peer.cwd, "chain": peer.describe()}
        return found

    def _actor(self, peer: PeerInfo, session: AgentSession | None) -> Actor:
        chain = peer.chain
        return Actor(user=self.vault.actor.user, uid=peer.uid, pid=peer.pid, program=chain[0].name if chain else "?",
                     parent_pid=chain[1].pid if len(chain) > 1 else 0, parent=chain[1].name if len(chain) > 1 else "",
                     session_id=session.id if session else None)

    # -- dispatch -----------------------------------------------------------------------------
    async def handle(self, request: Request, peer: PeerInfo,
                     hang_up: Callable[[], asyncio.Future[None]] | None = None) -> dict[str, Any]:
        """``hang_up``: how to notice the client leaving, should the request wait for a human."""
        if not self.vault.is_unlocked:
            raise UnlockError("the vault is locked; unlock it in the aegis-vault app")
        session = None if request.op in _SESSION_FREE_OPS else self._session_of(request, peer)
        caller = Caller(peer, session, self._actor(peer, session), hang_up)
        handler: Callable[[dict[str, Any], Caller], Any] = getattr(self, "_op_" + request.op.replace(".", "_"))
        result = handler(request.args, caller)
        if isinstance(result, Awaitable):
            result = await result
        return result  # type: ignore[no-any-return]

    # -- operations ------------------------------------------------------------------------------
    def _op_hello(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        return {"protocol": 1, "vault_id": self.vault.vault_id, "mode": self.mode,
                "approver": self.approvals.approver_attached, "pending": len(self.approvals.pending())}

    def _op_list(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        now = self.vault.clock()
        found = list_visible(Credentials(self.vault, caller.actor), caller.session, parse_filter(args))
        return {"credentials": [credential_summary(c, now) for c in found]}

    def _resolve(self, reference: str, caller: Caller) -> Credential:
        """``resolve_visible``, remembered until anything in the vault changes: a looped
        ``get`` of one name should not decrypt and check its record twice per call."""
        version = self.vault.store.change_version()
        key = (reference, caller.session.id if caller.session else None)
        if version == 0 or self._resolved[0] != version:
            self._resolved = (version, {})
        found = self._resolved[1].get(key)
        if found is None:
            found = resolve_visible(Credentials(self.vault, caller.actor), reference, caller.session)
            if len(self._resolved[1]) < 10_000:
                self._resolved[1][key] = found
        return found

    async def _op_get(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        credential = self._resolve(args["ref"], caller)
        value, grant = await self.obtain(credential, caller, scopes=tuple(args.get("scopes", ())),
                                         reason=args.get("reason", ""), duration=args.get("duration"),
                                         via=args.get("via", "aegis-vault get"))
        return {"name": credential.name, "reference": credential.reference, "grant": grant.id,
                "status": str(credential.status), "value_b64": base64.b64encode(value.reveal()).decode()}

    async def obtain(self, credential: Credential, caller: Caller, *, scopes: tuple[str, ...], reason: str,
                     duration: int | None, via: str) -> tuple[Secret, Grant]:
        """The value, under a grant that covers it, asking the human if none does yet."""
        try:
            check_usable(credential, self.vault.clock())
            for _ in range(2):
                grant = self._grants.find(credential, caller.session.id if caller.session else None, scopes)
                if grant is None:
                    grant = await self._ask(credential, caller, scopes, reason, duration, via)
                try:
                    return await self._committed(self._use(credential, caller, grant, via)), grant
                except GrantSpentError:
                    continue  # a concurrent request took its last use: look again, or ask
            raise DeniedError(f"access to {credential.name!r} was granted, but used up by other requests first")
        except RefusedError as refusal:  # also when revoked while waiting: the rolled-back read left no trace
            self._audit(caller, "access.refused", credential, Risk.HIGH, Outcome.DENIED, reason=str(refusal))
            raise

    def _use(self, credential: Credential, caller: Caller, grant: Grant, via: str) -> Callable[[], Secret]:
        def use() -> Secret:
            Grants(self.vault, caller.actor).consume(grant)
            return Credentials(self.vault, caller.actor).reveal_id(
                credential.id, literal(via, 120), {"grant": grant.id, **self._evidence(caller.peer)})

        return use

    async def _committed(self, work: Callable[[], T]) -> T:
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

    async def _ask(self, credential: Credential, caller: Caller, scopes: tuple[str, ...], reason: str,
                   duration: int | None, via: str) -> Grant:
        now = self.vault.clock()
        session = caller.session
        pending = PendingRequest(
            id=self.approvals.new_id(), created_at=now, deadline=now + self.approvals.timeout, peer=caller.peer,
            session=session, credential=credential, scopes=scopes, reason=literal(reason),
            duration=duration if duration and duration > 0 else None, via=literal(via, 200),
        )
        self._audit(caller, "access.request", credential, Risk.MEDIUM, request=pending.id, scopes=list(scopes),
                    reason=pending.reason, via=pending.via, peer=caller.peer.to_dict())
        decision = await self.approvals.ask(pending, caller.hang_up() if caller.hang_up else None)
        if decision is None:
            self._audit(caller, "access.timeout", credential, Risk.MEDIUM, Outcome.DENIED, request=pending.id)
            where = "" if self.approvals.approver_attached else " (no app is attached to this broker: start aegis-vault)"
            raise DeniedError(f"no one approved access to {credential.name!r} within "
                              f"{int(self.approvals.timeout)} s{where}; ask the human to approve it in aegis-vault")
        if not decision.allow:
            self._audit(caller, "access.deny", credential, Risk.MEDIUM, Outcome.DENIED, request=pending.id)
            raise DeniedError(f"access to {credential.name!r} was denied by the vault's owner")
        ttl = decision.ttl_seconds
        if session is not None:
            left = session.expires_at - self.vault.clock()
            ttl = left if decision.for_session or ttl is None else min(ttl, left)
        return Grants(self.vault).create(
            credential=credential, context=session.context if session else credential.context,
            session_id=session.id if session else None, scopes=decision.scopes or scopes, uses=decision.uses,
            ttl_seconds=ttl, reason=pending.reason, created_by=f"approved in the app (request {pending.id})",
            outside_sessions=session is None,
        )

    def _op_run_report(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        masked = {literal(name, 128): count for name, count in args.get("masked", {}).items()}
        self.vault.audit.append(
            "run", caller.actor, risk=Risk.MEDIUM if masked else Risk.LOW, target=literal(args["command"], 120),
            detail={"credentials": [literal(name, 128) for name in args["credentials"]],
                    "duration": round(float(args["duration"]), 3), "exit_code": args.get("exit_code"),
                    "signal": args.get("signal"), "masked": masked},
        )
        return {}

    def masker(self) -> Any:
        """The masker over every active value of the vault, rebuilt after any change."""
        from aegis_tui.core.redaction import Masker

        version = self.vault.store.change_version()
        if self._masker is None or version == 0 or self._masker[0] != version:
            values = Credentials(self.vault).values(active_only=True)
            self._masker = (version, Masker.for_versions(values))
        return self._masker[1]

    # -- sessions and grants ----------------------------------------------------------------------
    def _op_session_start(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        root_pid = args.get("bind_pid")
        started = None
        if root_pid is not None:
            started = dict(caller.peer.ancestry).get(root_pid)
            if started is None:
                raise UsageError("a session can only be bound to the requesting process or one of its parents")
        if caller.session is not None and not caller.session.sees(args["context"]):
            raise RefusedError(f"agent session {caller.session.id} cannot start a session outside its context")
        session = Sessions(self.vault, caller.actor).start(args["context"], args["ttl"], label=args.get("label", ""),
                                                           root_pid=root_pid, root_started=started)
        return {"session": session.to_dict()}

    def _op_session_end(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        if caller.session is not None and args["id"] != caller.session.id:
            raise NotFoundError(f"no agent session {literal(args['id'], 40)}; see: aegis-vault session list")
        session, revoked = Sessions(self.vault, caller.actor).end(args["id"])
        return {"session": session.to_dict(), "grants_revoked": revoked}

    def _op_session_list(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        sessions = self._all_sessions()
        if caller.session is not None:
            sessions = [s for s in sessions if s.id == caller.session.id]
        now = self.vault.clock()
        return {"sessions": [{**s.to_dict(), "state": s.state(now)} for s in sessions]}

    def _op_grants_list(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        grants = self._grants.list(include_inactive=bool(args.get("all")))
        if caller.session is not None:
            grants = [g for g in grants if g.session_id == caller.session.id]
        now = self.vault.clock()
        return {"grants": [{**g.to_dict(), "state": g.state(now)} for g in grants]}

    def _op_grants_revoke(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        grant = self._grants.get(args["id"])
        if caller.session is not None and grant.session_id != caller.session.id:
            raise NotFoundError(f"no grant {literal(args['id'], 40)}; see: aegis-vault grants list")
        return {"grant": Grants(self.vault, caller.actor).revoke(grant.id, reason=args.get("reason", "")).to_dict()}

    # -- git -----------------------------------------------------------------------------------------
    async def _op_git_get(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        request = _git_request(args)
        credential = resolve_git(Credentials(self.vault, caller.actor), caller.session, request)
        value, grant = await self.obtain(credential, caller, scopes=(), reason=args.get("reason", ""), duration=None,
                                         via=f"git credential for {git_location(request)}")
        return {"name": credential.name, "username": git_username(credential, request), "grant": grant.id,
                "password_b64": base64.b64encode(value.reveal()).decode()}

    def _op_git_erase(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        request = _git_request(args)
        credentials = Credentials(self.vault, caller.actor)
        credential = resolve_git(credentials, caller.session, request)
        credentials.mark_failing(credential.name, via=f"git rejected it at {literal(git_location(request), 200)}")
        return {"name": credential.name}

    # -- approvers ---------------------------------------------------------------------------------
    def verify_approver(self, challenge: bytes, proof_hex: str) -> bool:
        """Whether an attaching app proved it unlocked this vault (see ``approver_proof``)."""
        from aegis_tui.core.crypto import approver_proof, constant_time_equal

        try:
            proof = bytes.fromhex(proof_hex)
        except ValueError:
            return False
        return constant_time_equal(proof, approver_proof(self.vault.keys.data_key, challenge))

    # -- upkeep ------------------------------------------------------------------------------------------
    def sweep(self) -> int:
        """End expired sessions (revoking their grants); returns how many ended."""
        return len(Sessions(self.vault).end_expired())

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

    def _audit(self, caller: Caller, operation: str, credential: Credential, risk: Risk,
               outcome: Outcome = Outcome.OK, **detail: object) -> None:
        self.vault.audit.append(operation, caller.actor, outcome=outcome, risk=risk, target=credential.name,
                                context=credential.context, detail=detail)
