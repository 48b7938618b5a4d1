"""Every leak of the vault's own values the audit log knows of, grouped by credential.

Two kinds of entries say a value got out (or nearly did): ``leak.found`` (a scan found
it in a file, a commit or a stream: where, and in which encodings) and ``run`` entries
whose ``masked`` detail counts values masked out of a child's output. Whether a
credential is exposed right now is its status: the caller passes the exposed names, or
it is read from the log (``status.exposed`` until a rotation, ``status.active``, a
revocation or a destruction). Names and locations come from the log: untrusted text.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from aegis_tui.core.audit import AuditEntry

SCAN = "scan"
RUN_MASKING = "run masking"
_MAX_LOCATIONS = 200  # per credential: enough to act on, bounded in size
_CLEARS = {"status.active", "rotate", "revoke", "destroy"}
_READ = frozenset({"leak.found", "run", "status.exposed", *_CLEARS})


@dataclass
class Leak:
    """One credential's leaks: the newest first wherever there is an order."""

    name: str
    context: str
    first_seen: float
    last_seen: float
    count: int = 0
    locations: list[str] = field(default_factory=list)  # "path:line:col" (or "run: COMMAND"), newest first
    encodings: list[str] = field(default_factory=list)  # sorted
    via: list[str] = field(default_factory=list)  # SCAN and/or RUN_MASKING, in that order
    exposed: bool = False

    def _seen(self, entry: AuditEntry, count: int, locations: Iterable[str], encodings: Iterable[str],
              via: str) -> None:
        self.first_seen = min(self.first_seen, entry.timestamp)
        self.last_seen = max(self.last_seen, entry.timestamp)
        self.count += count
        if entry.context:
            self.context = entry.context
        fresh = [location for location in dict.fromkeys(locations)]
        # Entries come oldest first: each one's locations go on top, seen again or not.
        self.locations[:] = fresh + [location for location in self.locations if location not in fresh]
        del self.locations[_MAX_LOCATIONS:]
        self.encodings = sorted(set(self.encodings) | set(encodings))
        if via not in self.via:
            self.via = sorted([*self.via, via], key=(SCAN, RUN_MASKING).index)


def _count(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _strings(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def load_leaks(audit: object, exposed: Collection[str] | None = None) -> list[Leak]:
    """Group ``leak.found`` and masked ``run`` entries by credential, most recent leak first.

    ``audit`` is the vault's ``AuditLog`` (unlocked: the entries are sealed), or any
    iterable of entries. ``exposed``: the names of the credentials exposed now; when
    ``None`` the log says (a credential's last status change).
    """
    # From the vault's log, only the operations read below are opened: the view reloads
    # every few seconds, and most of a log is reads.
    entries: Iterable[AuditEntry] = (
        audit.entries_of(_READ) if hasattr(audit, "entries_of") else audit)  # type: ignore[union-attr, assignment]
    leaks: dict[str, Leak] = {}
    status: dict[str, bool] = {}

    def group(name: str, entry: AuditEntry) -> Leak:
        key = name.casefold()
        if key not in leaks:
            leaks[key] = Leak(name, entry.context or "", entry.timestamp, entry.timestamp)
        return leaks[key]

    for entry in entries:
        if entry.operation == "leak.found" and entry.target:
            detail = entry.detail
            locations = _strings(detail.get("locations"))
            group(entry.target, entry)._seen(entry, _count(detail.get("count"), len(locations) or 1),
                                             locations, _strings(detail.get("encodings")), SCAN)
        elif entry.operation == "run" and isinstance(entry.detail.get("masked"), dict):
            command = entry.target or "(command)"
            for name, hits in entry.detail["masked"].items():  # type: ignore[union-attr]
                count = _count(hits, 0)
                if count:
                    plain = entry._replace(context=None)  # the run's context is not the credential's
                    group(str(name), plain)._seen(plain, count, [f"run: {command}"], [], RUN_MASKING)
        elif entry.target and entry.operation == "status.exposed":
            status[entry.target.casefold()] = True
        elif entry.target and entry.operation in _CLEARS:
            status[entry.target.casefold()] = False
    now_exposed = {name.casefold() for name in exposed} if exposed is not None else {
        key for key, value in status.items() if value}
    for key, leak in leaks.items():
        leak.exposed = key in now_exposed
    return sorted(leaks.values(), key=lambda leak: (-leak.last_seen, leak.name.casefold()))
