"""The embedded default backend: one SQLite file in WAL mode.

Durability choices, and why:
- ``synchronous=FULL``: a transaction that returned survives power loss, not just a
  crashed process (the promise is "nothing committed is lost").
- ``secure_delete=ON`` and a WAL checkpoint after deletions: destroyed secrets do not
  linger in free pages or in the write-ahead log.
- ``BEGIN IMMEDIATE`` with a busy timeout: concurrent CLI processes queue for the write
  lock instead of failing half-way.

Within one process the connection may be used from several threads (the app derives
keys and decrypts thousands of rows in worker threads); a re-entrant lock makes each
transaction, and each read, exclusive to one thread at a time.
"""

from __future__ import annotations

import os
import sqlite3
from _thread import RLock  # the lock type ``threading`` wraps; ``threading`` itself costs ~2 ms to import
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aegis_tui.core.errors import AegisError, ConflictError, VaultFileError
from aegis_tui.core.paths import SQLITE_COMPANIONS, check_vault_permissions, ensure_private_folder
from aegis_tui.core.store.base import (
    AuditRecord,
    CredentialRecord,
    SealedRecord,
    SlotRecord,
    StoreBackend,
    VersionRecord,
)
from aegis_tui.core.store.schema import APPLICATION_ID, CURRENT_VERSION, MIGRATIONS

_BUSY_TIMEOUT_MS = 15_000


class SqliteStore(StoreBackend):
    """A vault file on disk."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        self._depth = 0
        self._writes = 0
        self._lock = RLock()

    # -- lifecycle --------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> SqliteStore:
        """Create a new, empty vault file (0600 in a 0700 folder). Never overwrites."""
        path = os.fspath(path)
        ensure_private_folder(os.path.dirname(os.path.abspath(path)))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise VaultFileError(f"a vault already exists at {path}") from None
        os.close(fd)
        store = cls(_connect(path), path)
        try:
            store._migrate(from_version=0)
        except BaseException:
            store.close()
            cls.remove_files(path)
            raise
        return store

    @staticmethod
    def remove_files(path: str | os.PathLike[str]) -> None:
        """Undo a half-made vault: the file and SQLite's companions."""
        for suffix in ("", *SQLITE_COMPANIONS):
            try:
                os.unlink(os.fspath(path) + suffix)
            except FileNotFoundError:
                pass

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> SqliteStore:
        """Open an existing vault, migrating an older schema and refusing a newer one."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise VaultFileError(
                f"no vault at {path}; create one with: aegis-vault init (or try the app on fake data: aegis-vault demo)"
            )
        check_vault_permissions(path)
        if os.path.getsize(path) == 0:
            raise VaultFileError(f"{path} is empty: not an aegis-vault vault")
        # Identify the file before anything can write to it: switching the journal to
        # WAL rewrites the header of a plain SQLite file that is not ours.
        store = cls(_connect(path, wal=False), path)
        try:
            version = store._check_identity()
            _enable_wal(store._conn, path)
            if version < CURRENT_VERSION:
                store._backup_before_migration(version)
                store._migrate(from_version=version)
        except sqlite3.DatabaseError as err:
            store.close()
            raise VaultFileError(f"{path} is not an aegis-vault vault or is damaged ({err})") from None
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self._conn.close()

    def _check_identity(self) -> int:
        app_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if app_id != APPLICATION_ID:
            raise VaultFileError(f"{self.path} is an SQLite file but not an aegis-vault vault")
        if version > CURRENT_VERSION:
            raise VaultFileError(
                f"{self.path} uses vault schema {version}, newer than this aegis-vault "
                f"understands ({CURRENT_VERSION}); upgrade aegis-vault to open it"
            )
        if version < 1:
            raise VaultFileError(f"{self.path} is not an initialised aegis-vault vault")
        return version

    def _backup_before_migration(self, version: int) -> None:
        backup = f"{self.path}.schema{version}.bak"
        fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        target = sqlite3.connect(backup)
        try:
            self._conn.backup(target)
        finally:
            target.close()

    def _migrate(self, from_version: int) -> None:
        with self.transaction():
            for version in range(from_version, CURRENT_VERSION):
                for statement in _statements(MIGRATIONS[version]):
                    self._conn.execute(statement)
            self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._conn.execute(f"PRAGMA user_version = {CURRENT_VERSION}")

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # -- transactions -----------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as err:
                raise AegisError(f"the vault is busy (another aegis-vault holds it): {err}") from None
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self._conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self._conn.execute("COMMIT")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self.transaction(), self._lock:
            self._conn.execute("SAVEPOINT part")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK TO part")
                self._conn.execute("RELEASE part")
                raise
            self._conn.execute("RELEASE part")

    def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: tuple[object, ...] = ()) -> tuple[Any, ...] | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, params)

    def compact_deleted(self) -> None:
        """Flush the write-ahead log so deleted pages leave it too."""
        self._run("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- metadata -----------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._run(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- slots ----------------------------------------------------------------------------
    def list_slots(self) -> list[SlotRecord]:
        rows = self._rows("SELECT id, kind, label, params, wrapped, created_at FROM slots ORDER BY created_at, id")
        return [SlotRecord(*row) for row in rows]

    def put_slot(self, slot: SlotRecord) -> None:
        self._writes += 1
        self._run(
            "INSERT OR REPLACE INTO slots (id, kind, label, params, wrapped, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (slot.id, slot.kind, slot.label, slot.params, slot.wrapped, slot.created_at),
        )

    def delete_slot(self, slot_id: str) -> None:
        self._writes += 1
        self._run("DELETE FROM slots WHERE id = ?", (slot_id,))

    # -- credentials -----------------------------------------------------------------------
    def find_credential(self, name_index: bytes) -> CredentialRecord | None:
        row = self._one("SELECT id, name_index, rev, sealed FROM credentials WHERE name_index = ?", (name_index,))
        return None if row is None else CredentialRecord(*row)

    def get_credential(self, credential_id: str) -> CredentialRecord | None:
        row = self._one("SELECT id, name_index, rev, sealed FROM credentials WHERE id = ?", (credential_id,))
        return None if row is None else CredentialRecord(*row)

    def list_credentials(self) -> list[CredentialRecord]:
        return [CredentialRecord(*row) for row in self._rows("SELECT id, name_index, rev, sealed FROM credentials")]

    def insert_credential(self, record: CredentialRecord) -> None:
        self._writes += 1
        try:
            self._run(
                "INSERT INTO credentials (id, name_index, rev, sealed) VALUES (?, ?, ?, ?)",
                (record.id, record.name_index, record.rev, record.sealed),
            )
        except sqlite3.IntegrityError:
            raise ConflictError("a credential with that name already exists") from None

    def update_credential(self, record: CredentialRecord, expected_rev: int) -> None:
        self._writes += 1
        try:
            cursor = self._run(
                "UPDATE credentials SET name_index = ?, rev = ?, sealed = ? WHERE id = ? AND rev = ?",
                (record.name_index, record.rev, record.sealed, record.id, expected_rev),
            )
        except sqlite3.IntegrityError:
            raise ConflictError("a credential with that name already exists") from None
        if cursor.rowcount != 1:
            raise ConflictError("the credential changed while this edit was in progress; try again")

    def delete_credential(self, credential_id: str) -> None:
        self._writes += 1
        with self.transaction():
            self._run("DELETE FROM versions WHERE credential_id = ?", (credential_id,))
            self._run("DELETE FROM credentials WHERE id = ?", (credential_id,))

    # -- versions ---------------------------------------------------------------------------
    def list_versions(self, credential_id: str) -> list[VersionRecord]:
        rows = self._rows(
            "SELECT credential_id, version, sealed, created_at, retires_at FROM versions "
            "WHERE credential_id = ? ORDER BY version",
            (credential_id,),
        )
        return [VersionRecord(*row) for row in rows]

    def put_version(self, record: VersionRecord) -> None:
        self._writes += 1
        self._run(
            "INSERT OR REPLACE INTO versions (credential_id, version, sealed, created_at, retires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (record.credential_id, record.version, record.sealed, record.created_at, record.retires_at),
        )

    # -- sealed records -----------------------------------------------------------------------
    def list_records(self, kind: str) -> list[SealedRecord]:
        return [SealedRecord(*row) for row in self._rows("SELECT id, rev, sealed FROM records WHERE kind = ?", (kind,))]

    def get_record(self, kind: str, record_id: str) -> SealedRecord | None:
        row = self._one("SELECT id, rev, sealed FROM records WHERE kind = ? AND id = ?", (kind, record_id))
        return None if row is None else SealedRecord(*row)

    def put_record(self, kind: str, record: SealedRecord, expected_rev: int | None) -> None:
        self._writes += 1
        if expected_rev is None:
            try:
                self._run("INSERT INTO records (kind, id, rev, sealed) VALUES (?, ?, ?, ?)",
                          (kind, record.id, record.rev, record.sealed))
            except sqlite3.IntegrityError:
                raise ConflictError(f"a {kind} with id {record.id} already exists") from None
            return
        cursor = self._run("UPDATE records SET rev = ?, sealed = ? WHERE kind = ? AND id = ? AND rev = ?",
                           (record.rev, record.sealed, kind, record.id, expected_rev))
        if cursor.rowcount != 1:
            raise ConflictError(f"the {kind} {record.id} changed meanwhile; try again")

    def change_version(self) -> int:
        """SQLite's ``data_version`` moves when *another* connection commits; our own
        writes of credentials, versions and records are counted here. Our own audit
        appends are not: a broker appends one per request and must keep its caches."""
        with self._lock:
            return (int(self._conn.execute("PRAGMA data_version").fetchone()[0]) << 32) + self._writes

    # -- audit --------------------------------------------------------------------------------
    def last_audit(self) -> AuditRecord | None:
        row = self._one("SELECT seq, prev, record, sealed, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return None if row is None else AuditRecord(*row)

    def append_audit(self, record: AuditRecord) -> None:
        try:
            self._run(
                "INSERT INTO audit (seq, prev, record, sealed, hash) VALUES (?, ?, ?, ?, ?)",
                (record.seq, record.prev, record.record, record.sealed, record.hash),
            )
        except sqlite3.IntegrityError:
            raise ConflictError(f"audit entry #{record.seq} already exists") from None

    def iter_audit(self, after_seq: int = 0) -> Iterator[AuditRecord]:
        """Pages of 4,096 by key, each read under the lock; never holds it across a yield."""
        last = after_seq
        while batch := self._rows(
            "SELECT seq, prev, record, sealed, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT 4096", (last,)
        ):
            for row in batch:
                yield AuditRecord(*row)
            last = batch[-1][0]


def _connect(path: str, *, wal: bool = True) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        if wal:
            _enable_wal(conn, path)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
    except sqlite3.DatabaseError as err:
        conn.close()
        raise VaultFileError(f"{path} is not an aegis-vault vault or is damaged ({err})") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection, path: str) -> None:
    try:
        conn.execute("PRAGMA journal_mode = WAL")
    except sqlite3.DatabaseError as err:
        raise VaultFileError(f"{path} is not an aegis-vault vault or is damaged ({err})") from None


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
