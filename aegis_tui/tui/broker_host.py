"""The broker the app runs for its vault while the vault is unlocked.

One broker per vault: when another one (``aegis-vault serve``, another app) already
serves it, the app says so and leaves it be. Stopping denies what is still waiting and
lets those denials reach the audit log before the caller drops the keys: an entry
written after the lock could not be sealed, and it names a credential.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import StrEnum

from aegis_tui.core.broker.server import BrokerServer
from aegis_tui.core.broker.service import APP, BrokerService
from aegis_tui.core.errors import AegisError, ConflictError
from aegis_tui.core.vault import Vault

_DRAIN_SECONDS = 1.0  # denied requests leave the queue within a few turns of the loop


class BrokerState(StrEnum):
    OFF = "off"
    SERVING = "serving"
    ELSEWHERE = "elsewhere"  # another broker holds this vault's socket


class BrokerHost:
    """Start and stop the app's broker; ``on_change`` hears about its state and its queue."""

    def __init__(self, vault: Vault, *, approval_timeout: float, on_change: Callable[[], None]) -> None:
        self._vault = vault
        self._approval_timeout = approval_timeout
        self._on_change = on_change
        self._server: BrokerServer | None = None
        self._turn = asyncio.Lock()  # a start waits for the previous stop to free the socket
        self.state = BrokerState.OFF
        self.problem = ""  # why it is off, when starting failed

    @property
    def service(self) -> BrokerService | None:
        return self._server.service if self._server is not None else None

    async def start(self) -> None:
        async with self._turn:
            path = getattr(self._vault.store, "path", None)
            if self._server is not None or not self._vault.is_unlocked or path is None:
                return
            server = BrokerServer(BrokerService(self._vault, mode=APP, approval_timeout=self._approval_timeout),
                                  str(path))
            try:
                await server.start()
            except ConflictError:
                await server.close()
                self.state = BrokerState.ELSEWHERE
            except (AegisError, OSError) as error:
                await server.close()
                self.state, self.problem = BrokerState.OFF, str(error)
            else:
                server.service.approvals.subscribe(self._on_change)
                self._server, self.state, self.problem = server, BrokerState.SERVING, ""
        self._on_change()

    async def stop(self) -> None:
        """Deny every waiting request, stop listening, and return once the denials are recorded."""
        async with self._turn:
            server, self._server = self._server, None
            self.state = BrokerState.OFF
            if server is not None:
                approvals = server.service.approvals
                await server.close()
                loop = asyncio.get_running_loop()
                give_up = loop.time() + _DRAIN_SECONDS
                while approvals.pending() and loop.time() < give_up:
                    await asyncio.sleep(0.01)
                approvals.unsubscribe(self._on_change)
        self._on_change()
