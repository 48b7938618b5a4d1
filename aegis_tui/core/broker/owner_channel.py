"""The owner's channel to a broker: a mutual proof of the vault key, bound to that
broker, then a connection where every message carries a sequence number and a MAC.

Why: an agent runs as the same user as the broker and the app. It can rename the
broker's socket, listen on its path and pass bytes along, and it can rewrite the lock
file that names the broker's pid. A proof that is not bound to the connection (the
one-shot challenge this replaces) could be relayed: the agent passed the app's answer
to the real broker over its own connection and then approved its own requests there.
Here the broker proves first, over a transcript that names its pid, its socket's inode
and both nonces; the app checks that pid against the kernel's SO_PEERCRED of its own
connection and against the lock file before it proves anything, so a relay never gets
a proof to pass on. And even a relay the app did not notice holds no key: it can pass
frames along but not make one, and cannot drop, reorder or replay one unnoticed.

Handshake (ordinary protocol lines, ``wire``):

1. owner → broker: ``owner.hello`` ``{"nonce": N_o}`` (32 random bytes, hex).
2. broker → owner: result ``{"nonce": N_b, "pid": P, "inode": I, "proof": hex}``, where
   ``P`` is ``os.getpid()`` of the broker, ``I`` the inode of the socket file it
   listens on, and ``proof = HMAC(K_auth, "aegis-owner/v1 broker" || T)``.
3. The owner checks, in order, and refuses to go on (saying why) unless: the pid of
   its peer (SO_PEERCRED) is the pid in the broker's lock file; ``/proc/PID/exe`` is
   the interpreter this process runs (``realpath(sys.executable)``; the broker hides
   its ``exe`` from other processes, so then the absolute interpreter path its argv
   starts with) and its command line runs aegis-vault (``-m aegis_tui``, or the
   ``aegis-vault`` script beside that interpreter; or it is this very process); the
   proof is right; ``P`` is that same pid; and ``I`` is the inode of the socket file at
   the path it connected to. What a relay cannot get past is the proof, with the pid it
   names checked against SO_PEERCRED: the lock file and ``/proc`` are the user's to fake
   (a relay can rewrite one and be a ``python -m aegis_tui``), so those checks mostly
   make a refusal say plainly what is on the other end.
4. owner → broker: ``owner.prove`` ``{"proof": HMAC(K_auth, "aegis-owner/v1 owner" || T)}``.
5. broker → owner: the first authenticated frame, ``{"ok": true, "result":
   {"attached": true, "timeout": ..., "broker": {"pid": P}}}``; on a wrong proof a plain
   error line instead, and the connection is closed (audited ``approver.refused``).

Keys: ``K_auth = HKDF-SHA256(data key, info="aegis/v1/owner-channel\\0" || vault id)``;
``T`` = the length-prefixed fields (vault id, P, I, N_o, N_b); the connection key
``K_conn = HKDF-SHA256(K_auth, salt=N_o || N_b, info="aegis/v1/owner-channel/connection\\0" || T)``.
Only holders of the vault's data key can compute either.

Frames after the handshake, both ways: one JSON object per line, the ordinary message
(a request, a result or an error, or an event) plus two fields::

    {"v":1,"id":3,"op":"approvals.decide","args":{...},"seq":2,"mac":"<64 hex>"}

``seq`` counts from 1 in each direction, separately. ``mac = HMAC-SHA256(K_conn,
direction || seq as 8 bytes big-endian || canonical JSON of the object without
"mac")``, where direction is ``owner>broker`` or ``broker>owner`` (a frame cannot be
reflected back to its sender) and canonical JSON is ``json.dumps(sort_keys=True,
separators=(",", ":"), ensure_ascii=True, allow_nan=False)`` of what the receiver
parsed, so the tag covers exactly what the receiver acts on. A frame with a bad MAC, a
seq lower than expected (replayed), higher (one dropped, or reordered) or anything that
is not such a frame breaks the channel: the receiver closes the connection.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from typing import Any, NamedTuple

from aegis_tui.core.broker.runtime import lock_path, peer_credentials, socket_path
from aegis_tui.core.broker.wire import PROTOCOL_VERSION, error_code
from aegis_tui.core.crypto import hkdf_sha256, hmac_sha256, hmac_sha256_matches, random_bytes
from aegis_tui.core.errors import AegisError, ProtocolError, RefusedError

NONCE_BYTES = 32
OWNER_TO_BROKER, BROKER_TO_OWNER = b"owner>broker", b"broker>owner"
_SEQ = struct.Struct(">Q")
_FIELD = struct.Struct(">I")
_MAX_SEQ = 2**62


class ChannelBroken(AegisError):
    """A frame that the channel's key did not make, or not in its place: the connection ends."""


class OwnerChannelRefused(RefusedError):
    """The process behind the socket is not the broker of this vault (the message says why)."""


class VerifiedBroker(NamedTuple):
    """The broker an owner attached to, as the kernel and ``/proc`` describe it."""

    pid: int
    exe: str
    cmdline: tuple[str, ...]

    def describe(self) -> str:
        return f"pid {self.pid}: {' '.join(self.cmdline) or self.exe}"


# -- keys and proofs -----------------------------------------------------------------------------------
def auth_key(data_key: bytes, vault_id: str) -> bytes:
    return hkdf_sha256(data_key, b"aegis/v1/owner-channel\0" + vault_id.encode())


def _transcript(vault_id: str, pid: int, inode: int, owner_nonce: bytes, broker_nonce: bytes) -> bytes:
    parts = (vault_id.encode(), _SEQ.pack(pid), _SEQ.pack(inode), owner_nonce, broker_nonce)
    return b"aegis-owner/v1\0" + b"".join(_FIELD.pack(len(part)) + part for part in parts)


def _proven(who: bytes, transcript: bytes) -> bytes:
    """What each side's proof is the HMAC of: who proves (``broker`` or ``owner``), then ``T``."""
    return b"aegis-owner/v1 " + who + b"\0" + transcript


def _connection_key(key: bytes, transcript: bytes, owner_nonce: bytes, broker_nonce: bytes) -> bytes:
    return hkdf_sha256(key, b"aegis/v1/owner-channel/connection\0" + transcript, salt=owner_nonce + broker_nonce)


def _unhex(value: object, size: int, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) and len(value) == 2 * size else b""
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise ProtocolError(f"{what} must be {size} bytes in hex")
    return raw


# -- frames ---------------------------------------------------------------------------------------------
def canonical(message: dict[str, Any]) -> bytes:
    return json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


class Channel:
    """One side of an authenticated connection: ``seal`` what it sends, ``open`` what it receives."""

    __slots__ = ("_key", "_send_direction", "_receive_direction", "_sent", "_received")

    def __init__(self, key: bytes, sending: bytes) -> None:
        self._key = key
        self._send_direction = sending
        self._receive_direction = BROKER_TO_OWNER if sending == OWNER_TO_BROKER else OWNER_TO_BROKER
        self._sent = 0
        self._received = 0

    def __repr__(self) -> str:
        return f"Channel(<key hidden>, sent={self._sent}, received={self._received})"

    def _tag(self, direction: bytes, seq: int, body: bytes) -> bytes:
        return direction + _SEQ.pack(seq) + body

    def seal(self, message: dict[str, Any]) -> bytes:
        """The next frame carrying ``message`` (a JSON line)."""
        self._sent += 1
        framed = {**message, "seq": self._sent}
        mac = hmac_sha256(self._key, self._tag(self._send_direction, self._sent, canonical(framed)))
        framed["mac"] = mac.hex()
        return canonical(framed) + b"\n"

    def open(self, line: bytes) -> dict[str, Any]:
        """The message of the next frame from the other side; ``ChannelBroken`` if it is
        not exactly that (tampered, replayed, reordered, one missing, or no frame)."""
        try:
            framed = json.loads(line)
        except (ValueError, RecursionError):
            raise ChannelBroken("a frame on the owner channel is not JSON") from None
        if not isinstance(framed, dict):
            raise ChannelBroken("a frame on the owner channel is not an object")
        mac, seq = framed.pop("mac", None), framed.get("seq")
        if not isinstance(mac, str) or type(seq) is not int or not 0 < seq < _MAX_SEQ:
            raise ChannelBroken("a message on the owner channel carries no sequence number or MAC")
        try:
            tag = bytes.fromhex(mac)
            body = canonical(framed)
        except ValueError:
            raise ChannelBroken("a frame on the owner channel is malformed") from None
        if not hmac_sha256_matches(self._key, self._tag(self._receive_direction, seq, body), tag):
            raise ChannelBroken("a frame on the owner channel failed authentication (changed in flight, "
                                "or not made by the other end)")
        expected = self._received + 1
        if seq < expected:
            raise ChannelBroken(f"a frame on the owner channel was replayed (seq {seq}, expected {expected})")
        if seq > expected:
            raise ChannelBroken(f"a frame on the owner channel is missing: dropped or reordered "
                                f"(seq {seq}, expected {expected})")
        self._received = seq
        del framed["seq"]
        return framed  # type: ignore[no-any-return]


def result_message(request_id: int | str | None, result: dict[str, Any]) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "result": result}


def error_message(request_id: int | str | None, error: AegisError) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "id": request_id, "ok": False,
            "error": {"code": error_code(error), "message": str(error), "exit": error.exit_code}}


def request_message(request_id: int | str, op: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "id": request_id, "op": op, "args": args}


# -- the broker's side -----------------------------------------------------------------------------------
class BrokerHandshake:
    """The broker's half: answer ``owner.hello``, check ``owner.prove``."""

    def __init__(self, data_key: bytes, vault_id: str, pid: int, inode: int, owner_nonce: object) -> None:
        self._owner_nonce = _unhex(owner_nonce, NONCE_BYTES, "owner.hello: the nonce")
        self._broker_nonce = random_bytes(NONCE_BYTES)
        self._key = auth_key(data_key, vault_id)
        self._pid, self._inode = pid, inode
        self._transcript = _transcript(vault_id, pid, inode, self._owner_nonce, self._broker_nonce)

    def __repr__(self) -> str:
        return "BrokerHandshake(<hidden>)"

    def answer(self) -> dict[str, Any]:
        return {"nonce": self._broker_nonce.hex(), "pid": self._pid, "inode": self._inode,
                "proof": hmac_sha256(self._key, _proven(b"broker", self._transcript)).hex()}

    def verify(self, proof: object) -> bool:
        try:
            raw = _unhex(proof, 32, "owner.prove: the proof")
        except ProtocolError:
            return False
        return hmac_sha256_matches(self._key, _proven(b"owner", self._transcript), raw)

    def channel(self) -> Channel:
        return Channel(_connection_key(self._key, self._transcript, self._owner_nonce, self._broker_nonce),
                       BROKER_TO_OWNER)


# -- the owner's side --------------------------------------------------------------------------------------
def process_cmdline(pid: int) -> tuple[str, ...]:
    """The argv of ``pid`` from ``/proc`` (empty if it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read(16384)
    except OSError:
        return ()
    return tuple(part.decode("utf-8", errors="replace") for part in raw.split(b"\0")[:-1])


def process_exe(pid: int, cmdline: tuple[str, ...] = ()) -> str:
    """The executable ``pid`` runs. A process that made itself non-dumpable (the broker
    does, see ``core.hardening``) hides ``/proc/PID/exe`` from the user's other processes;
    then the interpreter path its argv starts with, when absolute (how the kernel starts
    the ``aegis-vault`` script), else ``"?"``."""
    try:
        return os.path.realpath(f"/proc/{pid}/exe", strict=True)
    except OSError:
        pass
    if cmdline and os.path.isabs(cmdline[0]):
        return os.path.realpath(cmdline[0])
    return "?"


def _shown(text: str, limit: int = 200) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:limit]


_OPTIONS_WITH_VALUE = frozenset({"-W", "-X", "-Q", "--check-hash-based-pycs"})


def runs_aegis_vault(cmdline: tuple[str, ...], cwd: str = "/") -> bool:
    """Whether an interpreter's argv runs aegis-vault: ``-m aegis_tui``, or the
    ``aegis-vault`` script installed beside the interpreter this process runs."""
    args = list(cmdline[1:])
    while args and args[0].startswith("-") and args[0] not in ("-m", "-c", "-"):
        option = args.pop(0)
        if option in _OPTIONS_WITH_VALUE and args:
            args.pop(0)
    if len(args) >= 2 and args[0] == "-m":
        return args[1] in ("aegis_tui", "aegis_tui.__main__")
    if not args or args[0].startswith("-"):
        return False
    script = os.path.realpath(os.path.join(cwd, args[0]))
    installed = {os.path.realpath(os.path.join(os.path.dirname(sys.executable), "aegis-vault")),
                 os.path.realpath(os.path.join(os.path.dirname(os.path.realpath(sys.executable)), "aegis-vault"))}
    return os.path.basename(script) == "aegis-vault" and script in installed


def lock_file_pid(vault_path: str) -> int | None:
    try:
        with open(lock_path(vault_path), "rb") as handle:
            return int(handle.read(64).split()[0])
    except (OSError, ValueError, IndexError):
        return None


class OwnerHandshake:
    """The owner's half: ``hello``, then ``check`` the broker's answer against the
    kernel's view of the connection, then ``proof`` and ``channel``."""

    def __init__(self, data_key: bytes, vault_id: str, vault_path: str) -> None:
        self._key = auth_key(data_key, vault_id)
        self._vault_id = vault_id
        self._vault_path = vault_path
        self._owner_nonce = random_bytes(NONCE_BYTES)
        self._inode: int | None = None
        self._transcript: bytes | None = None
        self._broker_nonce = b""
        self.broker: VerifiedBroker | None = None

    def __repr__(self) -> str:
        return "OwnerHandshake(<hidden>)"

    def hello(self) -> dict[str, Any]:
        """The ``owner.hello`` arguments. Call it once connected: it notes the inode of
        the socket file at the broker's path, which the broker's answer must name."""
        try:
            self._inode = os.stat(socket_path(self._vault_path)).st_ino
        except OSError:
            self._inode = None
        return {"nonce": self._owner_nonce.hex()}

    def check(self, answer: dict[str, Any], sock: Any) -> VerifiedBroker:
        """Refuse (``OwnerChannelRefused``, saying why) unless the answer comes from the
        broker named in the lock file, running this aegis-vault, holding this vault's key."""
        peer_pid = peer_credentials(sock)[0]
        cmdline = process_cmdline(peer_pid)
        exe = process_exe(peer_pid, cmdline)
        shown = f"pid {peer_pid}: {_shown(' '.join(cmdline) or exe)}"
        locked = lock_file_pid(self._vault_path)
        if locked != peer_pid:
            named = f"pid {locked}" if locked is not None else "no broker"
            raise OwnerChannelRefused(f"the process behind the broker's socket ({shown}) is not the broker named "
                                      f"in the lock file ({named})")
        ours = os.path.realpath(sys.executable)
        if exe not in (ours, "?"):  # "?": hidden, and started by a bare name; the proof below decides
            raise OwnerChannelRefused(f"the process behind the broker's socket ({shown}) runs {_shown(exe)}, not "
                                      f"this aegis-vault's interpreter {_shown(ours)}: it is not the broker")
        try:
            cwd = os.readlink(f"/proc/{peer_pid}/cwd")
        except OSError:
            cwd = "/"
        if peer_pid != os.getpid() and not runs_aegis_vault(cmdline, cwd):
            raise OwnerChannelRefused(f"the process behind the broker's socket ({shown}) does not run aegis-vault: "
                                      "it is not the broker")
        try:
            broker_nonce = _unhex(answer.get("nonce"), NONCE_BYTES, "the broker's nonce")
            proof = _unhex(answer.get("proof"), 32, "the broker's proof")
        except ProtocolError as error:
            raise OwnerChannelRefused(f"the process behind the broker's socket ({shown}) answered the handshake "
                                      f"wrongly ({error}): it is not the broker") from None
        claimed_pid, claimed_inode = answer.get("pid"), answer.get("inode")
        if type(claimed_pid) is not int or type(claimed_inode) is not int or not (
                0 <= claimed_pid < _MAX_SEQ and 0 <= claimed_inode < _MAX_SEQ):
            raise OwnerChannelRefused(f"the process behind the broker's socket ({shown}) did not say which broker "
                                      "it is: it is not the broker")
        transcript = _transcript(self._vault_id, claimed_pid, claimed_inode, self._owner_nonce, broker_nonce)
        if not hmac_sha256_matches(self._key, _proven(b"broker", transcript), proof):
            raise OwnerChannelRefused(f"the process behind the broker's socket ({shown}) could not prove it holds "
                                      "this vault's key: it is not the broker of this vault")
        if claimed_pid != peer_pid:
            raise OwnerChannelRefused(f"the broker's proof names pid {claimed_pid}, but the process behind the "
                                      f"socket is {shown}: it is not the broker (something relays its socket)")
        if self._inode is None or claimed_inode != self._inode:
            raise OwnerChannelRefused(f"the broker listens on another socket than the one at its path, where "
                                      f"{shown} answered: it is not the broker (the socket was replaced)")
        self._transcript, self._broker_nonce = transcript, broker_nonce
        self.broker = VerifiedBroker(peer_pid, exe, cmdline)
        return self.broker

    def proof(self) -> str:
        if self._transcript is None:
            raise AssertionError("check the broker's answer before proving anything to it")
        return hmac_sha256(self._key, _proven(b"owner", self._transcript)).hex()

    def channel(self) -> Channel:
        if self._transcript is None:
            raise AssertionError("check the broker's answer first")
        return Channel(_connection_key(self._key, self._transcript, self._owner_nonce, self._broker_nonce),
                       OWNER_TO_BROKER)
