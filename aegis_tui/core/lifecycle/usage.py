"""Who used which credential, and when: a summary of the audit log kept up to date.

An access review needs "last used, by which sessions" and "how often found exposed"
for every credential. Reading that from the log itself means opening every sealed
entry: a million of them take far longer than a review screen may. So the summary is
kept as one sealed record (kind ``usage``, id ``index``) that remembers how far into
the log it has read, and each ``refresh`` reads only the entries written since, and
of those opens only the few operations that matter (see ``AuditLog.entries_of``).

Entries are keyed by credential name, as the log names them: a rename (an ``edit``
whose detail holds ``previous_name``) carries the history over, a ``destroy`` drops
it. Per credential, only the most recent sessions and agents are kept, so the record
stays small however long the vault lives.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from aegis_tui.core.store.records import SealedRecords
from aegis_tui.core.audit import AuditEntry, Outcome
from aegis_tui.core.credentials import gc_paused
from aegis_tui.core.errors import ConflictError
from aegis_tui.core.vault import Vault

USAGE_KIND = "usage"
INDEX_ID = "index"
KEEP_RECENT = 10  # sessions and agents remembered per credential: what a reviewer reads
_READ, _LEAK, _EDIT, _DESTROY = "read", "leak.found", "edit", "destroy"
# Reads that are the vault's own upkeep, not anyone using the credential: the app works
# out every TOTP code as it unlocks, and rotation hands old values to provider hooks.
_NOT_USES = frozenset({"tui.totp", "rotation.hook", "rotation.revoke-hook"})
_OPERATIONS = frozenset({_READ, _LEAK, _EDIT, _DESTROY})
_RETRIES = 3


class Usage(NamedTuple):
    """One credential's use as the log tells it; all zero/empty when never used."""

    last_used: float | None = None
    uses: int = 0
    sessions: Mapping[str, float] = MappingProxyType({})  # session id -> last use
    agents: Mapping[str, float] = MappingProxyType({})  # program -> last use
    leaks: int = 0
    last_leak: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Usage:
        return cls(data.get("last_used"), data.get("uses", 0), data.get("sessions", {}),
                   data.get("agents", {}), data.get("leaks", 0), data.get("last_leak"))


class UsageIndex:
    """The usage summary of one unlocked vault. Cheap to construct; ``refresh`` catches up."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._records = SealedRecords(vault, USAGE_KIND)
        self._rev: int | None = None
        self._data: dict[str, Any] = _empty()

    @property
    def through_seq(self) -> int:
        """The last audit entry the summary has read."""
        return int(self._data["through_seq"])

    def get(self, name: str) -> Usage:
        """What the index knew at its last ``refresh`` (or load) about ``name``."""
        found = self._data["credentials"].get(name)
        return Usage() if found is None else Usage.from_dict(found)

    def load(self) -> None:
        """Read the stored summary without catching up (a read-only view)."""
        with gc_paused():
            found = self._records.get(INDEX_ID)
        self._rev, self._data = (None, _empty()) if found is None else found

    def refresh(self) -> int:
        """Catch up with the log and store the result; returns how many entries it read.

        Another process (the broker) may refresh at the same time: the store refuses a
        stale revision, and then this one starts again from what the other one stored.
        """
        for _ in range(_RETRIES):
            last = self._vault.store.last_audit()
            upper = 0 if last is None else last.seq
            self._sync()
            if upper <= self.through_seq:
                return 0
            read = upper - self.through_seq
            with gc_paused():  # the summaries only grow; the cyclic collector would rescan them
                for entry in self._vault.audit.entries_of(_OPERATIONS, self.through_seq):
                    if entry.seq > upper:
                        break
                    _apply(self._data["credentials"], entry)
            self._data["through_seq"] = upper
            try:
                self._save()
            except ConflictError:
                continue
            return read
        raise ConflictError("the usage index keeps changing under this refresh; try again")

    def _sync(self) -> None:
        """Adopt the stored summary, unless the one in memory is that revision already: a
        broker refreshing on every tick would otherwise decode megabytes each time."""
        stored = self._vault.store.get_record(USAGE_KIND, INDEX_ID)
        if stored is None or stored.rev != self._rev:
            self.load()

    def _save(self) -> None:
        if self._rev is None:
            self._records.insert(self._data)
            self._rev = 1
        else:
            self._rev = self._records.update(self._data, self._rev)


def _empty() -> dict[str, Any]:
    return {"id": INDEX_ID, "through_seq": 0, "credentials": {}}


def _apply(credentials: dict[str, dict[str, Any]], entry: AuditEntry) -> None:
    """Fold one entry into the per-name summaries."""
    name = entry.target
    if name is None:
        return
    if entry.operation == _DESTROY:
        credentials.pop(name, None)
    elif entry.operation == _EDIT:
        previous = entry.detail.get("previous_name")
        if isinstance(previous, str) and previous != name and previous in credentials:
            credentials[name] = credentials.pop(previous)
    elif entry.operation == _LEAK:
        usage = credentials.setdefault(name, {})
        usage["leaks"] = usage.get("leaks", 0) + 1
        usage["last_leak"] = entry.timestamp
    elif entry.outcome == Outcome.OK and entry.detail.get("via") not in _NOT_USES:  # a refused read is no use
        _record_use(credentials.setdefault(name, {}), entry)


def _record_use(usage: dict[str, Any], entry: AuditEntry) -> None:
    usage["uses"] = usage.get("uses", 0) + 1
    usage["last_used"] = entry.timestamp
    if entry.session_id:
        _remember(usage.setdefault("sessions", {}), entry.session_id, entry.timestamp)
    program = entry.actor.get("program")
    if isinstance(program, str) and program:
        _remember(usage.setdefault("agents", {}), program, entry.timestamp)


def _remember(recent: dict[str, float], key: str, when: float) -> None:
    """Keep the ``KEEP_RECENT`` most recently seen keys. By time, not insertion order:
    the sealed record is stored with sorted keys."""
    recent[key] = when
    if len(recent) > KEEP_RECENT:
        del recent[min(recent, key=recent.__getitem__)]
