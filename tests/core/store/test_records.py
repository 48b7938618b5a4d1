"""Sealed records (sessions, grants) on disk: only kind and id are in clear, and each
blob is bound to (vault, kind, id, revision). Whoever holds the file can move, copy or
swap rows with plain SQL (done here through a second, independent connection): every
such row fails to open with an IntegrityError instead of being believed."""

from __future__ import annotations

import pytest

from aegis_tui.core.agents.grants import INJECT, Grants, Use
from aegis_tui.core.store.records import SealedRecords
from aegis_tui.core.agents.sessions import Sessions
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import ConflictError, IntegrityError
from aegis_tui.core.secret import Secret

OTHER_GRANT_ID = "gr_0123456789abcdef"
OTHER_SESSION_ID = "as_0123456789abcdef"


def row(kit, path, kind: str, record_id: str) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    with kit.raw_db(path) as conn:
        found = conn.execute("SELECT rev, sealed FROM records WHERE kind = ? AND id = ?", (kind, record_id)).fetchone()
    assert found is not None
    return found[0], bytes(found[1])


def sql(kit, path, statement: str, *params: object) -> None:  # type: ignore[no-untyped-def]
    with kit.raw_db(path) as conn:
        changed = conn.execute(statement, params).rowcount
    assert changed == 1


@pytest.fixture
def grant(made):  # type: ignore[no-untyped-def]
    credential = Credentials(made.vault).add("deploy-key", Secret("deploy_value_000001"), context="acme/prod")
    return Grants(made.vault).create(credential=credential, reason="nightly deploy")


# -- the store -------------------------------------------------------------------------------------------------
def test_records_round_trip_with_revisions(made) -> None:
    records = SealedRecords(made.vault, "note")
    records.insert({"id": "n1", "text": "hello", "n": [1, 2]})
    assert records.get("n1") == (1, {"id": "n1", "text": "hello", "n": [1, 2]})
    assert records.get("missing") is None
    assert records.update({"id": "n1", "text": "changed"}, 1) == 2
    assert records.get("n1") == (2, {"id": "n1", "text": "changed"})
    assert records.all() == [(2, {"id": "n1", "text": "changed"})]
    assert SealedRecords(made.vault, "other").all() == []


def test_a_stale_revision_or_a_duplicate_id_is_a_conflict(made) -> None:
    records = SealedRecords(made.vault, "note")
    records.insert({"id": "n1"})
    records.update({"id": "n1", "v": 2}, 1)
    with pytest.raises(ConflictError, match="changed meanwhile"):
        records.update({"id": "n1", "v": 3}, 1)
    with pytest.raises(ConflictError, match="already exists"):
        records.insert({"id": "n1"})
    assert records.get("n1") == (2, {"id": "n1", "v": 2})


def test_on_disk_only_kind_id_and_revision_are_in_clear(made, kit, grant) -> None:
    Sessions(made.vault).start("acme/prod", 3600, label="visible-label-text")
    with kit.raw_db(made.path) as conn:
        rows = conn.execute("SELECT kind, id, rev, sealed FROM records").fetchall()
    assert {r[0] for r in rows} == {"grant", "session"}
    clear_texts = (b"deploy-key", b"nightly deploy", b"acme/prod", b"visible-label-text", b"created_by", b'"id"')
    for _, _, _, sealed in rows:
        assert not any(clear in bytes(sealed) for clear in clear_texts)
    on_disk = b"".join(kit.file_bytes(made.path).values())
    assert not any(clear in on_disk for clear in (b"nightly deploy", b"visible-label-text"))


# -- tampering --------------------------------------------------------------------------------------------------
def test_a_grant_moved_to_another_id_fails_to_open(made, kit, grant) -> None:
    sql(kit, made.path, "UPDATE records SET id = ? WHERE kind = 'grant' AND id = ?", OTHER_GRANT_ID, grant.id)
    with pytest.raises(IntegrityError, match="tampered"):
        Grants(made.vault).get(OTHER_GRANT_ID)
    with pytest.raises(IntegrityError):
        Grants(made.vault).list()


def test_a_grant_copied_to_a_second_id_fails_to_open(made, kit, grant) -> None:
    rev, sealed = row(kit, made.path, "grant", grant.id)
    sql(kit, made.path, "INSERT INTO records (kind, id, rev, sealed) VALUES ('grant', ?, ?, ?)",
        OTHER_GRANT_ID, rev, sealed)
    assert SealedRecords(made.vault, "grant").get(grant.id) is not None  # the original still opens
    with pytest.raises(IntegrityError):
        SealedRecords(made.vault, "grant").get(OTHER_GRANT_ID)
    with pytest.raises(IntegrityError):  # and a grant listing refuses rather than skip the forgery silently
        Grants(made.vault).list(include_inactive=True)


def test_a_grant_moved_to_the_session_kind_fails_to_open(made, kit, grant) -> None:
    sql(kit, made.path, "UPDATE records SET kind = 'session', id = ? WHERE kind = 'grant' AND id = ?",
        OTHER_SESSION_ID, grant.id)
    with pytest.raises(IntegrityError):
        Sessions(made.vault).list()
    with pytest.raises(IntegrityError):
        Sessions(made.vault).get(OTHER_SESSION_ID)


def test_a_record_moved_to_another_kind_under_the_same_id_fails_to_open(made, kit) -> None:
    SealedRecords(made.vault, "grant").insert({"id": "x1", "label": "a"})
    sql(kit, made.path, "UPDATE records SET kind = 'session' WHERE kind = 'grant' AND id = 'x1'")
    with pytest.raises(IntegrityError):
        SealedRecords(made.vault, "session").get("x1")


def test_a_session_moved_to_another_id_fails_to_open(made, kit) -> None:
    session, _ = Sessions(made.vault).start("acme", 3600)
    sql(kit, made.path, "UPDATE records SET id = ? WHERE kind = 'session' AND id = ?", OTHER_SESSION_ID, session.id)
    with pytest.raises(IntegrityError):
        Sessions(made.vault).get(OTHER_SESSION_ID)


def test_an_older_revision_put_back_under_the_newer_revision_number_fails_to_open(made, kit, grant) -> None:
    first_rev, first_blob = row(kit, made.path, "grant", grant.id)
    Grants(made.vault).revoke(grant.id, reason="compromised")
    newer_rev, _ = row(kit, made.path, "grant", grant.id)
    assert (first_rev, newer_rev) == (1, 2)
    # the attacker wants the grant un-revoked: the old blob, keeping the current revision number
    sql(kit, made.path, "UPDATE records SET sealed = ? WHERE kind = 'grant' AND id = ?", first_blob, grant.id)
    with pytest.raises(IntegrityError):
        Grants(made.vault).get(grant.id)
    with pytest.raises(IntegrityError):
        Grants(made.vault).find(Credentials(made.vault).find("deploy-key"), None, (), Use(INJECT))


def test_an_older_session_revision_put_back_cannot_reopen_an_ended_session(made, kit) -> None:
    sessions = Sessions(made.vault)
    session, _ = sessions.start("acme", 3600)
    _, first_blob = row(kit, made.path, "session", session.id)
    sessions.end(session.id)
    sql(kit, made.path, "UPDATE records SET sealed = ? WHERE kind = 'session' AND id = ?", first_blob, session.id)
    with pytest.raises(IntegrityError):
        sessions.live(session.id)


def test_a_revision_number_changed_alone_fails_to_open(made, kit, grant) -> None:
    sql(kit, made.path, "UPDATE records SET rev = 7 WHERE kind = 'grant' AND id = ?", grant.id)
    with pytest.raises(IntegrityError):
        Grants(made.vault).get(grant.id)


def test_a_flipped_bit_fails_to_open(made, kit, grant) -> None:
    rev, sealed = row(kit, made.path, "grant", grant.id)
    flipped = bytearray(sealed)
    flipped[len(flipped) // 2] ^= 0x01
    sql(kit, made.path, "UPDATE records SET sealed = ? WHERE kind = 'grant' AND id = ?", bytes(flipped), grant.id)
    with pytest.raises(IntegrityError, match="failed authentication"):
        Grants(made.vault).get(grant.id)


def test_a_truncated_blob_fails_to_open(made, kit, grant) -> None:
    sql(kit, made.path, "UPDATE records SET sealed = ? WHERE kind = 'grant' AND id = ?", b"\x01abc", grant.id)
    with pytest.raises(IntegrityError, match="malformed"):
        Grants(made.vault).get(grant.id)


def test_a_record_from_another_vault_under_the_same_id_fails_to_open(made, kit, tmp_path) -> None:
    other = kit.create_vault(kit.private_dir(tmp_path, "other") / "vault.db")
    try:
        SealedRecords(other.vault, "grant").insert({"id": OTHER_GRANT_ID, "label": "theirs"})
    finally:
        other.vault.close()
    rev, sealed = row(kit, other.path, "grant", OTHER_GRANT_ID)
    with kit.raw_db(made.path) as conn:
        conn.execute("INSERT INTO records (kind, id, rev, sealed) VALUES ('grant', ?, ?, ?)",
                     (OTHER_GRANT_ID, rev, sealed))
    with pytest.raises(IntegrityError):
        SealedRecords(made.vault, "grant").get(OTHER_GRANT_ID)


def test_tampering_with_records_is_also_caught_after_reopening(made, kit, grant) -> None:
    sql(kit, made.path, "UPDATE records SET id = ? WHERE kind = 'grant' AND id = ?", OTHER_GRANT_ID, grant.id)
    made.vault.close()
    vault = kit.open_unlocked(made.path, made.clock)
    try:
        with pytest.raises(IntegrityError):
            Grants(vault).list(include_inactive=True)
    finally:
        vault.close()
