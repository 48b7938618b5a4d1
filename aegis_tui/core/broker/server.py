"""The broker's transport: an asyncio Unix-socket server speaking ``protocol``.

It owns everything about connections and nothing about decisions: the peer check
(SO_PEERCRED; other uids are refused and audited), frame limits, idle and per-request
timeouts, clients that vanish mid-request (their pending approval is withdrawn), and
the binary masking stream ``aegis-vault run`` pipes a child's output through.
One broker per vault: a lock file held for the server's lifetime says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from typing import Any

from aegis_tui.core.audit import Outcome, Risk
from aegis_tui.core.broker.approvals import Decision
from aegis_tui.core.broker.peer import PeerInfo, describe_process
from aegis_tui.core.broker.protocol import Request, decode_request, request_id_of
from aegis_tui.core.broker.runtime import lock_path, peer_credentials, socket_path
from aegis_tui.core.broker.service import BrokerService
from aegis_tui.core.broker.wire import (
    DATA,
    END,
    FLUSH,
    HITS,
    MAX_FRAME_BYTES,
    MAX_STREAM_FRAME,
    STREAM_HEADER,
    encode_error,
    encode_result,
)
from aegis_tui.core.crypto import random_bytes
from aegis_tui.core.errors import AegisError, ConflictError, ProtocolError, RefusedError

IDLE_TIMEOUT = 30.0  # a connection that sends nothing for this long is closed
SWEEP_INTERVAL = 15.0
LIFECYCLE_INTERVAL = 60.0  # rotation periods are days: a minute late is on time
_DRAIN_SECONDS = 1.0  # denied requests leave the queue within a few turns of the loop


def _hang_up(reader: asyncio.StreamReader) -> asyncio.Future[None]:
    """Done when the client closes its end: started only while a request waits for a
    human, so a client that gives up withdraws its request (the dialog goes away).
    A client that sends more before its answer loses those bytes (it must wait)."""

    async def watch() -> None:
        while await reader.read(4096):
            pass

    return asyncio.ensure_future(watch())


class BrokerServer:
    """Serve one ``BrokerService`` on the vault's socket until ``close``."""

    def __init__(self, service: BrokerService, vault_path: str, *, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.service = service
        self.vault_path = vault_path
        self.idle_timeout = idle_timeout
        self.socket_path = socket_path(vault_path, create=True)
        self._server: asyncio.AbstractServer | None = None
        self._lock_fd: int | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        fd = os.open(lock_path(self.vault_path), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConflictError("a broker already serves this vault (the app or aegis-vault serve)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)  # stale: whoever made it no longer holds the lock
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._accept, self.socket_path,
                                                           limit=MAX_FRAME_BYTES + 1, backlog=1024)
        finally:
            os.umask(old_umask)
        os.chmod(self.socket_path, 0o600)
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def close(self) -> None:
        """Deny what waits for a human and let those answers (and their audit entries) go
        out before the connections are cut: a client should hear "denied", not "gone"."""
        approvals = self.service.approvals
        loop = asyncio.get_running_loop()
        give_up = loop.time() + _DRAIN_SECONDS
        while approvals.pending() and loop.time() < give_up:
            approvals.deny_all()  # again each turn: one may have arrived meanwhile
            await asyncio.sleep(0.01)
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_path)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def _sweep_forever(self) -> None:
        """Upkeep: expired sessions every few seconds; rotation by policy every minute, and
        at once on start, which catches up what fell due while no broker ran. Rotation
        runs on a worker thread: a provider hook may take its whole timeout."""
        loop = asyncio.get_running_loop()
        next_lifecycle = loop.time()
        while True:
            if self.service.vault.is_unlocked:
                with contextlib.suppress(AegisError):
                    self.service.sweep()
                if loop.time() >= next_lifecycle:
                    next_lifecycle = loop.time() + LIFECYCLE_INTERVAL
                    with contextlib.suppress(AegisError):
                        await asyncio.to_thread(self.service.tick_lifecycle)
            await asyncio.sleep(SWEEP_INTERVAL)

    # -- connections -----------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pid, uid, _ = peer_credentials(writer.get_extra_info("socket"))
        if uid != os.getuid():
            self._refuse_stranger(pid, uid)
            writer.write(encode_error(None, RefusedError("this broker only serves the user who runs it")))
            await writer.drain()
            return
        peer = describe_process(pid, uid)
        loop = asyncio.get_running_loop()
        while True:
            # A timer, not wait_for: this runs for every request, and wait_for makes a task.
            idle = loop.call_later(self.idle_timeout, writer.close)
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                writer.write(encode_error(None, ProtocolError(f"request larger than {MAX_FRAME_BYTES} bytes")))
                await writer.drain()
                return  # the rest of that frame cannot be told from the next request
            finally:
                idle.cancel()
            if not line.endswith(b"\n"):
                return  # end of stream, possibly mid-request: nobody is left to answer
            try:
                request = decode_request(line)
            except ProtocolError as error:
                writer.write(encode_error(request_id_of(line), error))
                await writer.drain()
                continue
            if request.op == "mask":
                await self._mask_stream(request, peer, reader, writer)
                return
            if request.op == "approvals.attach":
                await self._approver(request, peer, reader, writer)
                return
            writer.write(await self._answer(request, peer, reader))
            await writer.drain()

    async def _answer(self, request: Request, peer: PeerInfo, reader: asyncio.StreamReader) -> bytes:
        """Nothing here waits except for a human (bounded by the approval timeout) and
        for the shared commit; so no per-request task or timer on the hot path."""
        try:
            return encode_result(request.id, await self.service.handle(request, peer, lambda: _hang_up(reader)))
        except AegisError as error:
            return encode_error(request.id, error)
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception as error:  # never a traceback, never a value: the type is enough to debug
            return encode_error(request.id, AegisError(f"the broker failed on {request.op} ({type(error).__name__})"))

    def _refuse_stranger(self, pid: int, uid: int) -> None:
        vault = self.service.vault
        with contextlib.suppress(AegisError):
            vault.audit.append("broker.refused", vault.actor, outcome=Outcome.DENIED, risk=Risk.HIGH, target="broker",
                               detail={"peer_pid": pid, "peer_uid": uid, "reason": "another user"})

    # -- an attached approver ---------------------------------------------------------------------
    async def _approver(self, request: Request, peer: PeerInfo, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        """An app that unlocked the same vault answers this (headless) broker's approvals.
        It proves it holds the vault key by answering a one-time challenge; from then on
        the broker pushes the pending list as ``{"event": "pending", ...}`` lines after
        every change, and reads ``approvals.decide`` requests."""
        vault = self.service.vault
        challenge = random_bytes(32)
        writer.write(encode_result(request.id, {"challenge": challenge.hex()}))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), self.idle_timeout)
        try:
            proof = decode_request(line)
        except ProtocolError as error:
            writer.write(encode_error(request_id_of(line), error))
            return
        if proof.op != "approvals.prove" or not self.service.verify_approver(challenge, proof.args["proof"]):
            with contextlib.suppress(AegisError):
                vault.audit.append("approver.refused", vault.actor, outcome=Outcome.DENIED, risk=Risk.HIGH,
                                   target="broker", detail={"peer": peer.to_dict()})
            writer.write(encode_error(proof.id, RefusedError("only an app that unlocked this vault can answer approvals")))
            return
        queue = self.service.approvals
        vault.audit.append("approver.attach", vault.actor, risk=Risk.MEDIUM, target="broker",
                           detail={"peer": peer.to_dict()})
        writer.write(encode_result(proof.id, {"attached": True, "timeout": queue.timeout}))

        def push() -> None:
            event = {"v": 1, "event": "pending", "requests": [p.to_wire() for p in queue.pending()]}
            writer.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")

        queue.approvers += 1
        queue.subscribe(push)
        try:
            push()
            await writer.drain()
            while line := await reader.readline():
                try:
                    decide = decode_request(line)
                    if decide.op != "approvals.decide":
                        raise ProtocolError("an attached approver only sends approvals.decide")
                    decision = Decision.from_wire(decide.args)
                except AegisError as error:
                    writer.write(encode_error(request_id_of(line), error))
                else:
                    writer.write(encode_result(decide.id, {"decided": queue.decide(decide.args["id"], decision)}))
                await writer.drain()
        finally:
            queue.unsubscribe(push)
            queue.approvers -= 1

    # -- the masking stream ----------------------------------------------------------------------
    async def _mask_stream(self, request: Request, peer: PeerInfo, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        """After ``mask``, frames of (type, length, bytes): the client sends its child's
        output, the broker answers each frame with what may be shown. Values never leave
        the broker this way: only masked text comes back."""
        try:
            masker = await asyncio.to_thread(self.service.masker)
        except AegisError as error:
            writer.write(encode_error(request.id, error))
            return
        stream = masker.stream()
        writer.write(encode_result(request.id, {"max_frame": MAX_STREAM_FRAME}))
        await writer.drain()
        while True:
            kind, length = STREAM_HEADER.unpack(await reader.readexactly(STREAM_HEADER.size))
            if length > MAX_STREAM_FRAME:
                return
            payload = await reader.readexactly(length) if length else b""
            if kind == DATA:
                out = stream.feed(payload)
            elif kind == FLUSH:
                out = stream.flush()
            elif kind == END:
                tail = stream.flush()
                hits = json.dumps(dict(stream.hits)).encode()
                writer.write(STREAM_HEADER.pack(DATA, len(tail)) + tail + STREAM_HEADER.pack(HITS, len(hits)) + hits)
                await writer.drain()
                return
            else:
                return
            writer.write(STREAM_HEADER.pack(DATA, len(out)) + out)
            await writer.drain()
