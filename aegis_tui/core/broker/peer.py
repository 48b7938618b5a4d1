"""Who is on the other end of the socket, from the kernel (SO_PEERCRED) and ``/proc``.

The uid from SO_PEERCRED (``runtime.peer_credentials``) decides (other users are refused); everything else here is
evidence for the human who approves and for the audit log: the requesting process,
its executable, working directory and the chain of parents that led to it. Names come
from processes the agent controls, so they are cleaned before anyone sees them.
"""

from __future__ import annotations

import os
from typing import NamedTuple

_MAX_CHAIN = 12


def _clean(text: str, limit: int = 120) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:limit]


class ProcessInfo(NamedTuple):
    pid: int
    name: str

    def __str__(self) -> str:
        return f"{self.name} ({self.pid})"


class PeerInfo(NamedTuple):
    pid: int
    uid: int
    exe: str
    cwd: str
    chain: tuple[ProcessInfo, ...]  # the peer first, then its parent, grand-parent...
    ancestry: tuple[tuple[int, int], ...]  # (pid, start time) of the peer and each ancestor

    def describe(self) -> str:
        return " ← ".join(str(process) for process in self.chain) or f"pid {self.pid}"

    def to_dict(self) -> dict[str, object]:
        return {"pid": self.pid, "uid": self.uid, "exe": self.exe, "cwd": self.cwd,
                "chain": [f"{p.name}:{p.pid}" for p in self.chain]}


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(8192).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def process_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) from /proc/PID/stat, or None if gone."""
    raw = _read(f"/proc/{pid}/stat")
    if not raw:
        return None
    fields = raw[raw.rfind(")") + 2:].split()  # the name may contain spaces and ')'
    try:
        return int(fields[1]), int(fields[19])
    except (IndexError, ValueError):
        return None


def process_name(pid: int) -> str:
    """A readable name: the command, or for an interpreter the script it runs."""
    comm = _read(f"/proc/{pid}/comm").strip()
    argv = _read(f"/proc/{pid}/cmdline").split("\x00")
    if comm.startswith("python") and len(argv) > 1 and argv[1] and not argv[1].startswith("-"):
        return _clean(os.path.basename(argv[1]), 40)
    if len(argv) > 2 and argv[1] == "-m":
        return _clean(argv[2], 40)
    return _clean(comm or "?", 40)


def describe_process(pid: int, uid: int) -> PeerInfo:
    chain: list[ProcessInfo] = []
    ancestry: list[tuple[int, int]] = []
    current = pid
    while current > 0 and len(chain) < _MAX_CHAIN:
        stat_fields = process_stat(current)
        if stat_fields is None:
            break
        chain.append(ProcessInfo(current, process_name(current)))
        ancestry.append((current, stat_fields[1]))
        current = stat_fields[0]
    return PeerInfo(pid, uid, _clean(_link(f"/proc/{pid}/exe"), 300), _clean(_link(f"/proc/{pid}/cwd"), 300),
                    tuple(chain), tuple(ancestry))


def start_time(pid: int) -> int | None:
    found = process_stat(pid)
    return None if found is None else found[1]
