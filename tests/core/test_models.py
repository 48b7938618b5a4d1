"""Validation of everything a user can type, and the credential model."""

from __future__ import annotations

import unicodedata
from types import MappingProxyType

import pytest

from aegis_tui.core.errors import UsageError
from aegis_tui.core.models import (
    RECORD_FORMAT,
    MAX_NAME_LENGTH,
    MAX_VALUE_BYTES,
    Credential,
    Kind,
    RotationState,
    Status,
    name_key,
    parse_duration,
    parse_expiry,
    parse_kind,
    parse_status,
    reference_candidates,
    validate_context,
    validate_free_text,
    validate_name,
    validate_tags,
    validate_value,
)

DAY = 86400.0
T0 = 1_750_000_000.0


# -- names ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["GitHub", "prod db (eu-west)", "a", "x" * MAX_NAME_LENGTH, "ключ API",
                                  "[bold]x", "evil[red]", "evil[/]", "a/b", "emoji 🔑", "with.dots_and-dashes",
                                  "a  b"])
def test_printable_names_are_accepted_unchanged(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty"),
        (" lead", "spaces"),
        ("trail ", "spaces"),
        ("\tlead", "spaces"),
        ("x" * (MAX_NAME_LENGTH + 1), "at most 128"),
        ("bell\x07", "control"),
        ("nul\x00", "control"),
        ("esc\x1b[31m", "control"),
        ("new\nline", "control"),
        ("del\x7f", "control"),
        ("zero\u200bwidth", "control"),
        ("bidi\u202eflip", "control"),
        ("line\u2028sep", "control"),
    ],
)
def test_bad_names_raise_usage_error(name: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        validate_name(name)


def test_names_are_nfc_normalised_so_lookalike_encodings_are_one_name() -> None:
    decomposed = unicodedata.normalize("NFD", "café")
    assert decomposed != "café"
    assert validate_name(decomposed) == "café"
    assert name_key(decomposed) == name_key("café")


def test_name_key_is_case_insensitive() -> None:
    assert name_key("GitHub") == name_key("github") == name_key("GITHUB")
    assert name_key("Straße") == name_key("STRASSE")  # casefold, not lower
    assert name_key("github") != name_key("gitlab")


# -- contexts, tags, free text -----------------------------------------------------------------
@pytest.mark.parametrize("context", ["", "personal", "acme/prod", "a.b/c_d/e-f"])
def test_valid_contexts_are_accepted_unchanged(context: str) -> None:
    assert validate_context(context) == context


@pytest.mark.parametrize("context", ["/lead", "trail/", "a//b", "sp ace", "-dash", "x" * 129, "ü"])
def test_invalid_contexts_raise_usage_error(context: str) -> None:
    with pytest.raises(UsageError, match="context"):
        validate_context(context)


def test_tags_are_trimmed_deduplicated_and_sorted() -> None:
    assert validate_tags(["prod", " ci ", "prod", "", "  ", "team:infra"]) == ("ci", "prod", "team:infra")


@pytest.mark.parametrize("tag", ["has space", "semi;colon", "x" * 65, "-lead", "ü"])
def test_invalid_tags_raise_usage_error(tag: str) -> None:
    with pytest.raises(UsageError, match="tag"):
        validate_tags([tag])


def test_notes_allow_newlines_and_tabs_but_other_fields_do_not() -> None:
    assert validate_free_text("line1\n\tline2", "notes") == "line1\n\tline2"
    with pytest.raises(UsageError, match="service must not contain control"):
        validate_free_text("a\nb", "service")
    with pytest.raises(UsageError, match="notes must not contain control"):
        validate_free_text("a\x1b[2Jb", "notes")


def test_free_text_length_limit() -> None:
    assert validate_free_text("x" * 10, "url", limit=10) == "x" * 10
    with pytest.raises(UsageError, match="at most 10"):
        validate_free_text("x" * 11, "url", limit=10)


# -- values --------------------------------------------------------------------------------------
def test_empty_value_is_refused() -> None:
    with pytest.raises(UsageError, match="empty"):
        validate_value(b"")


def test_value_size_limit_is_16_mib() -> None:
    assert len(validate_value(b"x" * MAX_VALUE_BYTES)) == MAX_VALUE_BYTES
    with pytest.raises(UsageError, match="16 MiB"):
        validate_value(b"x" * (MAX_VALUE_BYTES + 1))


# -- parsing ---------------------------------------------------------------------------------------
def test_every_kind_parses_from_its_value() -> None:
    assert [parse_kind(kind.value) for kind in Kind] == list(Kind)
    assert {kind.value for kind in Kind} == {"api_key", "access_token", "password", "connection_string",
                                             "ssh_key", "certificate", "totp", "secret"}


def test_unknown_kind_lists_the_choices() -> None:
    with pytest.raises(UsageError, match="api_key") as caught:
        parse_kind("apikey")
    assert "'apikey'" in str(caught.value)


def test_status_parses_known_values_and_refuses_unknown_ones() -> None:
    assert parse_status("revoked") is Status.REVOKED
    with pytest.raises(UsageError, match="unknown status"):
        parse_status("deleted")


@pytest.mark.parametrize(("raw", "expected"), [(None, None), ("", None), ("2027-03-31", "2027-03-31")])
def test_expiry_is_normalised_to_an_iso_date_or_none(raw: str | None, expected: str | None) -> None:
    assert parse_expiry(raw) == expected


@pytest.mark.parametrize("raw", ["31/03/2027", "2027-02-30", "tomorrow"])
def test_bad_expiry_raises_usage_error(raw: str) -> None:
    with pytest.raises(UsageError, match="not a date"):
        parse_expiry(raw)


@pytest.mark.parametrize(("raw", "seconds"), [("0", 0), ("30s", 30), ("30m", 1800), ("24h", 86400),
                                              ("7d", 604800), ("2w", 1209600), (" 5M ", 300)])
def test_durations_parse_to_seconds(raw: str, seconds: int) -> None:
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["", "h", "5", "-5m", "1.5h", "5y", "five m"])
def test_bad_durations_raise_usage_error(raw: str) -> None:
    with pytest.raises(UsageError, match="duration"):
        parse_duration(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("github", [(None, "github")]),
        ("aegis://github", [(None, "github")]),
        ("acme/db", [(None, "acme/db"), ("acme", "db")]),
        ("aegis://acme/prod/db", [(None, "acme/prod/db"), ("acme/prod", "db"), ("acme", "prod/db")]),
        ("bad context/db", [(None, "bad context/db")]),  # an invalid context is no reading
        ("evil[/]", [(None, "evil[/]")]),  # "evil[" is no valid context
        ("a/", [(None, "a/")]),
    ],
)
def test_references_are_read_whole_first_then_split_at_each_slash(raw: str, expected: list) -> None:
    assert reference_candidates(raw) == expected


@pytest.mark.parametrize("raw", ["", " lead", "aegis://", "bell\x07/x"])
def test_a_reference_with_no_valid_reading_raises_usage_error(raw: str) -> None:
    with pytest.raises(UsageError):
        reference_candidates(raw)


# -- the credential model ----------------------------------------------------------------------------
def full_credential() -> Credential:
    return Credential(
        id="abc", name="db", kind=Kind.CONNECTION_STRING, service="postgres", context="acme/prod",
        tags=("ci", "prod"), notes="multi\nline", url="https://db.example", expires="2027-03-31",
        rotation_days=90, overlap_seconds=3600, status=Status.EXPOSED,
        fields=MappingProxyType({"user": "admin"}), created_at=T0, updated_at=T0 + 1, rotated_at=T0 + 2,
        current_version=3,
    )


def test_credential_round_trips_through_its_sealed_record_and_json() -> None:
    import json

    credential = full_credential()
    record = json.loads(json.dumps(credential.to_record()))
    assert record[0] == RECORD_FORMAT and ["ci", "prod"] in record and {"user": "admin"} in record
    restored = Credential.from_record(record)
    assert restored == credential
    assert restored.kind is credential.kind and restored.status is credential.status


def test_a_record_missing_later_fields_decodes_with_their_defaults() -> None:
    record = full_credential().to_record()[:-4]  # as if written before the last four fields existed
    credential = Credential.from_record(record)
    assert credential.current_version == 1 and credential.rotated_at == 0.0
    assert dict(credential.rotation_policy) == {}  # a record from before policies: manual


@pytest.mark.parametrize("record", [[], [99, "x"], [RECORD_FORMAT, *range(40)]])
def test_an_unknown_record_format_is_refused(record: list[object]) -> None:
    with pytest.raises(ValueError):
        Credential.from_record(record)


def test_credential_fields_mapping_is_read_only() -> None:
    with pytest.raises(TypeError):
        full_credential().fields["user"] = "root"  # type: ignore[index]


def test_reference_includes_the_context_when_there_is_one() -> None:
    assert full_credential().reference == "aegis://acme/prod/db"
    assert Credential(id="x", name="github").reference == "aegis://github"


def test_rotation_state_without_a_period_is_none() -> None:
    assert Credential(id="x", name="n", created_at=T0).rotation(T0 + 1000 * DAY) == (RotationState.NONE, None)


@pytest.mark.parametrize(
    ("days_after", "state", "days_left"),
    [
        (0, RotationState.OK, 30),  # days left are whole days rounded up
        (16, RotationState.OK, 14),
        (16.5, RotationState.OK, 14),
        (17, RotationState.DUE, 13),
        (29.5, RotationState.DUE, 1),
        (30, RotationState.OVERDUE, 0),
        (45, RotationState.OVERDUE, -15),
    ],
)
def test_rotation_state_against_the_deadline(days_after: float, state: RotationState, days_left: int) -> None:
    credential = Credential(id="x", name="n", rotation_days=30, created_at=T0, rotated_at=T0)
    assert credential.rotation(T0 + days_after * DAY) == (state, days_left)


def test_rotation_deadline_counts_from_the_last_rotation() -> None:
    credential = Credential(id="x", name="n", rotation_days=30, created_at=T0, rotated_at=T0 + 25 * DAY)
    assert credential.rotation(T0 + 40 * DAY)[0] is RotationState.OK
