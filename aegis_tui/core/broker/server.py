"""The broker's transport: an asyncio Unix-socket server speaking ``protocol``.

It owns everything about connections and nothing about decisions: the peer check
(SO_PEERCRED; other uids are refused and audited), frame limits, timeouts, clients that
vanish mid-request (their pending approval is withdrawn), the binary masking stream
``aegis-vault run`` pipes a child's output through, and the owner's authenticated
channel (``owner_channel``), over which the app answers approvals and owner tools act
with the owner's authority. One broker per vault: a lock file held for the server's
lifetime says so, and names its pid.

Limits, so that a process of the same user cannot stall the broker for everyone: at
most ``max_per_peer`` connections per peer pid and ``max_connections`` in all; at a cap
the longest-idle connection (never one busy with a request, a masking stream or an
owner channel) is closed to make room, so a new client is still answered while
thousands of idle ones are attempted. A connection must send its first request within
``first_request_timeout`` and then another within ``idle_timeout``. The soft limit on
open files is raised to the hard one at start. A client's error never puts a traceback
in the broker's log: at most one line naming the error's type.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aegis_tui.core.audit import Outcome, Risk
from aegis_tui.core.approvals import Decision
from aegis_tui.core.broker.owner_channel import (
    BrokerHandshake,
    ChannelBroken,
    error_message,
    process_cmdline,
    result_message,
)
from aegis_tui.core.processes import PeerInfo, describe_process
from aegis_tui.core.broker.protocol import Request, decode_request, request_id_of
from aegis_tui.core.broker.runtime import lock_path, peer_credentials, socket_path
from aegis_tui.core.broker.service import BrokerService
from aegis_tui.core.broker.session_socket import SessionSockets
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
from aegis_tui.core.errors import AegisError, ConflictError, ProtocolError, RefusedError, UnlockError

IDLE_TIMEOUT = 30.0  # a connection that sends nothing for this long is closed
FIRST_REQUEST_TIMEOUT = 5.0  # ...and a new one that sends no request for this long
MAX_CONNECTIONS = 512
MAX_PER_PEER = 32
SWEEP_INTERVAL = 15.0
LIFECYCLE_INTERVAL = 60.0  # rotation periods are days: a minute late is on time
_DRAIN_SECONDS = 1.0  # denied requests leave the queue within a few turns of the loop
_OWNER = frozenset({"owner", "approver"})  # what a request over the owner channel may do
# Carried by the owner channel only: on a plain connection these are a protocol error.
_OWNER_CHANNEL_ONLY = frozenset({"owner.prove", "approvals.subscribe", "approvals.decide"})
_NOT_OVER_THE_CHANNEL = frozenset({"owner.hello", "owner.prove", "mask"})


def _hang_up(reader: asyncio.StreamReader) -> asyncio.Future[None]:
    """Done when the client closes its end: started only while a request waits for a
    human, so a client that gives up withdraws its request (the dialog goes away).
    A client that sends more before its answer loses those bytes (it must wait)."""

    async def watch() -> None:
        while await reader.read(4096):
            pass

    return asyncio.ensure_future(watch())


def _say(message: str) -> None:
    """One line in the broker's log (its stderr), never a traceback."""
    with contextlib.suppress(Exception):
        sys.stderr.write(f"aegis-vault: broker: {message}\n")
        sys.stderr.flush()


def _loop_trouble(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The event loop's own complaints (say, running out of file descriptors in
    ``accept``), as one line instead of asyncio's default traceback."""
    error = context.get("exception")
    _say(f"{context.get('message', 'event loop error')}" + (f" ({type(error).__name__})" if error else ""))


def _raise_file_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: desktops often start at 1,024."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class _Connection:
    """What the limits need to know of one connection."""

    __slots__ = ("pid", "writer", "busy", "pinned")

    def __init__(self, pid: int, writer: asyncio.StreamWriter) -> None:
        self.pid = pid
        self.writer = writer
        self.busy = False  # a request is being answered (or waits for a human)
        self.pinned = False  # a masking stream or an owner channel: never closed to make room


class BrokerServer:
    """Serve one ``BrokerService`` on the vault's socket until ``close``."""

    def __init__(self, service: BrokerService, vault_path: str, *, idle_timeout: float = IDLE_TIMEOUT,
                 first_request_timeout: float = FIRST_REQUEST_TIMEOUT, max_connections: int = MAX_CONNECTIONS,
                 max_per_peer: int = MAX_PER_PEER) -> None:
        self.service = service
        self.vault_path = vault_path
        self.idle_timeout = idle_timeout
        self.first_request_timeout = min(first_request_timeout, idle_timeout)
        self.max_connections = max_connections
        self.max_per_peer = max_per_peer
        self.socket_path = socket_path(vault_path, create=True)
        self._server: asyncio.AbstractServer | None = None
        self._lock_fd: int | None = None
        self._socket_inode = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._open: OrderedDict[_Connection, None] = OrderedDict()  # longest idle first
        self._per_peer: dict[int, int] = {}
        self._quiet_loop: asyncio.AbstractEventLoop | None = None
        self.session_sockets = SessionSockets(service, first_request_timeout=self.first_request_timeout,
                                              idle_timeout=idle_timeout)
        service.session_sockets = self.session_sockets

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
        _raise_file_limit()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)  # stale: whoever made it no longer holds the lock
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._accept, self.socket_path,
                                                           limit=MAX_FRAME_BYTES + 1, backlog=1024)
        finally:
            os.umask(old_umask)
        os.chmod(self.socket_path, 0o600)
        self._socket_inode = os.stat(self.socket_path).st_ino  # the owner channel's proof names it
        loop = asyncio.get_running_loop()
        if loop.get_exception_handler() is None:
            loop.set_exception_handler(_loop_trouble)
            self._quiet_loop = loop
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
        self.session_sockets.close_all()
        self.service.runners.close()
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
        if self._quiet_loop is not None:
            self._quiet_loop.set_exception_handler(None)
            self._quiet_loop = None
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

    # -- limits ----------------------------------------------------------------------------------
    def _admit(self, pid: int, writer: asyncio.StreamWriter) -> _Connection | None:
        """Room for one more connection from ``pid``: at a cap, the longest-idle connection
        (of that pid, or of anyone at the total cap) is closed; ``None`` if all are busy."""
        if self._per_peer.get(pid, 0) >= self.max_per_peer and not self._close_idle(pid):
            return None
        if len(self._open) >= self.max_connections and not self._close_idle(None):
            return None
        conn = _Connection(pid, writer)
        self._open[conn] = None
        self._per_peer[pid] = self._per_peer.get(pid, 0) + 1
        return conn

    def _close_idle(self, pid: int | None) -> bool:
        for conn in self._open:
            if not conn.busy and not conn.pinned and (pid is None or conn.pid == pid):
                self._release(conn)
                conn.writer.close()  # its reader sees the end and its task finishes
                return True
        return False

    def _release(self, conn: _Connection) -> None:
        if self._open.pop(conn, False) is None:
            left = self._per_peer[conn.pid] - 1
            if left:
                self._per_peer[conn.pid] = left
            else:
                del self._per_peer[conn.pid]

    def _idle(self, conn: _Connection) -> None:
        conn.busy = False
        if conn in self._open:
            self._open.move_to_end(conn)

    # -- connections -----------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        conn: _Connection | None = None
        try:
            pid, uid, _ = peer_credentials(writer.get_extra_info("socket"))
            if uid != os.getuid():
                self._refuse_stranger(pid, uid)
                writer.write(encode_error(None, RefusedError("this broker only serves the user who runs it")))
                await writer.drain()
                return
            conn = self._admit(pid, writer)
            if conn is None:
                writer.write(encode_error(None, RefusedError("the broker is busy with too many connections from "
                                                             "this process; close some and try again")))
                await writer.drain()
                return
            await self._serve(conn, pid, uid, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception as error:  # noqa: BLE001 - a client's doing must not reach the log as a traceback
            _say(f"a connection ended on an unexpected {type(error).__name__}")
        finally:
            if conn is not None:
                self._release(conn)
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, conn: _Connection, pid: int, uid: int, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        peer = describe_process(pid, uid)
        loop = asyncio.get_running_loop()
        timeout = self.first_request_timeout
        while True:
            # A timer, not wait_for: this runs for every request, and wait_for makes a task.
            idle = loop.call_later(timeout, writer.close)
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
            timeout = self.idle_timeout
            conn.busy = True
            try:
                request = decode_request(line)
                if request.op in _OWNER_CHANNEL_ONLY:
                    raise ProtocolError(f"{request.op} needs the owner channel: open it with owner.hello")
            except ProtocolError as error:
                writer.write(encode_error(request_id_of(line), error))
                await writer.drain()
                self._idle(conn)
                continue
            if request.op == "mask":
                await self._mask_stream(conn, request, peer, reader, writer)
                return
            if request.op == "owner.hello":
                await self._owner(conn, request, peer, reader, writer)
                return
            writer.write(await self._answer(request, peer, reader))
            await writer.drain()
            self._idle(conn)

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

    # -- the owner channel --------------------------------------------------------------------------
    @staticmethod
    def _verified(peer: PeerInfo) -> dict[str, object]:
        """The attaching process as the kernel describes it, for the audit log."""
        return {**peer.to_dict(), "cmdline": list(process_cmdline(peer.pid))}

    def _refuse_owner(self, peer: PeerInfo, reason: str) -> None:
        vault = self.service.vault
        with contextlib.suppress(AegisError):
            vault.audit.append("approver.refused", vault.actor, outcome=Outcome.DENIED, risk=Risk.HIGH,
                               target="broker", detail={"peer": self._verified(peer), "reason": reason})

    async def _owner(self, conn: _Connection, request: Request, peer: PeerInfo, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        """The owner channel (see ``owner_channel``): the handshake, then authenticated
        frames until either side hangs up or a frame is not what the key made."""
        vault = self.service.vault
        try:
            if not vault.is_unlocked:
                raise UnlockError("the vault is locked; unlock it in the aegis-vault app")
            handshake = BrokerHandshake(vault.keys.data_key, vault.vault_id, os.getpid(), self._socket_inode,
                                        request.args["nonce"])
        except AegisError as error:
            writer.write(encode_error(request.id, error))
            await writer.drain()
            return
        writer.write(encode_result(request.id, handshake.answer()))
        await writer.drain()
        self._idle(conn)
        timer = asyncio.get_running_loop().call_later(self.first_request_timeout, writer.close)
        try:
            line = await reader.readline()
        except (ValueError, asyncio.LimitOverrunError):
            line = b""
        finally:
            timer.cancel()
        if not line.endswith(b"\n"):
            self._refuse_owner(peer, "it left the owner channel's handshake before proving it holds the vault key")
            return
        conn.busy = True
        try:
            proof = decode_request(line)
        except ProtocolError as error:
            self._refuse_owner(peer, f"its handshake was malformed ({error})")
            writer.write(encode_error(request_id_of(line), error))
            await writer.drain()
            return
        if proof.op != "owner.prove" or not handshake.verify(proof.args.get("proof")):
            self._refuse_owner(peer, "it could not prove it holds the vault key")
            writer.write(encode_error(proof.id, RefusedError(
                "only the owner's app or tools, which unlocked this vault, can open the owner channel")))
            await writer.drain()
            return
        channel = handshake.channel()
        conn.pinned = True
        queue = self.service.approvals
        vault.audit.append("approver.attach", vault.actor, risk=Risk.MEDIUM, target="broker",
                           detail={"peer": self._verified(peer)})

        def send(message: dict[str, Any]) -> None:
            if not writer.is_closing():
                writer.write(channel.seal(message))

        def push() -> None:
            send({"v": 1, "event": "pending", "requests": [p.to_wire() for p in queue.pending()]})

        send(result_message(proof.id, {"attached": True, "timeout": queue.timeout, "broker": {"pid": os.getpid()}}))
        await writer.drain()
        subscribed = False
        working: set[asyncio.Future[None]] = set()
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    self._refuse_owner(peer, f"a frame on the owner channel was larger than {MAX_FRAME_BYTES} bytes")
                    return
                if not line.endswith(b"\n"):
                    return
                try:
                    channel.open(line)
                except ChannelBroken as broken:
                    self._refuse_owner(peer, str(broken))
                    return
                try:
                    request = decode_request(line)  # the frame's own "seq" and "mac" are not looked at
                    if request.op in _NOT_OVER_THE_CHANNEL:
                        raise ProtocolError(f"{request.op} is not sent over the owner channel")
                    if request.op == "approvals.subscribe":
                        if not subscribed:
                            subscribed = True
                            queue.approvers += 1
                            queue.subscribe(push)
                        send(result_message(request.id, {"subscribed": True}))
                        push()
                    elif request.op == "approvals.decide":
                        decision = Decision.from_wire(request.args)
                        send(result_message(request.id, {"decided": queue.decide(request.args["id"], decision)}))
                    else:
                        job = asyncio.ensure_future(self._owner_request(request, peer, send, writer))
                        working.add(job)
                        job.add_done_callback(working.discard)
                except AegisError as error:
                    send(error_message(request_id_of(line), error))
                await writer.drain()
        finally:
            for job in working:
                job.cancel()
            if subscribed:
                queue.unsubscribe(push)
                queue.approvers -= 1

    async def _owner_request(self, request: Request, peer: PeerInfo, send: Callable[[dict[str, Any]], None],
                             writer: asyncio.StreamWriter) -> None:
        """An ordinary operation, with the owner's authority; answered when done (the
        channel keeps reading meanwhile: a decision may be what it waits for)."""
        try:
            send(result_message(request.id, await self.service.handle(request, peer, None, authority=_OWNER)))
        except AegisError as error:
            send(error_message(request.id, error))
        except Exception as error:  # noqa: BLE001 - never a traceback, never a value
            send(error_message(request.id, AegisError(f"the broker failed on {request.op} ({type(error).__name__})")))
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    # -- the masking stream ----------------------------------------------------------------------
    async def _mask_stream(self, conn: _Connection, request: Request, peer: PeerInfo, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        """After ``mask``, frames of (type, length, bytes): the client sends its child's
        output, the broker answers each frame with what may be shown. Values never leave
        the broker this way: only masked text comes back. Only the values this caller was
        handed are masked (``masker_for``); the stream's size and hits are audited."""
        try:
            masker = await asyncio.to_thread(self.service.masker_for, request, peer)
        except AegisError as error:
            writer.write(encode_error(request.id, error))
            return
        conn.pinned = True
        stream = masker.stream()
        seen = 0
        writer.write(encode_result(request.id, {"max_frame": MAX_STREAM_FRAME}))
        try:
            await writer.drain()
            while True:
                kind, length = STREAM_HEADER.unpack(await reader.readexactly(STREAM_HEADER.size))
                if length > MAX_STREAM_FRAME:
                    return
                payload = await reader.readexactly(length) if length else b""
                if kind == DATA:
                    seen += length
                    out = stream.feed(payload)
                elif kind == FLUSH:
                    out = stream.flush()
                elif kind == END:
                    tail = stream.flush()
                    hits = json.dumps(dict(stream.hits)).encode()
                    writer.write(STREAM_HEADER.pack(DATA, len(tail)) + tail + STREAM_HEADER.pack(HITS, len(hits))
                                 + hits)
                    await writer.drain()
                    return
                else:
                    return
                writer.write(STREAM_HEADER.pack(DATA, len(out)) + out)
                await writer.drain()
        finally:
            with contextlib.suppress(AegisError):
                self.service.mask_finished(request, peer, seen, dict(stream.hits))
