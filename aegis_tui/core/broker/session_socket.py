"""One socket per sandboxed agent session: the only broker its sandbox can reach.

``session exec`` binds this socket into the agent's sandbox where the broker's socket
would be (``runtime.session_socket_inside``); the owner's socket, lock files and other
sessions' sockets are hidden. So whatever an agent sends, it is served here, and here
every request acts for that session:

- the caller must be inside the session's process tree (the kernel translates the
  SO_PEERCRED pid into our PID namespace, so the usual ancestry check works);
- a declared session token is refused: this socket speaks for its own session only;
- owner operations (the owner channel, management) and ``session.sandbox`` are refused;
- a small cap on connections.

Refusals are audited. ``run.start`` arrives with the client's fds 0, 1 and 2 attached
(SCM_RIGHTS), which asyncio's stream transports drop (they read with ``recv``): so each
connection is read here with ``recvmsg`` on a socket this module owns. While the run
goes on, the same connection carries the client's signals (``run.signal``); when it
closes, the run is stopped. The socket goes when the session ends, expires, or the
broker closes.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import os
import socket
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aegis_tui.core.audit import Outcome, Risk
from aegis_tui.core.broker.protocol import Request, decode_request, request_id_of
from aegis_tui.core.broker.runtime import peer_credentials, runtime_dir
from aegis_tui.core.broker.wire import MAX_FRAME_BYTES, encode_error, encode_result
from aegis_tui.core.errors import AegisError, ProtocolError, RefusedError
from aegis_tui.core.operations.registry import Authority, find
from aegis_tui.core.processes import PeerInfo, describe_process

if TYPE_CHECKING:
    from aegis_tui.core.agents.sessions import AgentSession
    from aegis_tui.core.broker.service import BrokerService

MAX_CONNECTIONS = 16  # per session socket: an agent runs a few commands at once, not hundreds
MAX_FDS = 3  # stdin, stdout, stderr of a ``run`` client
_FD_SPACE = socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize)
_OWN_SESSION_ONLY = "a session socket speaks for its own session only"
_NOT_HERE = {"owner.hello", "owner.prove", "approvals.subscribe", "approvals.decide", "session.sandbox", "mask"}
SIGNALS_PASSED_ON = frozenset({1, 2, 3, 15, 28})  # SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGWINCH


class RunLink:
    """What a ``run.start`` request carries beside its arguments: the client's fds 0-2,
    the plan of its session's sandbox, its signals (``on_signal``, set by whoever starts
    the run) and whether it is still there (``gone``)."""

    def __init__(self, fds: tuple[int, int, int], plan: dict[str, Any], gone: asyncio.Future[None]) -> None:
        self.fds = fds
        self.plan = plan
        self.gone = gone
        self.on_signal: Callable[[int], None] | None = None

    def signal(self, signum: int) -> None:
        if signum in SIGNALS_PASSED_ON and self.on_signal is not None:
            self.on_signal(signum)

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = (-1, -1, -1)


class _Entry:
    """One session's socket."""

    def __init__(self, session: AgentSession, plan: dict[str, Any], path: str, sock: socket.socket) -> None:
        self.session = session
        self.plan = plan
        self.path = path
        self.sock = sock
        self.connections: set[asyncio.Task[None]] = set()


class SessionSockets:
    """The session sockets of one broker."""

    def __init__(self, service: BrokerService, *, first_request_timeout: float, idle_timeout: float,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.service = service
        self.first_request_timeout = first_request_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self._open: dict[str, _Entry] = {}

    def folder(self) -> str:
        folder = os.path.join(runtime_dir(create=True), "sessions")
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o700)
        info = os.lstat(folder)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            raise RefusedError(f"{folder} is not a private folder of yours; remove it and try again")
        return folder

    def open(self, session: AgentSession, plan: dict[str, Any]) -> str:
        """The session's socket (made once; asking again gives the same one)."""
        entry = self._open.get(session.id)
        if entry is not None:
            return entry.path
        path = os.path.join(self.folder(), session.id + ".sock")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(path)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old_umask)
        sock.listen(64)
        sock.setblocking(False)
        entry = self._open[session.id] = _Entry(session, plan, path, sock)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._accept, entry)
        return path

    def paths(self) -> list[str]:
        return [entry.path for entry in self._open.values()]

    def prune(self) -> None:
        """Close the sockets of sessions that ended or expired."""
        if not self._open:
            return
        now = self.service.vault.clock()
        live = {s.id for s in self.service.sessions() if s.is_live(now)}
        for session_id in [sid for sid in self._open if sid not in live]:
            self._close(session_id)

    def close_all(self) -> None:
        for session_id in list(self._open):
            self._close(session_id)

    def _close(self, session_id: str) -> None:
        entry = self._open.pop(session_id)
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(entry.sock.fileno())
        entry.sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)
        for task in entry.connections:
            task.cancel()

    def _accept(self, entry: _Entry) -> None:
        while True:
            try:
                conn, _ = entry.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            conn.setblocking(False)
            if len(entry.connections) >= self.max_connections:
                with contextlib.suppress(OSError):
                    conn.send(encode_error(None, RefusedError("too many connections to this session's socket")))
                conn.close()
                continue
            task = asyncio.ensure_future(_Connection(self, entry, conn).serve())
            entry.connections.add(task)
            task.add_done_callback(entry.connections.discard)

    def refuse(self, entry: _Entry, peer: PeerInfo | None, reason: str, pid: int = 0) -> None:
        vault = self.service.vault
        with contextlib.suppress(AegisError):
            vault.audit.append("session.refused", vault.actor, outcome=Outcome.DENIED, risk=Risk.HIGH,
                               target=entry.session.id, context=entry.session.context,
                               detail={"reason": reason, "via": "session socket",
                                       "peer": peer.to_dict() if peer is not None else {"pid": pid}})


class _Connection:
    """One client of a session socket, read with ``recvmsg`` (fds arrive with ``run.start``)."""

    def __init__(self, owner: SessionSockets, entry: _Entry, sock: socket.socket) -> None:
        self.owner = owner
        self.entry = entry
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.lines: asyncio.Queue[tuple[bytes, list[int]] | None] = asyncio.Queue()
        self.gone: asyncio.Future[None] = self.loop.create_future()
        self._buffer = bytearray()
        self._fds: list[int] = []

    # -- reading -----------------------------------------------------------------------------------
    def _readable(self) -> None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(1 << 16, _FD_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, ancillary = b"", []
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                self._fds.extend(fds)
        if not data:
            self._end()
            return
        self._buffer += data
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            fds, self._fds = self._fds, []
            self.lines.put_nowait((line, fds))
        if len(self._buffer) > MAX_FRAME_BYTES:
            self._end()

    def _end(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        _close_fds(self._fds)
        self._fds = []
        if not self.gone.done():
            self.gone.set_result(None)
        self.lines.put_nowait(None)

    def hang_up(self) -> asyncio.Future[None]:
        """For a request that waits for a human: done when the client leaves."""
        future: asyncio.Future[None] = self.loop.create_future()
        self.gone.add_done_callback(lambda _: future.done() or future.set_result(None))
        return future

    async def _next(self, timeout: float | None) -> tuple[bytes, list[int]] | None:
        if timeout is None:
            return await self.lines.get()
        try:
            return await asyncio.wait_for(self.lines.get(), timeout)
        except asyncio.TimeoutError:
            return None

    # -- serving ------------------------------------------------------------------------------------
    async def serve(self) -> None:
        entry = self.entry
        try:
            pid, uid, _ = peer_credentials(self.sock)
            if uid != os.getuid():
                self.owner.refuse(entry, None, "another user", pid)
                return
            peer = describe_process(pid, uid)
            session = entry.session
            if (session.root_pid, session.root_started) not in peer.ancestry:
                self.owner.refuse(entry, peer, "the caller is outside the session's process tree")
                await self._send(encode_error(None, RefusedError(_OWN_SESSION_ONLY)))
                return
            self.loop.add_reader(self.sock.fileno(), self._readable)
            timeout = self.owner.first_request_timeout
            while True:
                item = await self._next(timeout)
                if item is None:
                    return
                timeout = self.owner.idle_timeout
                line, fds = item
                try:
                    await self._request(line, fds, peer)
                finally:
                    _close_fds(fds)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception as error:  # noqa: BLE001 - a client's doing must not reach the log as a traceback
            with contextlib.suppress(Exception):
                os.write(2, f"aegis-vault: broker: a session connection ended on {type(error).__name__}\n".encode())
        finally:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    async def _request(self, line: bytes, fds: list[int], peer: PeerInfo) -> None:
        try:
            request = decode_request(line)
            self._check(request, fds, peer)
        except AegisError as error:
            await self._send(encode_error(request_id_of(line), error))
            return
        if request.op == "run.signal":
            return  # a signal that came after its run ended: nothing left to pass it on to
        link = None
        if request.op == "run.start":
            link = RunLink((fds[0], fds[1], fds[2]), self.entry.plan, self.gone)
            fds.clear()  # the link owns them now
        try:
            answer = self.loop.create_task(self._answer(request, peer, link))
            if link is not None:
                await self._relay_signals(answer, link)
            await self._send(await answer)
        finally:
            if link is not None:
                link.close()

    def _check(self, request: Request, fds: list[int], peer: PeerInfo) -> None:
        """What this socket refuses whatever the operation's own rules say."""
        if request.session is not None:
            self.owner.refuse(self.entry, peer, "it declared a session token on a session socket")
            raise RefusedError(_OWN_SESSION_ONLY)
        if request.op in _NOT_HERE or find(request.op).authority is not Authority.CALLER:
            self.owner.refuse(self.entry, peer, f"it asked for {request.op} on a session socket")
            raise RefusedError(f"{request.op} is not served on a session socket")
        if request.op == "run.start" and len(fds) != MAX_FDS:
            raise ProtocolError("run.start carries the client's stdin, stdout and stderr (3 descriptors)")
        if request.op != "run.start" and fds:
            raise ProtocolError(f"{request.op} carries no descriptors")

    async def _answer(self, request: Request, peer: PeerInfo, link: RunLink | None) -> bytes:
        try:
            result = await self.owner.service.handle(request, peer, self.hang_up, link=link, via_session_socket=True)
            return encode_result(request.id, result)
        except AegisError as error:
            return encode_error(request.id, error)
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception as error:  # noqa: BLE001 - never a traceback, never a value
            return encode_error(request.id, AegisError(f"the broker failed on {request.op} ({type(error).__name__})"))

    async def _relay_signals(self, answer: asyncio.Task[bytes], link: RunLink) -> None:
        """While a run goes on: the client's signals to the run; its leaving stops it."""
        while not answer.done():
            getter = self.loop.create_task(self.lines.get())
            done, _ = await asyncio.wait({answer, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                return
            item = getter.result()
            if item is None:
                await asyncio.wait({answer})
                return
            line, fds = item
            _close_fds(fds)
            try:
                message = decode_request(line)
            except ProtocolError:
                continue
            if message.op == "run.signal":
                link.signal(message.args["signal"])

    async def _send(self, data: bytes) -> None:
        if self.gone.done():
            return
        with contextlib.suppress(OSError):
            await self.loop.sock_sendall(self.sock, data)


def _close_fds(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()
