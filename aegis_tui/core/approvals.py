"""Access requests waiting for a human, in the order they arrived.

The requesting side never gets to answer: a decision only comes through ``decide``,
which the app calls from its approval dialog (or an attached approver that proved it
holds the vault key). A request nobody answers is denied after the timeout, with a
message that tells the agent to ask its human.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from aegis_tui.core.agents.sessions import AgentSession
from aegis_tui.core.processes import PeerInfo, ProcessInfo
from aegis_tui.core.errors import ProtocolError
from aegis_tui.core.models import Credential

DEFAULT_APPROVAL_TIMEOUT = 120.0
_CONTROL_PICTURES = {i: 0x2400 + i for i in range(32)} | {0x7F: 0x2421}
# Letters and marks Python calls printable that draw nothing: Hangul fillers, the blank
# braille pattern, the combining grapheme joiner, Khmer inherent vowels and variation
# selectors. Enough of them read as spaces, or as nothing at all between two letters.
_BLANK = re.compile("[\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180b-\u180d\u180f"
                    "\ufe00-\ufe0f\U000e0100-\U000e01ef]")

_NAME, _PATH, _ARG, _ARGS = 120, 300, 500, 200  # longest name, path, argument; most arguments sent


def _visible(ch: str) -> str:
    return ch if ch.isprintable() and not _BLANK.match(ch) else f"⟨U+{ord(ch):04X}⟩"


def literal(text: str, limit: int = 500) -> str:
    """Untrusted text (an agent's reason, a process name, a path) made safe to show as-is:
    C0 controls and DEL become their visible pictures (ESC shows as ␛), and every other
    character a terminal would act on or that draws nothing (C1 controls, bidi overrides
    and isolates, zero-width and other format characters, separators other than the space,
    lone surrogates, fillers and variation selectors) becomes its code point in brackets
    (``⟨U+202E⟩``), so nothing can move the cursor, restyle or reorder the text, or hide a
    word in it. Markup is never interpreted by whoever displays it."""
    cleaned = text.translate(_CONTROL_PICTURES)
    if not cleaned.isprintable() or _BLANK.search(cleaned):
        cleaned = "".join(map(_visible, cleaned))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


BINDS = ("argv", "program", "any")  # what an inject grant is bound to: this command line, this program, any


class Decision(NamedTuple):
    allow: bool
    uses: int | None = None  # 1: once; None: unlimited within the duration
    ttl_seconds: float | None = None
    for_session: bool = False
    scopes: tuple[str, ...] = ()
    bind: str = "any"

    @classmethod
    def deny(cls) -> Decision:
        return cls(False)

    def to_wire(self) -> dict[str, Any]:
        return {"allow": self.allow, "uses": self.uses, "ttl_seconds": self.ttl_seconds,
                "for_session": self.for_session, "scopes": list(self.scopes), "bind": self.bind}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Decision:
        from aegis_tui.core.agents.grants import validate_scopes

        uses, ttl = data.get("uses"), data.get("ttl_seconds")
        if (uses is not None and (not isinstance(uses, int) or isinstance(uses, bool) or uses <= 0)) or (
                ttl is not None and (not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl <= 0)):
            raise ProtocolError("a decision's uses and ttl_seconds are positive numbers or null")
        scopes = data.get("scopes") or []
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ProtocolError("a decision's scopes are a list of strings")
        bind = data.get("bind") or "any"
        if bind not in BINDS:
            raise ProtocolError("a decision binds to argv, program or any")
        return cls(bool(data.get("allow")), uses, None if ttl is None else float(ttl),
                   bool(data.get("for_session")), validate_scopes(scopes), bind)


def _credential_from_wire(data: dict[str, Any]) -> Credential:
    from aegis_tui.core.models import Kind, Status

    return Credential(id=str(data["id"]), name=literal(str(data["name"]), _NAME), kind=Kind(data["kind"]),
                      service=literal(str(data["service"]), _NAME), context=literal(str(data["context"]), _NAME),
                      status=Status(data["status"]))


class PendingRequest(NamedTuple):
    id: int
    created_at: float
    deadline: float
    peer: PeerInfo
    session: AgentSession | None
    credential: Credential
    scopes: tuple[str, ...]
    reason: str  # already passed through ``literal``
    duration: int | None  # seconds the agent asked for
    via: str  # the command it runs, already literal
    # What the broker verified (not the agent's claims):
    right: str = "reveal"  # "inject" (into the command below) or "reveal" (the raw value to the caller)
    command: tuple[str, ...] = ()  # the argv that will receive the value
    program: str = ""  # its resolved executable
    bound: bool = False  # the session is bound to a process tree
    outside_project: str = ""  # the project context the reference lies outside of
    warnings: tuple[str, ...] = ()  # the credential's state: exposed, an open incident, expiring
    sandboxed: bool = False  # the session's agent runs in an OS sandbox

    def to_wire(self) -> dict[str, Any]:
        """What an attached app needs to show the request (never a value). Text goes out
        literal (a command line may hold bytes that are not UTF-8) and is cleaned again on
        arrival: the receiver trusts no sender to have done it."""
        c = self.credential
        return {
            "id": self.id, "created_at": self.created_at, "deadline": self.deadline,
            "peer": {"pid": self.peer.pid, "uid": self.peer.uid, "exe": literal(self.peer.exe, _PATH),
                     "cwd": literal(self.peer.cwd, _PATH),
                     "chain": [[p.pid, literal(p.name, _NAME), literal(p.exe, _PATH)] for p in self.peer.chain],
                     "cmdline": [literal(arg, _ARG) for arg in self.peer.cmdline[:_ARGS]]},
            "session": None if self.session is None else self.session.public_dict(),
            "credential": {"id": c.id, "name": c.name, "kind": str(c.kind), "service": c.service,
                           "context": c.context, "status": str(c.status)},
            "scopes": list(self.scopes), "reason": self.reason, "duration": self.duration, "via": self.via,
            "right": self.right, "command": [literal(arg, _ARG) for arg in self.command[:_ARGS]],
            "program": literal(self.program, _PATH), "bound": self.bound,
            "outside_project": self.outside_project, "warnings": list(self.warnings),
            "sandboxed": self.sandboxed,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> PendingRequest:
        """The other side of ``to_wire``; every text is made literal again, whoever sent it."""
        peer = data["peer"]
        chain = tuple(ProcessInfo(int(entry[0]), literal(str(entry[1]), _NAME),
                                  literal(str(entry[2]) if len(entry) > 2 else "", _PATH))
                      for entry in peer["chain"])
        session = data.get("session")
        return cls(
            id=int(data["id"]), created_at=float(data["created_at"]), deadline=float(data["deadline"]),
            peer=PeerInfo(int(peer["pid"]), int(peer["uid"]), literal(str(peer["exe"]), _PATH),
                          literal(str(peer["cwd"]), _PATH), chain, (),
                          tuple(literal(str(arg), _ARG) for arg in peer.get("cmdline", ())[:_ARGS])),
            session=None if session is None else _session_from_wire(session),
            credential=_credential_from_wire(data["credential"]),
            scopes=tuple(literal(str(s), _NAME) for s in data["scopes"]), reason=literal(str(data["reason"])),
            duration=None if data.get("duration") is None else int(data["duration"]),
            via=literal(str(data["via"]), 200),
            right="inject" if data.get("right") == "inject" else "reveal",
            command=tuple(literal(str(arg), _ARG) for arg in data.get("command", ())[:_ARGS]),
            program=literal(str(data.get("program", "")), _PATH), bound=bool(data.get("bound")),
            outside_project=literal(str(data.get("outside_project", "")), 200),
            warnings=tuple(literal(str(w), 80) for w in data.get("warnings", ())),
            sandboxed=data.get("sandboxed") is True,
        )


def _session_from_wire(data: dict[str, Any]) -> AgentSession:
    session = AgentSession(**data)
    return session._replace(label=literal(str(session.label), _NAME), context=literal(str(session.context), _NAME),
                            created_by=literal(str(session.created_by), 300))


class ApprovalQueue:
    """Pending requests and the futures their requesters wait on."""

    def __init__(self, timeout: float = DEFAULT_APPROVAL_TIMEOUT) -> None:
        self.timeout = timeout
        self._pending: dict[int, tuple[PendingRequest, asyncio.Future[Decision]]] = {}
        self._numbers = itertools.count(1)
        self._listeners: list[Callable[[], None]] = []
        self.approvers = 0  # apps attached to answer (the hosting app counts as one)

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Called (on the event loop) whenever a request arrives or leaves the queue."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    def pending(self) -> list[PendingRequest]:
        return [request for request, _ in self._pending.values()]

    def new_id(self) -> int:
        return next(self._numbers)

    async def ask(self, request: PendingRequest, gone: asyncio.Future[None] | None = None) -> Decision | None:
        """Wait for a human; ``None`` when the timeout passed with no answer. ``gone``
        completes if the requester hangs up: the request is withdrawn (ConnectionError)."""
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._pending[request.id] = (request, future)
        self._changed()
        try:
            done, _ = await asyncio.wait({future} | ({gone} if gone else set()), timeout=self.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if future in done:
                return future.result()
            if gone is not None and gone in done:
                raise ConnectionError("the client left while waiting for approval")
            return None
        finally:
            if gone is not None:  # it reads the connection: it must be gone before anyone reads again
                gone.cancel()
                await asyncio.gather(gone, return_exceptions=True)
            self._pending.pop(request.id, None)
            self._changed()

    def decide(self, request_id: int, decision: Decision) -> bool:
        """Answer a pending request; ``False`` when it is gone (timed out, client left)."""
        entry = self._pending.get(request_id)
        if entry is None or entry[1].done():
            return False
        entry[1].set_result(decision)
        return True

    @property
    def approver_attached(self) -> bool:
        return self.approvers > 0

    def deny_all(self) -> None:
        """The vault is locking or the app is closing: nobody is left to approve."""
        for request_id in list(self._pending):
            self.decide(request_id, Decision.deny())
