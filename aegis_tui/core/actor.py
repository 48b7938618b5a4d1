"""Who is acting: the process, its parent, the user and the agent session.

Recorded on every audit entry. Read from ``/proc`` where available; nothing here is
trusted for access decisions (the broker checks peers with SO_PEERCRED), it is the
evidence a human reads afterwards.
"""

from __future__ import annotations

import os
import sys
from typing import NamedTuple

_MAX_FIELD = 120


def _clean(text: str) -> str:
    """Untrusted text (session ids, process names) reaches the log printable and short."""
    printable = "".join(ch if ch.isprintable() else "?" for ch in text)
    return printable[:_MAX_FIELD]


def _proc_comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as comm:
            return comm.read().strip()
    except OSError:
        return ""


class Actor(NamedTuple):
    user: str
    uid: int
    pid: int
    program: str
    parent_pid: int
    parent: str
    session_id: str | None = None

    def to_dict(self) -> dict[str, object]:
        return self._asdict()

    def describe(self) -> str:
        who = f"{self.user} via {self.program} (pid {self.pid}) ← {self.parent or '?'}"
        return f"{who} [session {self.session_id}]" if self.session_id else who


def current_actor(program: str | None = None) -> Actor:
    """This process as an actor; the agent session comes from ``AEGIS_SESSION``."""
    uid = os.getuid()
    try:
        import pwd

        user = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        user = str(uid)
    ppid = os.getppid()
    session = os.environ.get("AEGIS_SESSION")
    return Actor(
        user=_clean(user),
        uid=uid,
        pid=os.getpid(),
        program=_clean(program or os.path.basename(sys.argv[0] or "python")),
        parent_pid=ppid,
        parent=_clean(_proc_comm(ppid)),
        session_id=_clean(session) if session else None,
    )
