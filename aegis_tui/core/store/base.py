"""The storage backend interface: what a vault needs from wherever its bytes live.

A backend stores opaque records. It never sees a key, a name or a value in clear:
everything sensitive arrives already sealed by the vault, and lookups by name use a
blind index. That keeps every backend (the SQLite file today, OpenBao later) equally
blind, and lets one contract-test suite (``tests/core/store/contract.py``) check them all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import NamedTuple


class SlotRecord(NamedTuple):
    """One unlock slot: the data key wrapped under a key only this slot can produce."""

    id: str
    kind: str
    label: str
    params: str  # JSON, kind-specific, never secret (salts, KDF costs, keyring entry)
    wrapped: bytes
    created_at: float


class CredentialRecord(NamedTuple):
    """A credential's sealed metadata plus the blind index of its name."""

    id: str
    name_index: bytes
    rev: int
    sealed: bytes


class VersionRecord(NamedTuple):
    """One sealed value of a credential. ``retires_at`` set means it has been superseded."""

    credential_id: str
    version: int
    sealed: bytes
    created_at: float
    retires_at: float | None


class SealedRecord(NamedTuple):
    """A sealed object of some kind (an agent session, a grant...) with a revision."""

    id: str
    rev: int
    sealed: bytes


class AuditRecord(NamedTuple):
    """One audit entry as stored: clear record, optional sealed subject, chain hash."""

    seq: int
    prev: bytes
    record: str
    sealed: bytes | None
    hash: bytes


class StoreBackend(ABC):
    """Durable, transactional storage of sealed vault records.

    Writes happen inside ``transaction()``; a transaction either lands whole or not at
    all, also across a crash. Reads may happen outside one.
    """

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """An exclusive write transaction; nested use joins the outer one."""

    def savepoint(self) -> AbstractContextManager[None]:
        """Inside a transaction: a part that an exception undoes on its own, leaving the
        rest of the transaction intact (the broker commits many requests together).
        Backends without savepoints join the transaction, so a failure undoes it all."""
        return self.transaction()

    @abstractmethod
    def close(self) -> None: ...

    def compact_deleted(self) -> None:
        """Make deleted records unrecoverable from the backend's own files (optional)."""

    # -- metadata -----------------------------------------------------------------
    @abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    # -- unlock slots ---------------------------------------------------------------
    @abstractmethod
    def list_slots(self) -> list[SlotRecord]: ...

    @abstractmethod
    def put_slot(self, slot: SlotRecord) -> None:
        """Insert or replace the slot with this id."""

    @abstractmethod
    def delete_slot(self, slot_id: str) -> None: ...

    # -- credentials ----------------------------------------------------------------
    @abstractmethod
    def find_credential(self, name_index: bytes) -> CredentialRecord | None: ...

    @abstractmethod
    def get_credential(self, credential_id: str) -> CredentialRecord | None: ...

    @abstractmethod
    def list_credentials(self) -> list[CredentialRecord]: ...

    @abstractmethod
    def insert_credential(self, record: CredentialRecord) -> None:
        """Raise ``ConflictError`` when the name index is taken."""

    @abstractmethod
    def update_credential(self, record: CredentialRecord, expected_rev: int) -> None:
        """Replace the record; raise ``ConflictError`` if someone else changed it first."""

    @abstractmethod
    def delete_credential(self, credential_id: str) -> None:
        """Remove the credential and every version of it, leaving no recoverable bytes."""

    # -- versions -------------------------------------------------------------------
    @abstractmethod
    def list_versions(self, credential_id: str) -> list[VersionRecord]:
        """Oldest first."""

    @abstractmethod
    def put_version(self, record: VersionRecord) -> None:
        """Insert or replace this (credential, version)."""

    # -- sealed records (sessions, grants, ...) ---------------------------------------
    @abstractmethod
    def list_records(self, kind: str) -> list[SealedRecord]:
        """Every record of ``kind``, in no particular order."""

    @abstractmethod
    def get_record(self, kind: str, record_id: str) -> SealedRecord | None: ...

    @abstractmethod
    def put_record(self, kind: str, record: SealedRecord, expected_rev: int | None) -> None:
        """Insert (``expected_rev`` None: ``ConflictError`` if the id exists) or replace
        the record whose revision is ``expected_rev`` (``ConflictError`` otherwise)."""

    def change_version(self) -> int:
        """A number that changes whenever credentials, versions or records change (here
        or in another process), so a long-running process can cache what it decoded
        (0: no such signal, never cache)."""
        return 0

    # -- audit ----------------------------------------------------------------------
    @abstractmethod
    def last_audit(self) -> AuditRecord | None: ...

    @abstractmethod
    def append_audit(self, record: AuditRecord) -> None:
        """Raise ``ConflictError`` if ``record.seq`` is already taken."""

    @abstractmethod
    def iter_audit(self, after_seq: int = 0) -> Iterator[AuditRecord]:
        """Entries in storage order, starting after ``after_seq``."""
