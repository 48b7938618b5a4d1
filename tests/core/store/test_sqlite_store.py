"""``SqliteStore``: the store contract on real files, plus what only SQLite promises."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from contract import StoreContract, audit, cred, slot, version

from aegis_tui.core.errors import VaultFileError
from aegis_tui.core.store.base import StoreBackend
from aegis_tui.core.store.schema import APPLICATION_ID, CURRENT_VERSION
from aegis_tui.core.store.sqlite import SqliteStore


def private(tmp_path: Path) -> Path:
    folder = tmp_path / "store"
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o700)
    return folder


class TestSqliteStoreContract(StoreContract):
    def make_store(self, tmp_path: Path) -> StoreBackend:
        return SqliteStore.create(private(tmp_path) / "vault.db")

    def reopen_store(self, store: StoreBackend) -> StoreBackend:
        assert isinstance(store, SqliteStore)
        store.close()
        return SqliteStore.open(store.path)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=60)


# -- creating -----------------------------------------------------------------------------------------
def test_create_makes_a_0600_file_in_a_new_0700_folder(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "vault.db"
    SqliteStore.create(path).close()
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


def test_create_accepts_str_paths(tmp_path: Path) -> None:
    path = str(private(tmp_path) / "vault.db")
    store = SqliteStore.create(path)
    assert store.path == path
    store.close()
    SqliteStore.open(path).close()


def test_create_marks_the_file_with_our_application_id_and_schema(tmp_path: Path) -> None:
    path = private(tmp_path) / "vault.db"
    SqliteStore.create(path).close()
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert raw.execute("PRAGMA user_version").fetchone()[0] == CURRENT_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()
    assert path.read_bytes()[68:72] == b"AEGS"  # what file(1) and we look for


def test_create_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    path = private(tmp_path) / "vault.db"
    path.write_bytes(b"precious")
    with pytest.raises(VaultFileError, match="already exists"):
        SqliteStore.create(path)
    assert path.read_bytes() == b"precious"


def test_create_in_a_shared_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o755)
    with pytest.raises(VaultFileError, match="chmod 700"):
        SqliteStore.create(folder / "vault.db")
    assert not (folder / "vault.db").exists()


def test_connection_uses_durable_and_secure_settings(tmp_path: Path) -> None:
    store = SqliteStore.create(private(tmp_path) / "vault.db")
    try:
        conn = store._conn  # the settings are per connection; only the store's own can tell
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.schema_version == CURRENT_VERSION
    finally:
        store.close()


# -- opening ----------------------------------------------------------------------------------------------
def test_open_of_a_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(VaultFileError, match="aegis-vault init"):
        SqliteStore.open(private(tmp_path) / "vault.db")
    assert not (tmp_path / "store" / "vault.db").exists()


def test_open_refuses_an_initialised_looking_file_without_schema(tmp_path: Path) -> None:
    path = private(tmp_path) / "vault.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    raw.execute("CREATE TABLE t (x)")
    raw.commit()
    raw.close()
    os.chmod(path, 0o600)
    with pytest.raises(VaultFileError, match="not an initialised"):
        SqliteStore.open(path)


def test_remove_files_deletes_the_file_and_its_companions(tmp_path: Path) -> None:
    path = private(tmp_path) / "vault.db"
    store = SqliteStore.create(path)
    with store.transaction():
        store.set_meta("k", "v")
    assert Path(f"{path}-wal").exists()
    store.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").write_bytes(b"x")
    SqliteStore.remove_files(path)
    assert list(path.parent.iterdir()) == []
    SqliteStore.remove_files(path)  # nothing left: still no error


def test_compact_deleted_empties_the_write_ahead_log(tmp_path: Path) -> None:
    path = private(tmp_path) / "vault.db"
    store = SqliteStore.create(path)
    try:
        with store.transaction():
            store.insert_credential(cred("a"))
            store.put_version(version("a", 1))
        assert os.path.getsize(f"{path}-wal") > 0
        with store.transaction():
            store.delete_credential("id-a")
        store.compact_deleted()
        assert os.path.getsize(f"{path}-wal") == 0
        assert version("a", 1).sealed not in path.read_bytes()
        assert cred("a").sealed not in path.read_bytes()
    finally:
        store.close()


# -- isolation and crashes ------------------------------------------------------------------------------------
def test_another_connection_does_not_see_uncommitted_writes(tmp_path: Path) -> None:
    path = private(tmp_path) / "vault.db"
    writer = SqliteStore.create(path)
    reader = SqliteStore.open(path)
    try:
        with writer.transaction():
            writer.insert_credential(cred("a"))
            writer.append_audit(audit(1))
            assert reader.list_credentials() == []
            assert reader.last_audit() is None
        assert reader.list_credentials() == [cred("a")]
        assert reader.last_audit() == audit(1)
    finally:
        reader.close()
        writer.close()


_CRASH = """
    import os, sys
    from aegis_tui.core.store.sqlite import SqliteStore
    from aegis_tui.core.store.base import SlotRecord
    store = SqliteStore.open(sys.argv[1])
    with store.transaction():
        store.set_meta("committed", "yes")
    with store.transaction():
        store.set_meta("half", "written")
        store.put_slot(SlotRecord("dead", "env", "x", "{}", b"w", 1.0))
        os._exit(17)  # a hard crash: no rollback, no close, no atexit
"""


def test_a_crash_inside_a_transaction_loses_it_whole_and_keeps_earlier_commits(tmp_path: Path) -> None:
    path = private(tmp_path) / "vault.db"
    SqliteStore.create(path).close()
    result = run_python(_CRASH, str(path))
    assert result.returncode == 17, result.stderr
    store = SqliteStore.open(path)
    try:
        assert store.get_meta("committed") == "yes"
        assert store.get_meta("half") is None
        assert store.list_slots() == []
        with store.transaction():  # the write lock was released by the crash
            store.put_slot(slot("live"))
        assert [s.id for s in store.list_slots()] == ["live"]
    finally:
        store.close()
