"""The tamper-evident audit log: every kind of attack on the chain is found and named.

Each attack runs on a fresh vault, done with plain SQL as someone holding the file would,
and ``verify()`` runs on a *locked* vault: checking the log needs no key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aegis_tui.core.audit import HEAD_META_KEY, VerifyReport
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.crypto import audit_entry_hash, audit_genesis
from aegis_tui.core.errors import RefusedError, UnlockError
from aegis_tui.core.models import Status
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault

ENTRIES = 14  # what ``busy`` below writes, all signed


@pytest.fixture
def busy(made) -> Path:  # type: ignore[no-untyped-def]
    """A closed vault whose log holds ``ENTRIES`` signed entries of assorted operations."""
    creds = Credentials(made.vault)
    for name in ("one", "two", "three", "four"):  # 2-5
        creds.add(name, Secret(f"{name}-value"))
    for name in ("one", "two", "three"):  # 6-8
        creds.reveal(name)
    creds.rotate("one", Secret("one-value-2"))  # 9
    creds.set_status("two", Status.REVOKED)  # 10
    with pytest.raises(RefusedError):
        creds.reveal("two")  # 11, denied
    creds.destroy("three")  # 12
    creds.add("five", Secret("five-value"))  # 13
    creds.reveal("five")  # 14
    made.vault.close()
    return made.path


def verify_locked(path: Path, kit) -> VerifyReport:  # type: ignore[no-untyped-def]
    vault = Vault.open(path, actor=kit.TEST_ACTOR)
    try:
        assert not vault.is_unlocked
        return vault.audit.verify()
    finally:
        vault.close()


def rows(conn) -> dict[int, tuple[bytes, str, bytes | None, bytes]]:  # type: ignore[no-untyped-def]
    return {seq: (prev, record, sealed, entry_hash)
            for seq, prev, record, sealed, entry_hash in conn.execute("SELECT * FROM audit ORDER BY seq")}


def problems_with(report: VerifyReport, *words: str) -> list[str]:
    return [p for p in report.problems if all(word in p for word in words)]


# -- an honest log --------------------------------------------------------------------------------------------------
def test_chain_verifies_after_many_operations_without_unlocking(busy: Path, kit) -> None:
    report = verify_locked(busy, kit)
    assert report.ok, report.problems
    assert (report.entries, report.signed_seq, report.unsigned_tail) == (ENTRIES, ENTRIES, 0)


def test_operations_are_logged_in_order_with_their_outcomes(busy: Path, kit) -> None:
    vault = kit.open_unlocked(busy)
    try:
        entries = list(vault.audit.entries())[:ENTRIES]
        assert [e.seq for e in entries] == list(range(1, ENTRIES + 1))
        assert [e.operation for e in entries] == ["init", "add", "add", "add", "add", "read", "read", "read",
                                                  "rotate", "revoke", "read", "destroy", "add", "read"]
        assert entries[10].outcome == "denied" and entries[10].flagged
        assert all(e.actor["user"] == "tester" and e.session_id == "core-tests" for e in entries)
        assert [e.target for e in entries[1:5]] == ["one", "two", "three", "four"]
        assert vault.audit.tail(2)[-1].operation == "unlock"
    finally:
        vault.close()


def test_a_long_chain_still_verifies(made, kit) -> None:
    creds = Credentials(made.vault)
    creds.add("k", Secret("v"))
    for _ in range(300):
        creds.reveal("k")
    made.vault.close()
    report = verify_locked(made.path, kit)
    assert report.ok and report.entries == 302 and report.unsigned_tail == 0


# -- attacks ---------------------------------------------------------------------------------------------------------
def test_edited_entry_is_reported_by_number(busy: Path, kit) -> None:
    with kit.raw_db(busy) as conn:
        (record,) = conn.execute("SELECT record FROM audit WHERE seq = 5").fetchone()
        edited = json.loads(record)
        edited["outcome"] = "failed"
        conn.execute("UPDATE audit SET record = ? WHERE seq = 5", (json.dumps(edited),))
    report = verify_locked(busy, kit)
    assert not report.ok
    assert problems_with(report, "#5", "edited")
    assert not problems_with(report, "#4") and not problems_with(report, "#6")


def test_deleted_entry_is_reported_by_number(busy: Path, kit) -> None:
    with kit.raw_db(busy) as conn:
        conn.execute("DELETE FROM audit WHERE seq = 5")
    report = verify_locked(busy, kit)
    assert not report.ok
    assert problems_with(report, "#5", "deleted")
    assert not problems_with(report, "edited")


def test_inserted_forged_entry_is_reported_by_number(busy: Path, kit) -> None:
    with kit.raw_db(busy) as conn:
        chain = rows(conn)
        prev = chain[4][3]
        forged_record = json.loads(chain[4][1])
        forged_record.update(seq=5, op="read", outcome="ok", ts=forged_record["ts"] + 1)
        record = json.dumps(forged_record, separators=(",", ":"), sort_keys=True)
        forged_hash = audit_entry_hash(prev, record.encode(), None)
        conn.execute("BEGIN")
        conn.execute("UPDATE audit SET seq = seq + 1000000 WHERE seq >= 5")  # shift up without clashing
        conn.execute("UPDATE audit SET seq = seq - 1000000 + 1 WHERE seq >= 1000000")
        conn.execute("INSERT INTO audit (seq, prev, record, sealed, hash) VALUES (5, ?, ?, NULL, ?)",
                     (prev, record, forged_hash))
        conn.execute("COMMIT")
        assert [seq for seq, in conn.execute("SELECT seq FROM audit")] == list(range(1, ENTRIES + 2))
    report = verify_locked(busy, kit)
    assert not report.ok
    assert problems_with(report, "#5", "inserted")
    assert not problems_with(report, "edited")


def test_swapped_entries_are_reported_as_reordered(busy: Path, kit) -> None:
    with kit.raw_db(busy) as conn:
        chain = rows(conn)
        conn.execute("BEGIN")
        for seq, other in ((5, 6), (6, 5)):
            conn.execute("UPDATE audit SET prev = ?, record = ?, sealed = ?, hash = ? WHERE seq = ?",
                         (*chain[other], seq))
        conn.execute("COMMIT")
    report = verify_locked(busy, kit)
    assert not report.ok
    assert problems_with(report, "#5", "#6", "out of order", "reordered")


def test_truncated_log_is_reported_with_the_missing_span(busy: Path, kit) -> None:
    with kit.raw_db(busy) as conn:
        conn.execute("DELETE FROM audit WHERE seq > ?", (ENTRIES - 3,))
    report = verify_locked(busy, kit)
    assert not report.ok
    assert problems_with(report, "truncated", f"#{ENTRIES - 2}", f"#{ENTRIES}")


def rewrite_from(conn, seq: int, vault_id: str) -> None:  # type: ignore[no-untyped-def]
    """Edit entry ``seq`` and recompute every hash and prev link after it: a clean-looking chain."""
    chain = rows(conn)
    record = json.loads(chain[seq][1])
    record["outcome"] = "failed"
    chain[seq] = (chain[seq][0], json.dumps(record, separators=(",", ":"), sort_keys=True), *chain[seq][2:])
    prev = audit_genesis(vault_id) if seq == 1 else chain[seq - 1][3]
    conn.execute("BEGIN")
    for number in range(seq, max(chain) + 1):
        _, text, sealed, _ = chain[number]
        new_hash = audit_entry_hash(prev, text.encode(), sealed)
        conn.execute("UPDATE audit SET prev = ?, record = ?, hash = ? WHERE seq = ?", (prev, text, new_hash, number))
        prev = new_hash
    conn.execute("COMMIT")


def test_rewritten_tail_with_recomputed_hashes_fails_the_signed_head(busy: Path, kit) -> None:
    with kit.raw_db(busy) as conn:
        (vault_id,) = conn.execute("SELECT value FROM meta WHERE key = 'vault_id'").fetchone()
        rewrite_from(conn, 5, vault_id)
    vault = Vault.open(busy)
    try:
        assert [e.outcome for e in vault.audit.entries()][4] == "failed"  # the forgery is in place
    finally:
        vault.close()
    report = verify_locked(busy, kit)
    assert not report.ok
    assert problems_with(report, f"#{ENTRIES}", "signed chain head", "rewritten")


def test_forged_head_signature_is_reported(busy: Path, kit) -> None:
    with kit.raw_db(busy) as conn:
        (raw,) = conn.execute("SELECT value FROM meta WHERE key = ?", (HEAD_META_KEY,)).fetchone()
        head = json.loads(raw)
        signature = bytearray(bytes.fromhex(head["sig"]))
        signature[10] ^= 0x40
        head["sig"] = signature.hex()
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(head), HEAD_META_KEY))
    report = verify_locked(busy, kit)
    assert not report.ok
    assert problems_with(report, "signature", f"#{ENTRIES}", "forged")
    assert report.signed_seq == 0


def test_rewritten_tail_with_a_head_pointing_at_it_fails_the_signature(busy: Path, kit) -> None:
    with kit.raw_db(busy) as conn:
        (vault_id,) = conn.execute("SELECT value FROM meta WHERE key = 'vault_id'").fetchone()
        rewrite_from(conn, 5, vault_id)
        (last_hash,) = conn.execute("SELECT hash FROM audit WHERE seq = ?", (ENTRIES,)).fetchone()
        (raw,) = conn.execute("SELECT value FROM meta WHERE key = ?", (HEAD_META_KEY,)).fetchone()
        head = json.loads(raw)
        head["hash"] = last_hash.hex()  # the attacker cannot re-sign, so the old signature stays
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(head), HEAD_META_KEY))
    report = verify_locked(busy, kit)
    assert not report.ok
    assert problems_with(report, "signature")


def test_unreadable_head_is_reported(busy: Path, kit) -> None:
    with kit.raw_db(busy) as conn:
        conn.execute("UPDATE meta SET value = 'not json' WHERE key = ?", (HEAD_META_KEY,))
    report = verify_locked(busy, kit)
    assert problems_with(report, "head is unreadable")


def test_removed_head_with_a_truncated_log_is_still_reported(busy: Path, kit) -> None:
    with kit.raw_db(busy) as conn:
        conn.execute("DELETE FROM meta WHERE key = ?", (HEAD_META_KEY,))
        conn.execute("DELETE FROM audit WHERE seq > 5")
    report = verify_locked(busy, kit)
    assert not report.ok
    assert problems_with(report, "head", "missing")


# -- entries written while locked --------------------------------------------------------------------------------------
def test_failed_unlocks_while_locked_are_an_unsigned_tail_that_verifies(busy: Path, kit) -> None:
    vault = Vault.open(busy, actor=kit.TEST_ACTOR)
    try:
        for _ in range(3):
            with pytest.raises(UnlockError):
                vault.unlock_with_passphrase(Secret(kit.OTHER_PASSPHRASE))
        report = vault.audit.verify()
        assert report.ok, report.problems
        assert (report.entries, report.signed_seq, report.unsigned_tail) == (ENTRIES + 3, ENTRIES, 3)
        tail = vault.audit.tail(3)
        assert [(e.operation, e.outcome, e.sealed) for e in tail] == [("unlock", "failed", False)] * 3

        vault.unlock_with_env_key(kit.ENV_KEY)
        report = vault.audit.verify()
        assert report.ok
        assert (report.entries, report.signed_seq, report.unsigned_tail) == (ENTRIES + 4, ENTRIES + 4, 0)
    finally:
        vault.close()


def test_an_edited_unsigned_entry_is_still_detected(busy: Path, kit) -> None:
    vault = Vault.open(busy, actor=kit.TEST_ACTOR)
    with pytest.raises(UnlockError):
        vault.unlock_with_passphrase(Secret(kit.OTHER_PASSPHRASE))
    vault.close()
    with kit.raw_db(busy) as conn:
        (record,) = conn.execute("SELECT record FROM audit WHERE seq = ?", (ENTRIES + 1,)).fetchone()
        conn.execute("UPDATE audit SET record = ? WHERE seq = ?",
                     (record.replace('"failed"', '"ok"'), ENTRIES + 1))
    report = verify_locked(busy, kit)
    assert problems_with(report, f"#{ENTRIES + 1}", "edited")


# -- no secret in the evidence ------------------------------------------------------------------------------------------
def test_no_secret_value_appears_in_any_exported_entry(made, kit) -> None:
    canary = "AuditCanary-SECRET-VALUE-4e5f60"
    creds = Credentials(made.vault)
    creds.add("api", Secret(canary))
    creds.reveal("api")
    creds.rotate("api", Secret(canary + "-rotated"))
    creds.reveal("api", version=1)
    creds.add("other", Secret(canary.encode().hex()))
    with pytest.raises(UnlockError):
        made.vault.unlock_with_passphrase(Secret(canary))  # even a mistyped "passphrase" is not logged

    exported = [json.dumps(entry.to_export(), ensure_ascii=False) for entry in made.vault.audit.entries()]
    assert any('"target": "api"' in line for line in exported)  # unlocked: subjects are shown
    made.vault.close()
    locked = Vault.open(made.path)
    try:
        exported += [json.dumps(entry.to_export()) for entry in locked.audit.entries()]
    finally:
        locked.close()
    for line in exported:
        assert canary not in line
        assert canary.encode().hex() not in line
    assert set(json.loads(exported[0])) == {"seq", "timestamp", "session_id", "actor", "operation", "target",
                                           "context", "risk_level", "flagged", "outcome", "detail"}
