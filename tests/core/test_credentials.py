"""Credential operations: round trips, confidentiality on disk, names, rotation, revocation, destruction."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aegis_tui.core.credentials import CredentialFilter, Credentials
from aegis_tui.core.errors import ConflictError, NotFoundError, RefusedError, UnlockError, UsageError
from aegis_tui.core.models import Kind, RotationState, Status, VersionState
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault

DAY = 86400.0
HOUR = 3600.0

SSH_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACDummyDummyDummyDummyDummyDummyDummyDummyDummyAAAA\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
CERTIFICATE = (
    "-----BEGIN CERTIFICATE-----\r\n"
    "MIIBszCCAVmgAwIBAgIUDummyCertificateForTestsOnly0wCgYIKoZIzj0EAwIw\r\n"
    "-----END CERTIFICATE-----\r\n"
)
VALUES: dict[Kind, str | bytes] = {
    Kind.API_KEY: "sk_live_51HdummyAPIkey0000",
    Kind.ACCESS_TOKEN: "ghp_dummyAccessToken000000000000000000",
    Kind.PASSWORD: "pä$$ wörd with spaces & \"quotes\" 'n' \\slashes\\",
    Kind.CONNECTION_STRING: "postgres://app:s3cr%40t@db.internal:5432/app?sslmode=require",
    Kind.SSH_KEY: SSH_KEY,
    Kind.CERTIFICATE: CERTIFICATE,
    Kind.TOTP: "otpauth://totp/Example:alice%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DP&issuer=Example",
    Kind.SECRET: b"\x00\x01binary\xff\xfe\n\x00 value",
}


def reopen_unlocked(made, kit) -> Vault:  # type: ignore[no-untyped-def]
    made.vault.close()
    return kit.open_unlocked(made.path, made.clock)


# -- round trips ---------------------------------------------------------------------------------------------
def test_the_value_table_covers_every_kind() -> None:
    assert set(VALUES) == set(Kind)


@pytest.mark.parametrize("kind", list(Kind), ids=str)
def test_every_kind_round_trips_with_all_its_metadata(kind: Kind, made, kit) -> None:
    value = VALUES[kind]
    added = Credentials(made.vault).add(
        f"cred {kind}", Secret(value), kind=kind, service="Example Service", context="acme/prod",
        tags=["prod", "team:infra", "prod"], notes="first line\n\tsecond line — ünïcode ✓",
        url="https://example.invalid/login?next=/x", expires="2027-03-31", rotation_days=90,
        fields={"username": "alice", "account id": "12345", "region": "eu-west-1"},
    )
    vault = reopen_unlocked(made, kit)
    try:
        creds = Credentials(vault)
        found = creds.find(f"cred {kind}")
        assert found == added
        assert found.kind is kind
        assert (found.service, found.context, found.tags) == ("Example Service", "acme/prod", ("prod", "team:infra"))
        assert found.notes == "first line\n\tsecond line — ünïcode ✓"
        assert (found.url, found.expires, found.rotation_days) == ("https://example.invalid/login?next=/x",
                                                                   "2027-03-31", 90)
        assert dict(found.fields) == {"username": "alice", "account id": "12345", "region": "eu-west-1"}
        assert (found.status, found.current_version, found.created_at) == (Status.ACTIVE, 1, kit.START)
        assert found.reference == f"aegis://acme/prod/cred {kind}"
        expected = value if isinstance(value, bytes) else value.encode()
        assert creds.reveal(f"cred {kind}").reveal() == expected
    finally:
        vault.close()


def test_minimal_credential_gets_the_documented_defaults(creds) -> None:
    added = creds.add("bare", Secret("v"))
    assert (added.kind, added.service, added.context, added.tags, added.notes) == (Kind.SECRET, "", "", (), "")
    assert (added.url, added.expires, added.rotation_days, dict(added.fields)) == ("", None, None, {})
    assert added.overlap_seconds == 24 * 3600


def test_lookup_is_case_insensitive_and_returns_the_stored_spelling(creds) -> None:
    creds.add("GitHub", Secret("v"))
    assert creds.find("github").name == "GitHub"
    assert creds.find("GITHUB").name == "GitHub"
    assert creds.reveal("gItHuB").reveal_text() == "v"


def test_list_is_sorted_by_context_then_name_and_filters(creds) -> None:
    creds.add("zeta", Secret("v"), context="b", service="AWS")
    creds.add("Alpha", Secret("v"), context="b", kind=Kind.PASSWORD)
    creds.add("beta", Secret("v"), context="a/sub")
    creds.add("root", Secret("v"))
    creds.set_status("root", Status.EXPOSED)
    assert [c.name for c in creds.list()] == ["root", "beta", "Alpha", "zeta"]
    assert [c.name for c in creds.list(CredentialFilter(context="a"))] == ["beta"]
    assert [c.name for c in creds.list(CredentialFilter(service="aws"))] == ["zeta"]
    assert [c.name for c in creds.list(CredentialFilter(kind=Kind.PASSWORD))] == ["Alpha"]
    assert [c.name for c in creds.list(CredentialFilter(status=Status.EXPOSED))] == ["root"]


def test_references_resolve_by_name_context_and_url_form(creds) -> None:
    db = creds.add("db", Secret("v"), context="acme/prod")
    slashed = creds.add("team/db", Secret("w"))
    for reference in ("db", "acme/prod/db", "aegis://acme/prod/db", "DB"):
        assert creds.resolve(reference) == db, reference
    for reference in ("team/db", "aegis://team/db"):
        assert creds.resolve(reference) == slashed, reference
    for reference in ("acme/dev/db", "acme/db", "other/team/db"):
        with pytest.raises(NotFoundError, match="no credential matches"):
            creds.resolve(reference)


def test_missing_credential_is_not_found(creds) -> None:
    with pytest.raises(NotFoundError, match="no credential named 'ghost'"):
        creds.reveal("ghost")
    with pytest.raises(NotFoundError):
        creds.rotate("ghost", Secret("v"))


def test_every_read_is_audited_with_its_version_but_not_its_value(creds, made) -> None:
    creds.add("k", Secret("VALUE-CANARY-audit"))
    creds.reveal("k", purpose="env")
    entry = list(made.vault.audit.entries())[-1]
    assert (entry.operation, entry.outcome, entry.target) == ("read", "ok", "k")
    assert entry.detail == {"version": 1, "state": "current", "via": "env"}


# -- nothing readable on disk ------------------------------------------------------------------------------------
CANARIES = {
    "name": "CanaryName-3f9a1c",
    "service": "CanaryService-7b2e44",
    "notes": "CanaryNotes-c81d09 with more text",
    "tag": "canarytag-5e6f71",
    "field_key": "CanaryFieldKey-90ab12",
    "field_value": "CanaryFieldValue-a3c4d5",
    "context": "canaryctx-e7f8a9/prod",
    "url": "https://canary-url-b1c2d3.invalid/",
    "value": "CanaryValue-SECRET-0d1e2f3a4b5c",
}


def leaked(raw: bytes) -> list[str]:
    found = []
    for what, text in CANARIES.items():
        forms = {text.encode(), text.encode("utf-16-le"), text.encode("utf-16-be")}
        if what == "value":
            forms |= {text.encode().hex().encode(), text.encode().hex().upper().encode()}
        if any(form in raw for form in forms):
            found.append(what)
    return found


def test_no_credential_text_appears_in_the_vault_files_while_open_or_after_close(made, kit) -> None:
    creds = Credentials(made.vault)
    creds.add(CANARIES["name"], Secret(CANARIES["value"]), service=CANARIES["service"], notes=CANARIES["notes"],
              tags=[CANARIES["tag"]], fields={CANARIES["field_key"]: CANARIES["field_value"]},
              context=CANARIES["context"], url=CANARIES["url"])
    creds.reveal(CANARIES["name"])
    creds.rotate(CANARIES["name"], Secret(CANARIES["value"] + "-v2"))
    creds.reveal(CANARIES["name"], version=1)

    while_open = kit.file_bytes(made.path)
    assert "-wal" in while_open and len(while_open["-wal"]) > 0  # the check covers a live log
    for name, raw in while_open.items():
        assert leaked(raw) == [], name

    made.vault.close()
    after_close = kit.file_bytes(made.path)
    for name, raw in after_close.items():
        assert leaked(raw) == [], name

    vault = kit.open_unlocked(made.path)  # the canaries are there, just sealed
    try:
        assert Credentials(vault).reveal(CANARIES["name"].lower(), version=1).reveal_text() == CANARIES["value"]
    finally:
        vault.close()


def test_the_canary_check_itself_finds_text_in_clear(tmp_path: Path) -> None:
    raw = b"xx" + CANARIES["notes"].encode("utf-16-le") + CANARIES["value"].encode().hex().encode()
    assert leaked(raw) == ["notes", "value"]


# -- names --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("first", "second"), [("GitHub", "github"), ("github", "GITHUB"), ("Straße", "STRASSE"),
                                              ("café", "cafe\u0301")])
def test_duplicate_names_raise_conflict_and_change_nothing(first: str, second: str, made, kit) -> None:
    creds = Credentials(made.vault)
    creds.add(first, Secret("first value"))
    before = kit.dump_tables(made.path)
    with pytest.raises(ConflictError, match="already exists"):
        creds.add(second, Secret("second value"))
    assert kit.dump_tables(made.path) == before
    assert creds.reveal(second).reveal_text() == "first value"


def test_the_same_name_in_another_context_is_still_a_duplicate(creds) -> None:
    creds.add("db", Secret("v"), context="acme/prod")
    with pytest.raises(ConflictError):
        creds.add("db", Secret("w"), context="acme/dev")


@pytest.mark.parametrize(
    "name",
    ["tab\there", "bell\x07", "nul\x00x", "esc\x1b[2J", "new\nline", "zero\u200bwidth", "rtl\u202eoverride",
     " leading", "trailing ", "", "x" * 129],
    ids=["tab", "bell", "nul", "ansi", "newline", "zero-width", "bidi", "leading-space", "trailing-space", "empty",
         "too-long"],
)
def test_bad_names_raise_usage_error_and_store_nothing(name: str, made, kit) -> None:
    before = kit.dump_tables(made.path)
    with pytest.raises(UsageError):
        Credentials(made.vault).add(name, Secret("v"))
    assert kit.dump_tables(made.path) == before


@pytest.mark.parametrize("name", ["evil[/]", "[bold]x", "[bold]x[/bold]", "a/b", "[link=https://x]click", "$(rm -rf ~)", "`id`", "x" * 128,
                                  "%s%n", "Robert'); DROP TABLE credentials;--", "😀 emoji name"])
def test_names_with_markup_or_shell_syntax_round_trip_literally(name: str, made, kit) -> None:
    Credentials(made.vault).add(name, Secret("v"))
    vault = reopen_unlocked(made, kit)
    try:
        creds = Credentials(vault)
        assert [c.name for c in creds.list()] == [name]
        assert creds.find(name).name == name
        entry = list(vault.audit.entries())[-2]  # the add, before this unlock
        assert (entry.operation, entry.target) == ("add", name)
    finally:
        vault.close()


@pytest.mark.parametrize(
    ("field", "bad"),
    [("service", "a\nb"), ("url", "x\x00"), ("context", "bad context"), ("tags", ["has space"]),
     ("rotation_days", 0), ("rotation_days", -1), ("fields", {"k": "v\x1b"}), ("notes", "x" * 10_001)],
)
def test_bad_metadata_raises_usage_error_and_stores_nothing(field: str, bad: object, made, kit) -> None:
    before = kit.dump_tables(made.path)
    with pytest.raises(UsageError):
        Credentials(made.vault).add("n", Secret("v"), **{field: bad})  # type: ignore[arg-type]
    assert kit.dump_tables(made.path) == before


# -- values --------------------------------------------------------------------------------------------------------------
def test_a_10_mb_value_round_trips(made, kit) -> None:
    big = os.urandom(10 * 1024 * 1024)
    Credentials(made.vault).add("big", Secret(big))
    vault = reopen_unlocked(made, kit)
    try:
        assert Credentials(vault).reveal("big").reveal() == big
    finally:
        vault.close()


def test_an_empty_value_is_refused_on_add_and_rotate(made, kit) -> None:
    creds = Credentials(made.vault)
    with pytest.raises(UsageError, match="empty"):
        creds.add("k", Secret(""))
    with pytest.raises(NotFoundError):
        creds.find("k")
    creds.add("k", Secret("v"))
    before = kit.dump_tables(made.path)
    with pytest.raises(UsageError, match="empty"):
        creds.rotate("k", Secret(b""))
    assert kit.dump_tables(made.path) == before


def test_a_bad_totp_seed_is_refused_when_added(creds) -> None:
    with pytest.raises(UsageError):
        creds.add("otp", Secret("not base32 !!"), kind=Kind.TOTP)
    creds.add("otp", Secret("JBSWY3DPEHPK3PXPJBSWY3DP"), kind=Kind.TOTP)


# -- rotation ---------------------------------------------------------------------------------------------------------------
def states(creds: Credentials, name: str) -> list[tuple[int, VersionState]]:
    return [(info.version, info.state) for info in creds.versions(name)]


def test_rotate_keeps_the_previous_version_readable_inside_the_overlap_window(made) -> None:
    creds = Credentials(made.vault)
    creds.add("api", Secret("v1-value"))
    made.clock.advance(DAY)
    rotated = creds.rotate("api", Secret("v2-value"), overlap_seconds=int(2 * HOUR))
    assert (rotated.current_version, rotated.rotated_at) == (2, made.clock.now)
    assert states(creds, "api") == [(1, VersionState.PREVIOUS), (2, VersionState.CURRENT)]
    assert creds.versions("api")[0].retires_at == made.clock.now + 2 * HOUR
    assert creds.versions("api")[1].retires_at is None
    assert creds.reveal("api").reveal_text() == "v2-value"
    assert creds.reveal("api", version=1).reveal_text() == "v1-value"

    made.clock.advance(2 * HOUR - 1)
    assert states(creds, "api")[0] == (1, VersionState.PREVIOUS)
    made.clock.advance(1)  # exactly at retires_at
    assert states(creds, "api") == [(1, VersionState.RETIRED), (2, VersionState.CURRENT)]
    with pytest.raises(RefusedError, match="version 1 of 'api' is retired"):
        creds.reveal("api", version=1)  # the overlap ended: nothing should still use it
    refused = list(made.vault.audit.entries())[-1]
    assert (refused.outcome, refused.detail["reason"]) == ("denied", "retired")
    assert creds.reveal("api", version=1, allow_retired=True).reveal_text() == "v1-value"  # history, on purpose
    entry = list(made.vault.audit.entries())[-1]
    assert (entry.risk, entry.flagged, entry.detail["state"]) == ("high", True, "retired")


def test_an_expired_credential_is_refused_and_the_refusal_audited(made) -> None:
    creds = Credentials(made.vault)
    creds.add("dated", Secret("dated-value"), expires="2025-06-20")  # the test clock starts on 2025-06-15
    assert creds.reveal("dated").reveal_text() == "dated-value"
    made.clock.advance(5 * DAY)  # 2025-06-20: the last valid day
    assert creds.reveal("dated").reveal_text() == "dated-value"
    made.clock.advance(DAY)
    with pytest.raises(RefusedError, match="'dated' expired on 2025-06-20"):
        creds.reveal("dated")
    refused = list(made.vault.audit.entries())[-1]
    assert (refused.operation, refused.outcome, refused.detail["reason"]) == ("read", "denied", "expired")
    assert creds.reveal("dated", allow_expired=True).reveal_text() == "dated-value"  # for the rotation hook


def test_rotate_uses_the_credentials_default_overlap_of_a_day(made) -> None:
    creds = Credentials(made.vault)
    creds.add("api", Secret("v1"))
    creds.rotate("api", Secret("v2"))
    assert creds.versions("api")[0].retires_at == made.clock.now + DAY


def test_a_second_rotation_retires_the_older_previous_at_once(made) -> None:
    creds = Credentials(made.vault)
    creds.add("api", Secret("v1"))
    creds.rotate("api", Secret("v2"))
    made.clock.advance(HOUR)
    creds.rotate("api", Secret("v3"))
    assert states(creds, "api") == [(1, VersionState.RETIRED), (2, VersionState.PREVIOUS), (3, VersionState.CURRENT)]
    infos = creds.versions("api")
    assert infos[0].retires_at == made.clock.now
    assert infos[1].retires_at == made.clock.now + DAY
    assert [creds.reveal("api", version=n, allow_retired=True).reveal_text() for n in (1, 2, 3)] == ["v1", "v2", "v3"]


def test_rotation_with_zero_overlap_retires_the_old_version_immediately(made) -> None:
    creds = Credentials(made.vault)
    creds.add("api", Secret("v1"))
    creds.rotate("api", Secret("v2"), overlap_seconds=0)
    assert states(creds, "api") == [(1, VersionState.RETIRED), (2, VersionState.CURRENT)]


def test_negative_overlap_is_refused(made, kit) -> None:
    creds = Credentials(made.vault)
    creds.add("api", Secret("v1"))
    before = kit.dump_tables(made.path)
    with pytest.raises(UsageError, match="negative"):
        creds.rotate("api", Secret("v2"), overlap_seconds=-1)
    assert kit.dump_tables(made.path) == before


def test_rotating_keeps_the_metadata_and_is_audited(made) -> None:
    creds = Credentials(made.vault)
    added = creds.add("api", Secret("v1"), service="svc", tags=["t"], fields={"k": "v"})
    rotated = creds.rotate("api", Secret("v2"), overlap_seconds=60)
    assert rotated._replace(current_version=1, rotated_at=added.rotated_at, updated_at=added.updated_at) == added
    entry = list(made.vault.audit.entries())[-1]
    assert (entry.operation, entry.target, entry.detail) == ("rotate", "api", {"version": 2, "overlap_seconds": 60})


def test_asking_for_a_version_that_does_not_exist_is_not_found(creds) -> None:
    creds.add("api", Secret("v1"))
    with pytest.raises(NotFoundError, match="no version 2"):
        creds.reveal("api", version=2)


def test_rotating_an_exposed_credential_makes_it_active_again(creds) -> None:
    creds.add("api", Secret("v1"))
    assert creds.set_status("api", Status.EXPOSED).status is Status.EXPOSED
    assert creds.rotate("api", Secret("v2")).status is Status.ACTIVE


@pytest.mark.parametrize(
    ("days", "state"),
    [(0, RotationState.OK), (15, RotationState.OK), (17, RotationState.DUE), (29, RotationState.DUE),
     (30, RotationState.OVERDUE), (100, RotationState.OVERDUE)],
)
def test_rotation_status_follows_the_clock(days: int, state: RotationState, made) -> None:
    creds = Credentials(made.vault)
    creds.add("api", Secret("v1"), rotation_days=30)
    made.clock.advance(days * DAY)
    assert creds.find("api").rotation(made.clock())[0] is state


def test_rotating_resets_an_overdue_rotation_to_ok(made) -> None:
    creds = Credentials(made.vault)
    creds.add("api", Secret("v1"), rotation_days=30)
    creds.add("never", Secret("v1"))
    made.clock.advance(45 * DAY)
    assert creds.find("api").rotation(made.clock())[0] is RotationState.OVERDUE
    creds.rotate("api", Secret("v2"))
    assert creds.find("api").rotation(made.clock()) == (RotationState.OK, 30)
    assert creds.find("never").rotation(made.clock()) == (RotationState.NONE, None)


# -- revocation ----------------------------------------------------------------------------------------------------------
def test_revoke_retires_every_version_and_refuses_reads_with_a_denied_entry(made) -> None:
    creds = Credentials(made.vault)
    creds.add("api", Secret("v1"))
    creds.rotate("api", Secret("v2"))  # v1 would otherwise still be "previous" for a day
    made.clock.advance(60)
    revoked = creds.set_status("api", Status.REVOKED, reason="leaked in a log")
    assert revoked.status is Status.REVOKED
    assert states(creds, "api") == [(1, VersionState.RETIRED), (2, VersionState.RETIRED)]
    assert all(info.retires_at == made.clock.now for info in creds.versions("api"))
    entry = list(made.vault.audit.entries())[-1]
    assert (entry.operation, entry.risk, entry.detail) == ("revoke", "high",
                                                           {"previous": "active", "reason": "leaked in a log"})

    for version in (None, 1, 2):
        count = len(list(made.vault.audit.entries()))
        with pytest.raises(RefusedError, match="revoked"):
            creds.reveal("api", version=version)
        entries = list(made.vault.audit.entries())
        assert len(entries) == count + 1
        assert (entries[-1].operation, entries[-1].outcome, entries[-1].flagged) == ("read", "denied", True)
        assert entries[-1].detail["reason"] == "revoked"
    assert made.vault.audit.verify().ok


def test_a_revoked_credential_cannot_be_rotated(made, kit) -> None:
    creds = Credentials(made.vault)
    creds.add("api", Secret("v1"))
    creds.set_status("api", Status.REVOKED)
    before = kit.dump_tables(made.path)
    with pytest.raises(RefusedError, match="revoked"):
        creds.rotate("api", Secret("v2"))
    assert kit.dump_tables(made.path) == before


def test_revocation_survives_a_reopen(made, kit) -> None:
    Credentials(made.vault).add("api", Secret("v1"))
    Credentials(made.vault).set_status("api", Status.REVOKED)
    vault = reopen_unlocked(made, kit)
    try:
        with pytest.raises(RefusedError):
            Credentials(vault).reveal("api")
    finally:
        vault.close()


# -- destruction ------------------------------------------------------------------------------------------------------------
def test_destroy_removes_rows_and_leaves_no_sealed_bytes_in_the_db_or_wal(made, kit) -> None:
    creds = Credentials(made.vault)
    creds.add("keep", Secret("keep-value"))
    doomed = creds.add("doomed", Secret("DoomedValue-CANARY-" + "x" * 6000))  # spills onto overflow pages
    creds.rotate("doomed", Secret("DoomedValue-CANARY-v2"))
    with kit.raw_db(made.path) as conn:
        blobs = [row[0] for row in conn.execute("SELECT sealed FROM versions WHERE credential_id = ?", (doomed.id,))]
        blobs += [row[0] for row in conn.execute("SELECT sealed FROM credentials WHERE id = ?", (doomed.id,))]
    assert len(blobs) == 3
    present = b"".join(kit.file_bytes(made.path).values())
    assert all(blob[13:45] in present for blob in blobs)  # the check below can see them

    destroyed = creds.destroy("DOOMED")
    assert destroyed.id == doomed.id
    entry = list(made.vault.audit.entries())[-1]
    assert (entry.operation, entry.target, entry.detail) == ("destroy", "doomed", {"versions": 2})
    with kit.raw_db(made.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM versions WHERE credential_id = ?", (doomed.id,)).fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM credentials WHERE id = ?", (doomed.id,)).fetchone() == (0,)
    files = kit.file_bytes(made.path)
    assert len(files.get("-wal", b"")) == 0
    for name, raw in files.items():
        assert b"DoomedValue-CANARY" not in raw, name
        for blob in blobs:
            assert blob[13:45] not in raw, name  # 32 bytes of ciphertext: gone, not just unlinked

    with pytest.raises(NotFoundError):
        creds.reveal("doomed")
    with pytest.raises(NotFoundError):
        creds.versions("doomed")
    assert [c.name for c in creds.list()] == ["keep"]
    assert creds.reveal("keep").reveal_text() == "keep-value"
    assert made.vault.audit.verify().ok

    made.vault.close()
    for name, raw in kit.file_bytes(made.path).items():
        assert all(blob[13:45] not in raw for blob in blobs), name


def test_a_destroyed_name_can_be_added_again(creds) -> None:
    creds.add("api", Secret("old"))
    creds.destroy("api")
    creds.add("api", Secret("new"))
    assert creds.reveal("api").reveal_text() == "new"
    assert [info.version for info in creds.versions("api")] == [1]


def test_credential_operations_need_an_unlocked_vault(made, kit) -> None:
    Credentials(made.vault).add("api", Secret("v"))
    made.vault.lock()
    creds = Credentials(made.vault)
    before = kit.dump_tables(made.path)
    for attempt in (lambda: creds.reveal("api"), lambda: creds.list(), lambda: creds.add("x", Secret("v")),
                    lambda: creds.rotate("api", Secret("w")), lambda: creds.destroy("api"),
                    lambda: creds.set_status("api", Status.REVOKED)):
        with pytest.raises(UnlockError, match="locked"):
            attempt()
    assert kit.dump_tables(made.path) == before
