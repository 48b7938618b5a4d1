"""Answering the approvals of a broker that runs in another process.

When ``aegis-vault serve`` already serves the vault, the app cannot host its own
broker; it attaches to that one instead, proving with the vault key (which it just
unlocked) that it is the owner's app and not an agent. To the app this looks like the
local ``ApprovalQueue``: ``pending()``, ``subscribe()``, ``decide()``, ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

from aegis_tui.core.broker.approvals import Decision, PendingRequest
from aegis_tui.core.broker.runtime import socket_path
from aegis_tui.core.broker.wire import encode_request, error_from_wire
from aegis_tui.core.crypto import approver_proof
from aegis_tui.core.errors import AegisError

_EVENT_LIMIT = 8 * 1024 * 1024  # a long queue of requests is one line


class RemoteApprovalQueue:
    """The approval queue of a broker in another process."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        self._reader = reader
        self._writer = writer
        self.timeout = timeout
        self._pending: list[PendingRequest] = []
        self._listeners: list[Callable[[], None]] = []
        self._next_id = 2
        self._task: asyncio.Task[None] | None = None
        self.connected = True

    @classmethod
    async def attach(cls, vault_path: str, data_key: bytes) -> RemoteApprovalQueue:
        """Attach to the broker serving ``vault_path``; raises ``AegisError`` if refused."""
        reader, writer = await asyncio.open_unix_connection(socket_path(vault_path), limit=_EVENT_LIMIT)
        try:
            challenge = await _call(reader, writer, 1, "approvals.attach", {})
            proof = approver_proof(data_key, bytes.fromhex(challenge["challenge"])).hex()
            attached = await _call(reader, writer, 2, "approvals.prove", {"proof": proof})
        except BaseException:
            writer.close()
            raise
        queue = cls(reader, writer, float(attached.get("timeout", 120.0)))
        queue._task = asyncio.create_task(queue._listen())
        return queue

    async def _listen(self) -> None:
        try:
            while line := await self._reader.readline():
                message = json.loads(line)
                if message.get("event") == "pending":
                    self._pending = [PendingRequest.from_wire(item) for item in message["requests"]]
                    self._changed()
        except (ConnectionError, ValueError, KeyError, TypeError, AegisError):
            pass
        finally:
            self.connected = False
            self._pending = []
            self._changed()

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def pending(self) -> list[PendingRequest]:
        return list(self._pending)

    def decide(self, request_id: int, decision: Decision) -> bool:
        """Send the answer; the broker's next pending list shows it gone."""
        if not self.connected:
            return False
        self._next_id += 1
        self._writer.write(encode_request(self._next_id, "approvals.decide", {"id": request_id, **decision.to_wire()},
                                          None))
        return True

    def deny_all(self) -> None:
        """Detaching leaves the broker's requests waiting for another app (or their timeout)."""

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


async def _call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request_id: int, op: str,
                args: dict[str, object]) -> dict[str, object]:
    writer.write(encode_request(request_id, op, args, None))
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 30)
    reply = json.loads(line) if line else {}
    if not reply.get("ok"):
        raise error_from_wire(reply.get("error") or {"message": "the broker closed the connection"})
    result = reply.get("result")
    return result if isinstance(result, dict) else {}
