"""The contract every ``StoreBackend`` must honour, as a mixin of tests.

Like ``keyring.testing.backend.BackendBasicTests``: a backend's test module subclasses
``StoreContract`` and implements ``make_store`` (and, for durable backends,
``reopen_store``); every test below then runs against that backend::

    class TestMyStore(StoreContract):
        def make_store(self, tmp_path):
            return MyStore.create(...)

The tests use only the ``StoreBackend`` interface and opaque byte strings: a backend
never sees keys, names or values in clear, so none appear here either.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aegis_tui.core.errors import ConflictError
from aegis_tui.core.store.base import (
    AuditRecord,
    CredentialRecord,
    SealedRecord,
    SlotRecord,
    StoreBackend,
    VersionRecord,
)


class Boom(Exception):
    """Raised inside a transaction to make it roll back."""


def blob(tag: str, size: int = 48) -> bytes:
    """Opaque bytes standing in for a sealed blob; distinct per tag."""
    raw = (tag.encode() + b"\x00\xff") * (size // (len(tag) + 2) + 1)
    return raw[:size]


def cred(name: str, rev: int = 1, sealed: bytes | None = None) -> CredentialRecord:
    return CredentialRecord(f"id-{name}", blob(f"index-{name}", 32), rev, sealed or blob(f"meta-{name}-{rev}"))


def version(name: str, number: int, retires_at: float | None = None) -> VersionRecord:
    return VersionRecord(f"id-{name}", number, blob(f"value-{name}-{number}"), 1000.0 + number, retires_at)


def slot(slot_id: str, kind: str = "passphrase", created_at: float = 1.0) -> SlotRecord:
    return SlotRecord(slot_id, kind, f"label {slot_id}", '{"algorithm": "argon2id"}', blob(f"wrap-{slot_id}"),
                      created_at)


def audit(seq: int, sealed: bool = True) -> AuditRecord:
    return AuditRecord(seq, blob(f"prev-{seq}", 32), f'{{"seq":{seq}}}', blob(f"subj-{seq}") if sealed else None,
                       blob(f"hash-{seq}", 32))


class StoreContract:
    """Tests every ``StoreBackend`` must pass. Subclasses provide ``make_store``."""

    store: StoreBackend

    # -- hooks -------------------------------------------------------------------------
    def make_store(self, tmp_path: Path) -> StoreBackend:
        """A new, empty, ready-to-use store (the schema in place, no records)."""
        raise NotImplementedError

    def reopen_store(self, store: StoreBackend) -> StoreBackend | None:
        """Close ``store`` and open the same storage again; ``None`` if not durable."""
        return None

    @pytest.fixture(autouse=True)
    def _contract_store(self, tmp_path: Path):  # type: ignore[no-untyped-def]
        self.store = self.make_store(tmp_path)
        yield
        self.store.close()

    def reopen(self) -> StoreBackend:
        reopened = self.reopen_store(self.store)
        if reopened is None:
            pytest.skip("this backend keeps nothing across a reopen")
        self.store = reopened
        return reopened

    # -- a new store -----------------------------------------------------------------------
    def test_new_store_is_empty(self) -> None:
        assert self.store.get_meta("vault_id") is None
        assert self.store.list_slots() == []
        assert self.store.list_credentials() == []
        assert self.store.last_audit() is None
        assert list(self.store.iter_audit()) == []
        assert self.store.list_versions("id-none") == []

    # -- meta ---------------------------------------------------------------------------------
    def test_meta_set_get_and_overwrite(self) -> None:
        with self.store.transaction():
            self.store.set_meta("vault_id", "abc")
            self.store.set_meta("other", "1")
        assert self.store.get_meta("vault_id") == "abc"
        with self.store.transaction():
            self.store.set_meta("vault_id", "def")
        assert self.store.get_meta("vault_id") == "def"
        assert self.store.get_meta("other") == "1"
        assert self.store.get_meta("missing") is None

    def test_meta_keeps_text_exactly(self) -> None:
        text = '{"seq": 1, "sig": "ab"} ünïcode\n\t\u2603'
        with self.store.transaction():
            self.store.set_meta("k", text)
        assert self.store.get_meta("k") == text

    # -- slots ----------------------------------------------------------------------------------
    def test_slots_put_list_in_creation_order_replace_and_delete(self) -> None:
        with self.store.transaction():
            self.store.put_slot(slot("bbbb", created_at=2.0))
            self.store.put_slot(slot("aaaa", "env", created_at=1.0))
            self.store.put_slot(slot("cccc", "recovery", created_at=3.0))
        assert [s.id for s in self.store.list_slots()] == ["aaaa", "bbbb", "cccc"]
        assert self.store.list_slots()[0] == slot("aaaa", "env", created_at=1.0)

        replaced = slot("bbbb", created_at=2.0)._replace(wrapped=blob("rewrapped"), params="{}")
        with self.store.transaction():
            self.store.put_slot(replaced)
        assert [s for s in self.store.list_slots() if s.id == "bbbb"] == [replaced]
        assert len(self.store.list_slots()) == 3

        with self.store.transaction():
            self.store.delete_slot("aaaa")
        assert [s.id for s in self.store.list_slots()] == ["bbbb", "cccc"]

    def test_slot_wrapped_bytes_round_trip_exactly(self) -> None:
        raw = bytes(range(256))
        with self.store.transaction():
            self.store.put_slot(slot("s1")._replace(wrapped=raw))
        assert self.store.list_slots()[0].wrapped == raw

    # -- credentials --------------------------------------------------------------------------------
    def test_credential_insert_find_get_list(self) -> None:
        with self.store.transaction():
            self.store.insert_credential(cred("a"))
            self.store.insert_credential(cred("b"))
        assert self.store.find_credential(cred("a").name_index) == cred("a")
        assert self.store.get_credential("id-b") == cred("b")
        assert sorted(self.store.list_credentials()) == sorted([cred("a"), cred("b")])
        assert self.store.find_credential(blob("index-nobody", 32)) is None
        assert self.store.get_credential("id-nobody") is None

    def test_duplicate_name_index_raises_conflict_and_keeps_the_first(self) -> None:
        with self.store.transaction():
            self.store.insert_credential(cred("a"))
        clash = CredentialRecord("id-other", cred("a").name_index, 1, blob("meta-other"))
        with pytest.raises(ConflictError):
            with self.store.transaction():
                self.store.insert_credential(clash)
        assert self.store.list_credentials() == [cred("a")]

    def test_update_with_the_expected_rev_replaces_the_record(self) -> None:
        with self.store.transaction():
            self.store.insert_credential(cred("a"))
        renamed = CredentialRecord("id-a", blob("index-renamed", 32), 2, blob("meta-a-2"))
        with self.store.transaction():
            self.store.update_credential(renamed, expected_rev=1)
        assert self.store.get_credential("id-a") == renamed
        assert self.store.find_credential(renamed.name_index) == renamed
        assert self.store.find_credential(cred("a").name_index) is None

    def test_update_with_a_stale_rev_raises_conflict_and_changes_nothing(self) -> None:
        with self.store.transaction():
            self.store.insert_credential(cred("a"))
            self.store.update_credential(cred("a", rev=2), expected_rev=1)
        with pytest.raises(ConflictError):
            with self.store.transaction():
                self.store.update_credential(cred("a", rev=3), expected_rev=1)
        assert self.store.get_credential("id-a") == cred("a", rev=2)

    def test_update_onto_another_credentials_name_index_raises_conflict(self) -> None:
        with self.store.transaction():
            self.store.insert_credential(cred("a"))
            self.store.insert_credential(cred("b"))
        stolen = CredentialRecord("id-b", cred("a").name_index, 2, blob("meta-b-2"))
        with pytest.raises(ConflictError):
            with self.store.transaction():
                self.store.update_credential(stolen, expected_rev=1)
        assert self.store.get_credential("id-b") == cred("b")

    def test_delete_credential_removes_it_and_every_version(self) -> None:
        with self.store.transaction():
            for name in ("a", "b"):
                self.store.insert_credential(cred(name))
                self.store.put_version(version(name, 1, retires_at=5000.0))
                self.store.put_version(version(name, 2))
        with self.store.transaction():
            self.store.delete_credential("id-a")
        self.store.compact_deleted()
        assert self.store.get_credential("id-a") is None
        assert self.store.find_credential(cred("a").name_index) is None
        assert self.store.list_versions("id-a") == []
        assert self.store.list_versions("id-b") == [version("b", 1, retires_at=5000.0), version("b", 2)]

    def test_a_deleted_name_can_be_added_again(self) -> None:
        with self.store.transaction():
            self.store.insert_credential(cred("a"))
        with self.store.transaction():
            self.store.delete_credential("id-a")
        with self.store.transaction():
            self.store.insert_credential(cred("a", sealed=blob("meta-again")))
        assert self.store.get_credential("id-a") == cred("a", sealed=blob("meta-again"))

    # -- versions ---------------------------------------------------------------------------------------
    def test_versions_are_listed_oldest_first_and_replaced_in_place(self) -> None:
        with self.store.transaction():
            self.store.insert_credential(cred("a"))
            for number in (3, 1, 2):
                self.store.put_version(version("a", number))
        assert [v.version for v in self.store.list_versions("id-a")] == [1, 2, 3]
        with self.store.transaction():
            self.store.put_version(version("a", 2, retires_at=99.5))
        listed = self.store.list_versions("id-a")
        assert listed == [version("a", 1), version("a", 2, retires_at=99.5), version("a", 3)]

    def test_large_sealed_values_round_trip_byte_for_byte(self) -> None:
        big = os.urandom(3 * 1024 * 1024)
        with self.store.transaction():
            self.store.insert_credential(cred("a"))
            self.store.put_version(VersionRecord("id-a", 1, big, 1.0, None))
        assert self.store.list_versions("id-a")[0].sealed == big

    # -- audit ------------------------------------------------------------------------------------------
    def test_audit_append_last_and_iterate_in_order(self) -> None:
        with self.store.transaction():
            for seq in range(1, 6):
                self.store.append_audit(audit(seq, sealed=seq % 2 == 0))
        assert self.store.last_audit() == audit(5, sealed=False)
        assert list(self.store.iter_audit()) == [audit(seq, sealed=seq % 2 == 0) for seq in range(1, 6)]
        assert [r.seq for r in self.store.iter_audit(after_seq=3)] == [4, 5]
        assert list(self.store.iter_audit(after_seq=5)) == []
        assert self.store.list_slots() == []  # audit rows are not anything else

    def test_audit_entry_without_sealed_subject_keeps_none(self) -> None:
        with self.store.transaction():
            self.store.append_audit(audit(1, sealed=False))
        assert next(iter(self.store.iter_audit())).sealed is None

    def test_taken_audit_seq_raises_conflict_and_keeps_the_original(self) -> None:
        with self.store.transaction():
            self.store.append_audit(audit(1))
        forged = audit(1)._replace(record='{"seq":1,"forged":true}')
        with pytest.raises(ConflictError):
            with self.store.transaction():
                self.store.append_audit(forged)
        assert list(self.store.iter_audit()) == [audit(1)]

    def test_many_audit_entries_iterate_completely(self) -> None:
        with self.store.transaction():
            for seq in range(1, 5001):
                self.store.append_audit(audit(seq, sealed=False))
        seqs = [r.seq for r in self.store.iter_audit()]
        assert seqs == list(range(1, 5001))

    # -- transactions -------------------------------------------------------------------------------------
    def test_a_failed_transaction_leaves_nothing_behind(self) -> None:
        with pytest.raises(Boom):
            with self.store.transaction():
                self.store.set_meta("k", "v")
                self.store.put_slot(slot("s1"))
                self.store.insert_credential(cred("a"))
                self.store.put_version(version("a", 1))
                self.store.append_audit(audit(1))
                raise Boom
        assert self.store.get_meta("k") is None
        assert self.store.list_slots() == []
        assert self.store.list_credentials() == []
        assert self.store.list_versions("id-a") == []
        assert self.store.last_audit() is None

    def test_nested_transactions_join_the_outer_one(self) -> None:
        with pytest.raises(Boom):
            with self.store.transaction():
                with self.store.transaction():
                    self.store.set_meta("inner", "1")
                assert self.store.get_meta("inner") == "1"  # visible inside, not yet committed
                raise Boom
        assert self.store.get_meta("inner") is None

    def test_failure_in_a_nested_transaction_rolls_back_the_outer_one(self) -> None:
        with pytest.raises(Boom):
            with self.store.transaction():
                self.store.set_meta("outer", "1")
                with self.store.transaction():
                    self.store.set_meta("inner", "1")
                    raise Boom
        assert self.store.get_meta("outer") is None
        assert self.store.get_meta("inner") is None

    def test_the_store_is_usable_after_a_rolled_back_transaction(self) -> None:
        with pytest.raises(Boom):
            with self.store.transaction():
                self.store.set_meta("k", "lost")
                raise Boom
        with self.store.transaction():
            self.store.set_meta("k", "kept")
        assert self.store.get_meta("k") == "kept"

    def test_conflict_inside_a_transaction_rolls_back_its_earlier_writes(self) -> None:
        with self.store.transaction():
            self.store.insert_credential(cred("a"))
        with pytest.raises(ConflictError):
            with self.store.transaction():
                self.store.set_meta("half", "done")
                self.store.insert_credential(cred("b"))
                self.store.insert_credential(CredentialRecord("id-c", cred("a").name_index, 1, blob("c")))
        assert self.store.get_meta("half") is None
        assert self.store.get_credential("id-b") is None

    # -- sealed records -------------------------------------------------------------------------------------
    def test_records_insert_get_and_list_by_kind(self) -> None:
        with self.store.transaction():
            self.store.put_record("grant", SealedRecord("g1", 1, blob("g1")), expected_rev=None)
            self.store.put_record("grant", SealedRecord("g2", 1, blob("g2")), expected_rev=None)
            self.store.put_record("session", SealedRecord("g1", 1, blob("s1")), expected_rev=None)
        assert sorted(self.store.list_records("grant")) == [SealedRecord("g1", 1, blob("g1")),
                                                            SealedRecord("g2", 1, blob("g2"))]
        assert self.store.get_record("session", "g1") == SealedRecord("g1", 1, blob("s1"))
        assert self.store.get_record("session", "g2") is None
        assert self.store.list_records("incident") == []

    def test_inserting_a_record_id_twice_raises_conflict_and_keeps_the_first(self) -> None:
        with self.store.transaction():
            self.store.put_record("grant", SealedRecord("g1", 1, blob("first")), expected_rev=None)
        with pytest.raises(ConflictError):
            with self.store.transaction():
                self.store.put_record("grant", SealedRecord("g1", 1, blob("second")), expected_rev=None)
        assert self.store.get_record("grant", "g1") == SealedRecord("g1", 1, blob("first"))

    def test_record_update_needs_the_current_revision(self) -> None:
        with self.store.transaction():
            self.store.put_record("grant", SealedRecord("g1", 1, blob("v1")), expected_rev=None)
            self.store.put_record("grant", SealedRecord("g1", 2, blob("v2")), expected_rev=1)
        with pytest.raises(ConflictError):
            with self.store.transaction():
                self.store.put_record("grant", SealedRecord("g1", 3, blob("stale")), expected_rev=1)
        with pytest.raises(ConflictError):
            with self.store.transaction():
                self.store.put_record("grant", SealedRecord("nobody", 2, blob("x")), expected_rev=1)
        assert self.store.get_record("grant", "g1") == SealedRecord("g1", 2, blob("v2"))

    def test_change_version_changes_after_a_commit(self) -> None:
        before = self.store.change_version()
        with self.store.transaction():
            self.store.put_record("grant", SealedRecord("g1", 1, blob("v1")), expected_rev=None)
        after = self.store.change_version()
        assert before == after == 0 or before != after

    # -- durability ----------------------------------------------------------------------------------------
    def test_committed_records_survive_a_reopen(self) -> None:
        with self.store.transaction():
            self.store.set_meta("vault_id", "abc")
            self.store.put_slot(slot("s1"))
            self.store.insert_credential(cred("a"))
            self.store.put_version(version("a", 1, retires_at=12.25))
            self.store.append_audit(audit(1))
            self.store.put_record("grant", SealedRecord("g1", 1, blob("g1")), expected_rev=None)
        store = self.reopen()
        assert store.get_meta("vault_id") == "abc"
        assert store.list_slots() == [slot("s1")]
        assert store.list_credentials() == [cred("a")]
        assert store.list_versions("id-a") == [version("a", 1, retires_at=12.25)]
        assert list(store.iter_audit()) == [audit(1)]
        assert store.list_records("grant") == [SealedRecord("g1", 1, blob("g1"))]

    def test_a_rolled_back_transaction_is_absent_after_a_reopen(self) -> None:
        with pytest.raises(Boom):
            with self.store.transaction():
                self.store.set_meta("ghost", "1")
                raise Boom
        assert self.reopen().get_meta("ghost") is None
