"""A headless broker for as long as one command needs it: ``serve``'s, and the one a
sandboxed ``session exec`` hosts when no broker serves the vault.

A sandboxed agent can reach nothing but its session's socket, which a broker makes and
serves; without one it could not ask for anything at all. So ``session exec`` unlocks
the vault and runs the same broker ``serve`` runs (headless: standing grants only, new
requests wait for an app) in a thread of its own, with its own event loop, until the
session has ended. One coroutine (``serve_vault``) is that broker, for both.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aegis_tui.core.vault import Vault

START_SECONDS = 30.0


async def serve_vault(vault: Vault, path: str, until: asyncio.Event, *, on_ready: Callable[[], None] | None = None,
                      **options: Any) -> None:
    """Serve ``vault`` headless on its socket until ``until`` is set; ``options`` go to
    ``BrokerService`` (``approval_timeout``)."""
    from aegis_tui.core.broker.server import BrokerServer
    from aegis_tui.core.broker.service import HEADLESS, BrokerService

    server = BrokerServer(BrokerService(vault, mode=HEADLESS, **options), path)
    await server.start()
    try:
        if on_ready is not None:
            on_ready()
        await until.wait()
    finally:
        await server.close()


class HostedBroker:
    """``serve_vault`` in a background thread; ``close`` stops it, waits for it and
    closes the vault (it is the broker's from ``start`` on)."""

    def __init__(self, vault: Vault, path: str) -> None:
        self._vault = vault
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(vault, path), name="aegis-hosted-broker", daemon=True)

    @classmethod
    def start(cls, vault: Vault, path: str) -> HostedBroker:
        """Serving once this returns; a broker that could not start raises its error."""
        hosted = cls(vault, path)
        hosted._thread.start()
        hosted._ready.wait(START_SECONDS)
        if hosted._failure is not None or not hosted._ready.is_set():
            hosted.close()
            raise hosted._failure or RuntimeError("the broker for this session did not start in time")
        return hosted

    def _run(self, vault: Vault, path: str) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(serve_vault(vault, path, self._stop, on_ready=self._ready.set))
        except BaseException as failure:  # reported to start(), or lost after close(): nothing left to serve
            self._failure = failure
        finally:
            self._ready.set()
            self._loop.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(START_SECONDS)
        self._vault.close()
