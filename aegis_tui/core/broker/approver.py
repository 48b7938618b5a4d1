"""Answering the approvals of a broker that runs in another process.

When ``aegis-vault serve`` already serves the vault, the app cannot host its own
broker; it attaches to that one instead, over the owner channel (``owner_channel``):
it first makes sure the process behind the socket is the broker named in the lock
file, running this aegis-vault and holding this vault's key, and only then proves
that it holds the key too. Every message after that carries a sequence number and a
MAC, so nothing between the two can make, drop, reorder or replay a decision. To the
app this looks like the local ``ApprovalQueue``: ``pending()``, ``subscribe()``,
``decide()``, ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

from aegis_tui.core.approvals import Decision, PendingRequest
from aegis_tui.core.broker.owner_channel import (
    Channel,
    ChannelBroken,
    OwnerHandshake,
    VerifiedBroker,
    request_message,
)
from aegis_tui.core.broker.runtime import socket_path
from aegis_tui.core.broker.wire import encode_request, error_from_wire
from aegis_tui.core.errors import AegisError

_EVENT_LIMIT = 8 * 1024 * 1024  # a long queue of requests is one line
_HANDSHAKE_SECONDS = 30.0


class RemoteApprovalQueue:
    """The approval queue of a broker in another process, over an authenticated channel."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, channel: Channel,
                 broker: VerifiedBroker, timeout: float) -> None:
        self._reader = reader
        self._writer = writer
        self._channel = channel
        self.broker = broker  # verified: the lock file's broker, this aegis-vault, this vault's key
        self.timeout = timeout
        self._pending: list[PendingRequest] = []
        self._listeners: list[Callable[[], None]] = []
        self._next_id = 3
        self._task: asyncio.Task[None] | None = None
        self.connected = True

    @classmethod
    async def attach(cls, vault_path: str, data_key: bytes, vault_id: str) -> RemoteApprovalQueue:
        """Attach to the broker serving ``vault_path``. Raises ``OwnerChannelRefused``
        (saying why) when the process behind the socket is not that broker, and
        ``AegisError`` when the broker refuses us."""
        reader, writer = await asyncio.open_unix_connection(socket_path(vault_path), limit=_EVENT_LIMIT)
        try:
            handshake = OwnerHandshake(data_key, vault_id, vault_path)
            answer = await _call(reader, writer, 1, "owner.hello", handshake.hello())
            broker = handshake.check(answer, writer.get_extra_info("socket"))
            writer.write(encode_request(2, "owner.prove", {"proof": handshake.proof()}, None))
            await writer.drain()
            channel = handshake.channel()
            welcome = _opened(channel, await _line(reader))
            attached = _result(welcome)
            writer.write(channel.seal(request_message(3, "approvals.subscribe", {})))
            await writer.drain()
        except BaseException:
            writer.close()
            raise
        queue = cls(reader, writer, channel, broker, float(attached.get("timeout", 120.0)))  # type: ignore[arg-type]
        queue._task = asyncio.create_task(queue._listen())
        return queue

    async def _listen(self) -> None:
        try:
            while line := await self._reader.readline():
                message = self._channel.open(line)
                if message.get("event") == "pending":
                    self._pending = [PendingRequest.from_wire(item) for item in message["requests"]]
                    self._changed()
        except (ConnectionError, ValueError, KeyError, TypeError, AegisError):
            pass  # ChannelBroken included: a frame the broker did not send ends the channel
        finally:
            self.connected = False
            self._pending = []
            self._writer.close()
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
        if not self.connected or self._writer.is_closing():
            return False
        self._next_id += 1
        self._writer.write(self._channel.seal(request_message(self._next_id, "approvals.decide",
                                                              {"id": request_id, **decision.to_wire()})))
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


async def _line(reader: asyncio.StreamReader) -> bytes:
    line = await asyncio.wait_for(reader.readline(), _HANDSHAKE_SECONDS)
    if not line.endswith(b"\n"):
        raise AegisError("the broker closed the connection")
    return line


def _result(reply: dict[str, object]) -> dict[str, object]:
    if not reply.get("ok"):
        raise error_from_wire(reply.get("error") or {"message": "the broker refused"})
    result = reply.get("result")
    return result if isinstance(result, dict) else {}


def _opened(channel: Channel, line: bytes) -> dict[str, object]:
    """The broker's first authenticated frame; a refusal comes as a plain error line."""
    try:
        return channel.open(line)
    except ChannelBroken:
        with contextlib.suppress(ValueError):
            plain = json.loads(line)
            if isinstance(plain, dict) and plain.get("ok") is False:
                raise error_from_wire(plain.get("error")) from None
        raise


async def _call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request_id: int, op: str,
                args: dict[str, object]) -> dict[str, object]:
    writer.write(encode_request(request_id, op, args, None))
    await writer.drain()
    return _result(json.loads(await _line(reader)))
