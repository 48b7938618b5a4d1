"""The SQLite schema, versioned from the first release on.

``MIGRATIONS[i]`` takes a vault from schema ``i`` to ``i + 1``; schema 0 is an empty
file. A vault is opened at the latest version: older files are migrated in one
transaction (after a copy is kept beside them), newer files are refused. Every schema
version ever released has a vault file under ``tests/fixtures/vaults/`` that the tests
open, so a migration cannot silently break old vaults.
"""

from __future__ import annotations

# 'AEGS' — marks the file as an aegis-vault vault for `file(1)` and for us.
APPLICATION_ID = 0x41454753

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the first release.
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE slots (
        id         TEXT PRIMARY KEY,
        kind       TEXT NOT NULL,
        label      TEXT NOT NULL,
        params     TEXT NOT NULL,
        wrapped    BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE credentials (
        id         TEXT PRIMARY KEY,
        name_index BLOB NOT NULL UNIQUE,
        rev        INTEGER NOT NULL,
        sealed     BLOB NOT NULL
    );
    CREATE TABLE versions (
        credential_id TEXT NOT NULL REFERENCES credentials(id) ON DELETE CASCADE,
        version       INTEGER NOT NULL,
        sealed        BLOB NOT NULL,
        created_at    REAL NOT NULL,
        retires_at    REAL,
        PRIMARY KEY (credential_id, version)
    ) WITHOUT ROWID;
    CREATE TABLE audit (
        seq    INTEGER PRIMARY KEY,
        prev   BLOB NOT NULL,
        record TEXT NOT NULL,
        sealed BLOB,
        hash   BLOB NOT NULL
    );
    """,
    # 1 -> 2: agent sessions and access grants (issue 4), and whatever later features
    # need to keep: one table of sealed records, told apart by kind. The kind and id are
    # clear (the backend needs them to find rows); everything else is sealed.
    """
    CREATE TABLE records (
        kind   TEXT NOT NULL,
        id     TEXT NOT NULL,
        rev    INTEGER NOT NULL,
        sealed BLOB NOT NULL,
        PRIMARY KEY (kind, id)
    ) WITHOUT ROWID;
    """,
)

CURRENT_VERSION = len(MIGRATIONS)
