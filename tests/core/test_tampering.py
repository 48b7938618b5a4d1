"""Sealed data changed behind the vault's back is detected, never read as a wrong value.

Every attack here is done the way someone holding the file would: with plain SQL on a
second connection, while the vault is open (its next read goes to the disk).
"""

from __future__ import annotations

import pytest

from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import IntegrityError, UnlockError
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault

POSITIONS = {"first": 0, "after-version": 1, "middle": None, "last": -1}


def flipped(blob: bytes, position: int | None) -> bytes:
    data = bytearray(blob)
    index = len(data) // 2 if position is None else position
    data[index] ^= 0x01
    return bytes(data)


@pytest.fixture
def seeded(made):  # type: ignore[no-untyped-def]
    creds = Credentials(made.vault)
    a = creds.add("alpha", Secret("alpha-value"), service="svc-a", notes="notes a")
    b = creds.add("bravo", Secret("bravo-value"), service="svc-b")
    creds.rotate("alpha", Secret("alpha-value-2"))
    return made, creds, a, b


# -- one flipped byte in each kind of sealed blob ----------------------------------------------------------------
@pytest.mark.parametrize("where", list(POSITIONS))
def test_flipped_byte_in_credential_metadata_raises_integrity_error(where: str, seeded, kit) -> None:
    made, creds, a, _ = seeded
    with kit.raw_db(made.path) as conn:
        (sealed,) = conn.execute("SELECT sealed FROM credentials WHERE id = ?", (a.id,)).fetchone()
        conn.execute("UPDATE credentials SET sealed = ? WHERE id = ?", (flipped(sealed, POSITIONS[where]), a.id))
    for read in (lambda: creds.find("alpha"), lambda: creds.reveal("alpha"), lambda: creds.list(),
                 lambda: creds.versions("alpha")):
        with pytest.raises(IntegrityError, match="a credential"):
            read()
    assert creds.reveal("bravo").reveal_text() == "bravo-value"  # only the damaged row is refused


@pytest.mark.parametrize("where", list(POSITIONS))
def test_flipped_byte_in_a_version_value_raises_integrity_error(where: str, seeded, kit) -> None:
    made, creds, a, _ = seeded
    with kit.raw_db(made.path) as conn:
        (sealed,) = conn.execute("SELECT sealed FROM versions WHERE credential_id = ? AND version = 2",
                                 (a.id,)).fetchone()
        conn.execute("UPDATE versions SET sealed = ? WHERE credential_id = ? AND version = 2",
                     (flipped(sealed, POSITIONS[where]), a.id))
    with pytest.raises(IntegrityError, match="a secret value"):
        creds.reveal("alpha")
    with pytest.raises(IntegrityError):
        creds.reveal("alpha", version=2)
    assert creds.reveal("alpha", version=1).reveal_text() == "alpha-value"


@pytest.mark.parametrize("where", list(POSITIONS))
def test_flipped_byte_in_an_audit_subject_raises_integrity_error_and_fails_verify(where: str, seeded,
                                                                                  kit) -> None:
    made, _, _, _ = seeded
    with kit.raw_db(made.path) as conn:
        seq, sealed = conn.execute("SELECT seq, sealed FROM audit WHERE sealed IS NOT NULL ORDER BY seq DESC"
                                   " LIMIT 1 OFFSET 1").fetchone()
        conn.execute("UPDATE audit SET sealed = ? WHERE seq = ?", (flipped(sealed, POSITIONS[where]), seq))
    with pytest.raises(IntegrityError, match=f"audit entry #{seq}"):
        list(made.vault.audit.entries())
    report = made.vault.audit.verify()
    assert not report.ok
    assert any(f"#{seq}" in problem and "edited" in problem for problem in report.problems)


@pytest.mark.parametrize("kind", ["passphrase", "env", "recovery"])
@pytest.mark.parametrize("where", list(POSITIONS))
def test_flipped_byte_in_a_slots_wrapped_key_makes_that_slot_refuse_to_unlock(where: str, kind: str,
                                                                              made, kit) -> None:
    made.vault.close()
    with kit.raw_db(made.path) as conn:
        slot_id, wrapped = conn.execute("SELECT id, wrapped FROM slots WHERE kind = ?", (kind,)).fetchone()
        conn.execute("UPDATE slots SET wrapped = ? WHERE id = ?", (flipped(wrapped, POSITIONS[where]), slot_id))
    vault = Vault.open(made.path, actor=kit.TEST_ACTOR)
    try:
        # A damaged wrap is indistinguishable from a wrong key: the slot simply does not open.
        with pytest.raises(UnlockError) as caught:
            if kind == "passphrase":
                vault.unlock_with_passphrase(Secret(kit.PASSPHRASE))
            elif kind == "env":
                vault.unlock_with_env_key(kit.ENV_KEY)
            else:
                vault.unlock_with_recovery(Secret(made.recovery))
        assert type(caught.value) is UnlockError
        assert not vault.is_unlocked
        entry = list(vault.audit.entries())[-1]
        assert (entry.operation, entry.outcome) == ("unlock", "failed")
        other = "env" if kind != "env" else "passphrase"
        if other == "env":
            vault.unlock_with_env_key(kit.ENV_KEY)  # the other slots still open the vault
        else:
            vault.unlock_with_passphrase(Secret(kit.PASSPHRASE))
        assert vault.is_unlocked
    finally:
        vault.close()


@pytest.mark.parametrize("where", list(POSITIONS))
def test_flipped_byte_in_the_sealed_audit_key_makes_unlock_raise_integrity_error(where: str, made, kit) -> None:
    made.vault.close()
    with kit.raw_db(made.path) as conn:
        (hex_blob,) = conn.execute("SELECT value FROM meta WHERE key = 'audit_private_key'").fetchone()
        damaged = flipped(bytes.fromhex(hex_blob), POSITIONS[where]).hex()
        conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_private_key'", (damaged,))
    vault = Vault.open(made.path, actor=kit.TEST_ACTOR)
    try:
        with pytest.raises(IntegrityError, match="audit signing key"):
            vault.unlock_with_env_key(kit.ENV_KEY)
        assert not vault.is_unlocked
        with pytest.raises(UnlockError):
            _ = vault.keys
    finally:
        vault.close()


# -- blobs moved to where they do not belong ---------------------------------------------------------------------------
def test_value_blob_moved_to_another_credential_raises_integrity_error(seeded, kit) -> None:
    made, creds, a, b = seeded
    with kit.raw_db(made.path) as conn:
        (sealed,) = conn.execute("SELECT sealed FROM versions WHERE credential_id = ? AND version = 1",
                                 (a.id,)).fetchone()
        conn.execute("UPDATE versions SET sealed = ? WHERE credential_id = ? AND version = 1", (sealed, b.id))
    with pytest.raises(IntegrityError, match="a secret value"):
        creds.reveal("bravo")
    assert creds.reveal("alpha", version=1).reveal_text() == "alpha-value"


def test_metadata_blob_moved_to_another_credential_raises_integrity_error(seeded, kit) -> None:
    made, creds, a, b = seeded
    with kit.raw_db(made.path) as conn:
        (sealed,) = conn.execute("SELECT sealed FROM credentials WHERE id = ?", (a.id,)).fetchone()
        conn.execute("UPDATE credentials SET sealed = ? WHERE id = ?", (sealed, b.id))
    with pytest.raises(IntegrityError, match="a credential"):
        creds.find("bravo")
    with pytest.raises(IntegrityError):
        creds.list()


def test_metadata_blob_and_rev_moved_together_still_raise_integrity_error(seeded, kit) -> None:
    made, creds, a, b = seeded
    with kit.raw_db(made.path) as conn:
        rev, sealed = conn.execute("SELECT rev, sealed FROM credentials WHERE id = ?", (a.id,)).fetchone()
        conn.execute("UPDATE credentials SET rev = ?, sealed = ? WHERE id = ?", (rev, sealed, b.id))
    with pytest.raises(IntegrityError):
        creds.reveal("bravo")


def test_swapping_versions_1_and_2_of_a_credential_raises_integrity_error(seeded, kit) -> None:
    made, creds, a, _ = seeded
    with kit.raw_db(made.path) as conn:
        rows = dict(conn.execute("SELECT version, sealed FROM versions WHERE credential_id = ?", (a.id,)))
        conn.execute("BEGIN")
        for number, other in ((1, 2), (2, 1)):
            conn.execute("UPDATE versions SET sealed = ? WHERE credential_id = ? AND version = ?",
                         (rows[other], a.id, number))
        conn.execute("COMMIT")
    for version in (None, 1, 2):
        with pytest.raises(IntegrityError):
            creds.reveal("alpha", version=version)


def test_swapping_name_indexes_cannot_make_one_name_read_another_credential(seeded, kit) -> None:
    made, creds, a, b = seeded
    with kit.raw_db(made.path) as conn:
        index = dict(conn.execute("SELECT id, name_index FROM credentials"))
        conn.execute("BEGIN")
        conn.execute("UPDATE credentials SET name_index = x'00' WHERE id = ?", (a.id,))
        conn.execute("UPDATE credentials SET name_index = ? WHERE id = ?", (index[a.id], b.id))
        conn.execute("UPDATE credentials SET name_index = ? WHERE id = ?", (index[b.id], a.id))
        conn.execute("COMMIT")
    for name in ("alpha", "bravo"):
        with pytest.raises(IntegrityError):
            creds.reveal(name)
        with pytest.raises(IntegrityError):
            creds.find(name)


def test_changing_a_rev_without_resealing_raises_integrity_error(seeded, kit) -> None:
    made, creds, a, _ = seeded
    with kit.raw_db(made.path) as conn:
        conn.execute("UPDATE credentials SET rev = rev + 1 WHERE id = ?", (a.id,))
    with pytest.raises(IntegrityError, match="a credential"):
        creds.find("alpha")
    with pytest.raises(IntegrityError):
        creds.reveal("alpha")


def test_moving_a_version_row_to_another_version_number_raises_integrity_error(seeded, kit) -> None:
    made, creds, a, _ = seeded
    with kit.raw_db(made.path) as conn:
        conn.execute("UPDATE versions SET version = 3 WHERE credential_id = ? AND version = 1", (a.id,))
    with pytest.raises(IntegrityError):
        creds.reveal("alpha", version=3)
