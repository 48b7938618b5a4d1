"""The tamper-evident audit log.

Every entry is chained to the one before by SHA-256; the chain head is signed with the
vault's Ed25519 audit key (private key sealed in the vault, public key in clear) and
stored in ``meta``, outside the audit table, in the same transaction as the entry. So:

- an edited entry no longer matches its own hash;
- a deleted, inserted or reordered entry breaks the chain where it happened;
- a truncated log ends before the signed head;
- a rewritten tail (hashes recomputed) no longer matches the signed head, and the
  attacker cannot re-sign without the vault's key.

Anything naming a credential (target, context, details) is sealed with the vault key,
so a stolen file reveals only that *something* happened. Entries written while the
vault is locked (failed unlocks) are chained but cannot be signed or sealed; they name
no credential, and the next unlock signs over them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from enum import StrEnum
from typing import NamedTuple

from aegis_tui.core.actor import Actor
from aegis_tui.core.crypto import (
    SealingKey,
    Signer,
    associated_data,
    audit_entry_hash,
    audit_genesis,
    audit_head_message,
    verify_signature,
)
from aegis_tui.core.errors import IntegrityError, UnlockError
from aegis_tui.core.store.base import AuditRecord, StoreBackend

HEAD_META_KEY = "audit_head"
PUBLIC_KEY_META_KEY = "audit_public_key"


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    DENIED = "denied"


class AuditEntry(NamedTuple):
    """One decoded entry. ``target``/``context`` are ``None`` when sealed and locked."""

    seq: int
    timestamp: float
    actor: dict[str, object]
    session_id: str | None
    operation: str
    outcome: str
    risk: str
    flagged: bool
    target: str | None
    context: str | None
    detail: dict[str, object]
    sealed: bool

    def to_export(self) -> dict[str, object]:
        """The documented JSONL shape of ``audit export``."""
        return {
            "seq": self.seq,
            "timestamp": datetime.fromtimestamp(self.timestamp, timezone.utc).isoformat(),
            "session_id": self.session_id,
            "actor": self.actor,
            "operation": self.operation,
            "target": self.target,
            "context": self.context,
            "risk_level": self.risk,
            "flagged": self.flagged,
            "outcome": self.outcome,
            "detail": self.detail,
        }


class VerifyReport:
    """What ``verify`` found; ``problems`` name each broken entry by its number."""

    __slots__ = ("entries", "signed_seq", "unsigned_tail", "problems")

    def __init__(self) -> None:
        self.entries = 0
        self.signed_seq = 0
        self.unsigned_tail = 0
        self.problems: list[str] = []

    def __repr__(self) -> str:
        return (f"VerifyReport(entries={self.entries}, signed_seq={self.signed_seq}, "
                f"unsigned_tail={self.unsigned_tail}, problems={self.problems!r})")

    @property
    def ok(self) -> bool:
        return not self.problems


class AuditLog:
    """Append, read and verify one vault's audit chain."""

    def __init__(self, store: StoreBackend, vault_id: str, clock: Callable[[], float]) -> None:
        self._store = store
        self._vault_id = vault_id
        self._clock = clock
        self._sealer: SealingKey | None = None
        self._signer: Signer | None = None
        self._deferring = 0

    def attach_keys(self, sealer: SealingKey | None, signer: Signer | None) -> None:
        """Called on unlock (keys) and lock (``None``)."""
        self._sealer, self._signer = sealer, signer

    # -- writing ----------------------------------------------------------------------
    def append(
        self,
        operation: str,
        actor: Actor,
        *,
        outcome: Outcome = Outcome.OK,
        risk: Risk = Risk.LOW,
        target: str | None = None,
        context: str | None = None,
        detail: dict[str, object] | None = None,
    ) -> int:
        """Write one entry (inside the caller's transaction, if any) and return its seq.

        Never pass a secret value in ``detail``: it is sealed, but the log is for
        evidence, and evidence gets exported.
        """
        flagged = risk is Risk.HIGH or outcome is not Outcome.OK
        subject = {"target": target, "context": context, "detail": detail or {}}
        with self._store.transaction():
            last = self._store.last_audit()
            seq = 1 if last is None else last.seq + 1
            prev = audit_genesis(self._vault_id) if last is None else last.hash
            record: dict[str, object] = {
                "seq": seq,
                "ts": self._clock(),
                "actor": actor.to_dict(),
                "session": actor.session_id,
                "op": operation,
                "outcome": str(outcome),
                "risk": str(risk),
                "flagged": flagged,
            }
            sealed: bytes | None = None
            if self._sealer is not None:
                sealed = self._sealer.seal(json.dumps(subject).encode(), self._aad(seq))
            else:
                record["subject"] = subject
            text = json.dumps(record, separators=(",", ":"), sort_keys=True)
            entry_hash = audit_entry_hash(prev, text.encode(), sealed)
            self._store.append_audit(AuditRecord(seq, prev, text, sealed, entry_hash))
            if self._signer is not None and not self._deferring:
                self._store.set_meta(HEAD_META_KEY, self._signed_head(seq, entry_hash))
        return seq

    @contextmanager
    def signing_deferred(self) -> Iterator[None]:
        """Within one transaction, sign the chain head once at the end instead of after
        every entry (a broker committing a batch of requests). Use inside the transaction:
        the head must commit together with the entries it covers."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
            last = self._store.last_audit()
            if not self._deferring and self._signer is not None and last is not None:
                self._store.set_meta(HEAD_META_KEY, self._signed_head(last.seq, last.hash))

    def _signed_head(self, seq: int, entry_hash: bytes) -> str:
        assert self._signer is not None
        signature = self._signer.sign(audit_head_message(self._vault_id, seq, entry_hash))
        return json.dumps({"seq": seq, "hash": entry_hash.hex(), "sig": signature.hex()})

    def _aad(self, seq: int) -> bytes:
        return associated_data(self._vault_id, "audit", seq, "subject")

    # -- reading ----------------------------------------------------------------------
    def entries(self, after_seq: int = 0) -> Iterator[AuditEntry]:
        for stored in self._store.iter_audit(after_seq):
            yield self._decode(stored)

    def entries_of(self, operations: frozenset[str], after_seq: int = 0) -> Iterator[AuditEntry]:
        """Only the entries whose clear operation is one of ``operations``. The others are
        skipped on their clear text (written with sorted keys and no spaces, so ``"op":X``
        appears verbatim) without opening their sealed subject: an index over a million
        entries decrypts only the few it needs."""
        needles = tuple(f'"op":{json.dumps(operation)}' for operation in operations)
        for stored in self._store.iter_audit(after_seq):
            if any(needle in stored.record for needle in needles):
                entry = self._decode(stored)
                if entry.operation in operations:
                    yield entry

    def sign_document(self, message: bytes) -> tuple[bytes, bytes]:
        """Sign a document (an access review) with the vault's audit key; returns the
        signature and the public key. The message must start with its own domain prefix,
        so that no document can pass for a signed chain head."""
        if self._signer is None:
            raise UnlockError("the vault is locked")
        if message.startswith(audit_head_message(self._vault_id, 0, b"")[:20]):
            raise IntegrityError("a document signed with the audit key cannot look like a chain head")
        return self._signer.sign(message), self._signer.public_raw()

    def tail(self, count: int) -> list[AuditEntry]:
        last = self._store.last_audit()
        if last is None:
            return []
        return list(self.entries(after_seq=max(0, last.seq - count)))

    def _decode(self, stored: AuditRecord) -> AuditEntry:
        try:
            record = json.loads(stored.record)
        except ValueError:
            raise IntegrityError(f"audit entry #{stored.seq} is not readable: run 'aegis-vault audit verify'") from None
        subject = record.get("subject") or {}
        is_sealed = stored.sealed is not None
        if is_sealed and self._sealer is not None:
            subject = json.loads(self._sealer.open(stored.sealed, self._aad(stored.seq), f"audit entry #{stored.seq}"))
        return AuditEntry(
            seq=stored.seq,
            timestamp=float(record.get("ts", 0.0)),
            actor=record.get("actor") or {},
            session_id=record.get("session"),
            operation=str(record.get("op", "")),
            outcome=str(record.get("outcome", "")),
            risk=str(record.get("risk", "")),
            flagged=bool(record.get("flagged", False)),
            target=subject.get("target"),
            context=subject.get("context"),
            detail=subject.get("detail") or {},
            sealed=is_sealed and self._sealer is None,
        )

    # -- verification -------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        """Check the whole chain and the signed head; needs only the public key."""
        report = VerifyReport()
        head = self._load_head(report)
        prev = audit_genesis(self._vault_id)
        expected = 1
        hash_at_head: bytes | None = None
        intact = True
        for stored in self._store.iter_audit():
            if (
                stored.seq != expected
                or stored.prev != prev
                or audit_entry_hash(stored.prev, stored.record.encode(), stored.sealed) != stored.hash
            ):
                intact = False
                break
            if head is not None and stored.seq == head[0]:
                hash_at_head = stored.hash
            prev = stored.hash
            expected += 1
        if intact:
            report.entries = expected - 1
            if head is not None:
                self._check_head(report, head, report.entries, hash_at_head)
            report.unsigned_tail = report.entries - report.signed_seq
            return report
        return self._forensics(report, head)

    def _load_head(self, report: VerifyReport) -> tuple[int, bytes] | None:
        raw = self._store.get_meta(HEAD_META_KEY)
        public = self._store.get_meta(PUBLIC_KEY_META_KEY)
        if raw is None:
            # Every vault signs its first entry (init), so a log without a head lost it:
            # without this, deleting the head would hide any truncation or rewrite.
            if self._store.last_audit() is not None:
                report.problems.append("the signed chain head is missing: it was removed, so the log cannot be trusted")
            return None
        try:
            head = json.loads(raw)
            seq, entry_hash, signature = int(head["seq"]), bytes.fromhex(head["hash"]), bytes.fromhex(head["sig"])
        except (ValueError, KeyError, TypeError):
            report.problems.append("the signed chain head is unreadable: it was tampered with")
            return None
        if public is None or not verify_signature(
            bytes.fromhex(public), audit_head_message(self._vault_id, seq, entry_hash), signature
        ):
            report.problems.append(f"the signature on the chain head (#{seq}) is invalid: it was forged or altered")
            return None
        report.signed_seq = seq
        return seq, entry_hash

    @staticmethod
    def _check_head(report: VerifyReport, head: tuple[int, bytes], last_seq: int, found: bytes | None) -> None:
        seq, entry_hash = head
        if last_seq < seq:
            first = last_seq + 1
            span = f"#{first}" if first == seq else f"#{first}–#{seq}"
            report.problems.append(f"the log was truncated: entries {span} are missing (the signed head is #{seq})")
        elif found != entry_hash:
            report.problems.append(
                f"entry #{seq} does not match the signed chain head: entries up to #{seq} were rewritten"
            )

    def _forensics(self, report: VerifyReport, head: tuple[int, bytes] | None) -> VerifyReport:
        """Slow path, only after the fast scan found a break: say exactly what happened."""
        rows = list(self._store.iter_audit())
        report.entries = len(rows)
        genesis = audit_genesis(self._vault_id)
        claimed: list[int] = []
        content_ok: list[bool] = []
        for row in rows:
            ok = audit_entry_hash(row.prev, row.record.encode(), row.sealed) == row.hash
            content_ok.append(ok)
            try:
                claimed.append(int(json.loads(row.record)["seq"]))
            except (ValueError, KeyError, TypeError):
                claimed.append(row.seq)
            if not ok:
                report.problems.append(f"entry #{claimed[-1]} was edited: its content no longer matches its hash")
        for before, after in zip(claimed, claimed[1:]):
            if after < before:
                report.problems.append(f"entries #{after} and #{before} are out of order: the log was reordered")
        counts = Counter(claimed)
        referenced = {row.prev for row in rows}
        last_claimed = max(claimed, default=0)
        for index, row in enumerate(rows):
            if counts[claimed[index]] > 1 and (row.hash not in referenced and claimed[index] != last_claimed):
                report.problems.append(
                    f"an entry claiming to be #{claimed[index]} (stored at position {row.seq}) is not part "
                    "of the chain: it was inserted"
                )
        present = set(claimed)
        missing = [seq for seq in range(1, last_claimed + 1) if seq not in present]
        for start, end in _runs(missing):
            span = f"#{start}" if start == end else f"#{start}–#{end}"
            report.problems.append(f"entries {span} were deleted")
        by_claim = {}
        for index, row in enumerate(rows):
            if content_ok[index] and (counts[claimed[index]] == 1 or row.hash in referenced):
                by_claim.setdefault(claimed[index], row)
        for seq, row in sorted(by_claim.items()):
            expected_prev = genesis if seq == 1 else (by_claim[seq - 1].hash if seq - 1 in by_claim else None)
            if expected_prev is not None and row.prev != expected_prev:
                report.problems.append(f"the chain is broken between #{seq - 1} and #{seq}: an entry was replaced")
        if head is not None:
            at_head = by_claim.get(head[0])
            self._check_head(report, head, last_claimed, None if at_head is None else at_head.hash)
        report.unsigned_tail = max(0, last_claimed - report.signed_seq)
        if not report.problems:
            report.problems.append("the stored order of entries does not match the chain")
        return report


def _runs(numbers: list[int]) -> Iterator[tuple[int, int]]:
    """Consecutive runs in a sorted list: [1, 2, 3, 7] -> (1, 3), (7, 7)."""
    start = prev = None
    for number in numbers:
        if start is None:
            start = prev = number
        elif number == prev + 1:
            prev = number
        else:
            yield start, prev  # type: ignore[misc]
            start = prev = number
    if start is not None:
        yield start, prev  # type: ignore[misc]
