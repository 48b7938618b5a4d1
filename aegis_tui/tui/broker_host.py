"""The broker the app runs for its vault while the vault is unlocked.

One broker per vault: when another one already serves it (``aegis-vault serve``, or
another app), the app attaches to that one to answer its approvals instead, over the
owner channel: only once the process behind the socket is verified to be the broker
named in the lock file, running this aegis-vault and holding this vault's key, does the
app prove it holds the key too. Otherwise it does not attach, and ``problem`` says why. Stopping denies what waits on our own
broker and lets those denials reach the audit log before the caller drops the keys: an
entry written after the lock could not be sealed, and it names a credential.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

from aegis_tui.core.approvals import Decision, PendingRequest
from aegis_tui.core.broker.approver import RemoteApprovalQueue
from aegis_tui.core.broker.owner_channel import OwnerChannelRefused, VerifiedBroker
from aegis_tui.core.broker.server import BrokerServer
from aegis_tui.core.broker.service import APP, BrokerService
from aegis_tui.core.errors import AegisError, ConflictError
from aegis_tui.core.vault import Vault

_TAKEOVER_TRIES, _TAKEOVER_PAUSE = 10, 0.2


class Approvals(Protocol):
    """What the approval dialog needs of a queue, ours (``ApprovalQueue``) or a remote one."""

    timeout: float

    def pending(self) -> list[PendingRequest]: ...
    def decide(self, request_id: int, decision: Decision) -> bool: ...
    def subscribe(self, listener: Callable[[], None]) -> None: ...
    def unsubscribe(self, listener: Callable[[], None]) -> None: ...


class BrokerState(StrEnum):
    OFF = "off"
    SERVING = "serving"  # our own broker
    ATTACHED = "attached"  # answering the approvals of the broker that serves this vault
    ELSEWHERE = "elsewhere"  # another broker serves it and would not take us as approver


class BrokerHost:
    """Start and stop the app's broker; ``on_change`` hears about its state and its queue."""

    def __init__(self, vault: Vault, *, approval_timeout: float, on_change: Callable[[], None]) -> None:
        self._vault = vault
        self._approval_timeout = approval_timeout
        self._on_change = on_change
        self._server: BrokerServer | None = None
        self._remote: RemoteApprovalQueue | None = None
        self._turn = asyncio.Lock()  # a start waits for the previous stop to free the socket
        self._restarting: asyncio.Future[None] | None = None
        self.state = BrokerState.OFF
        self.problem = ""  # why agents cannot reach the vault through us, when they cannot
        self.peer: VerifiedBroker | None = None  # the broker we attached to, as verified

    @property
    def service(self) -> BrokerService | None:
        return self._server.service if self._server is not None else None

    @property
    def approvals(self) -> Approvals | None:
        if self._server is not None:
            return self._server.service.approvals
        return self._remote

    async def start(self) -> None:
        async with self._turn:
            path = getattr(self._vault.store, "path", None)
            if self.state is not BrokerState.OFF or not self._vault.is_unlocked or path is None:
                return
            server = BrokerServer(BrokerService(self._vault, mode=APP, approval_timeout=self._approval_timeout),
                                  str(path))
            try:
                await server.start()
            except ConflictError:
                await self._attach(str(path))
            except (AegisError, OSError) as error:
                await server.close()
                self.problem = str(error)
            else:
                server.service.approvals.subscribe(self._on_change)
                self._server, self.state, self.problem = server, BrokerState.SERVING, ""
        self._on_change()

    async def _attach(self, path: str) -> None:
        try:
            remote = await RemoteApprovalQueue.attach(path, self._vault.keys.data_key, self._vault.vault_id)
        except OwnerChannelRefused as refused:
            self.state = BrokerState.ELSEWHERE
            self.problem = f"another process serves this vault's socket, and the app did not attach to it: {refused}"
            return
        except (AegisError, OSError, ValueError) as error:
            self.state = BrokerState.ELSEWHERE
            self.problem = f"another broker serves this vault and did not take this app as its approver ({error})"
            return
        remote.subscribe(self._remote_changed)
        self._remote, self.state, self.problem, self.peer = remote, BrokerState.ATTACHED, "", remote.broker

    def _remote_changed(self) -> None:
        remote = self._remote
        if remote is not None and not remote.connected:
            # That broker stopped: serve the vault ourselves from now on (or attach to its successor).
            self._remote, self.state, self.peer = None, BrokerState.OFF, None
            remote.unsubscribe(self._remote_changed)
            self._restarting = asyncio.ensure_future(self._restart(remote))
        self._on_change()

    async def _restart(self, gone: RemoteApprovalQueue) -> None:
        """Take over from a broker that stopped; it may still hold the vault's lock for a moment."""
        await gone.close()
        for _ in range(_TAKEOVER_TRIES):
            await self.start()
            if self.state is not BrokerState.ELSEWHERE:
                return
            self.state = BrokerState.OFF
            await asyncio.sleep(_TAKEOVER_PAUSE)
        self.state = BrokerState.ELSEWHERE
        self._on_change()

    async def stop(self) -> None:
        """Deny what waits on our broker (recorded and answered while the keys can still
        seal the audit entries), stop listening, or detach from another broker."""
        if self._restarting is not None:
            self._restarting.cancel()
        async with self._turn:
            server, self._server = self._server, None
            remote, self._remote = self._remote, None
            self.state, self.peer = BrokerState.OFF, None
            if remote is not None:
                remote.unsubscribe(self._remote_changed)
                await remote.close()  # its requests wait for another app, or their timeout
            if server is not None:
                await server.close()  # denies what waits, and lets the denials out first
                server.service.approvals.unsubscribe(self._on_change)
        self._on_change()
