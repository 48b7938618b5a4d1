"""Parsing ``.env`` files, and the secret/placeholder/kind guesses made from them."""

from __future__ import annotations

import pytest

from aegis_tui.core.envfile import EnvEntry, guess_kind, parse_env
from aegis_tui.core.errors import UsageError


def as_dict(text: str) -> dict[str, str]:
    return {entry.key: entry.value for entry in parse_env(text)}


def test_plain_and_exported_assignments_are_read_and_comments_skipped() -> None:
    text = "# a comment\n\nA=1\nexport B=two\n   export   C=3\n  # indented comment\n"
    assert as_dict(text) == {"A": "1", "B": "two", "C": "3"}


def test_entries_remember_their_line_numbers() -> None:
    entries = parse_env("# c\nA=1\n\nB=2\n")
    assert [(entry.key, entry.line) for entry in entries] == [("A", 2), ("B", 4)]


def test_single_quotes_are_literal() -> None:
    assert as_dict("A='x\\ny $HOME # not a comment'") == {"A": "x\\ny $HOME # not a comment"}


def test_double_quotes_understand_escapes() -> None:
    assert as_dict('A="l1\\nl2\\tt\\"q\\\\ \\$x \\z"') == {"A": 'l1\nl2\tt"q\\ $x \\z'}


def test_unquoted_values_drop_trailing_comments_but_keep_inner_hashes() -> None:
    assert as_dict("A=abc # comment\nB=abc#def\nC=  spaced  \n") == {"A": "abc", "B": "abc#def", "C": "spaced"}


def test_text_after_a_closing_quote_is_ignored() -> None:
    assert as_dict("A='v' # trailing\nB=\"w\" trailing") == {"A": "v", "B": "w"}


def test_equals_signs_inside_values_are_kept() -> None:
    assert as_dict("URL=postgres://u:p@h/db?sslmode=require&x=1") == {
        "URL": "postgres://u:p@h/db?sslmode=require&x=1"
    }


def test_empty_values_and_dotted_keys_are_accepted() -> None:
    assert as_dict("EMPTY=\nspring.datasource.password=pw\n") == {"EMPTY": "", "spring.datasource.password": "pw"}


def test_crlf_line_endings_are_not_part_of_values() -> None:
    assert as_dict("A=1\r\nB='2'\r\n") == {"A": "1", "B": "2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A=1\nnot a pair\n", "line 2 is not KEY=VALUE"),
        ("1A=x", "line 1 is not KEY=VALUE"),
        ("A-B=x", "line 1 is not KEY=VALUE"),
        ("=x", "line 1 is not KEY=VALUE"),
        ("A=1\n\nA=2", "line 3: A is defined twice"),
        ("PASSWORD='hunter2-CANARY", "line 1: unterminated single quote"),
        ('PASSWORD="hunter2-CANARY', "line 1: unterminated double quote"),
    ],
)
def test_errors_name_the_line_but_never_the_value(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_env(text)
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value", "secret"),
    [
        ("GITHUB_TOKEN", "x", True),
        ("db_password", "x", True),
        ("STRIPE_SECRET_KEY", "x", True),
        ("SENTRY_DSN", "x", True),
        ("DATABASE_URL", "postgres://app:s3cret@db:5432/app", True),
        ("DATABASE_URL", "postgres://db:5432/app", False),
        ("PORT", "8080", False),
        ("DEBUG", "true", False),
    ],
)
def test_secret_looking_keys_and_urls_with_passwords_are_flagged(key: str, value: str, secret: bool) -> None:
    assert EnvEntry(key, value, 1).looks_secret is secret


@pytest.mark.parametrize("value", ["", "<your key here>", "${API_KEY}", "xxxx", "changeme", "TODO",
                                   "your-api-key", "****"])
def test_placeholders_are_recognised(value: str) -> None:
    assert EnvEntry("API_KEY", value, 1).is_placeholder


@pytest.mark.parametrize("value", ["sk_live_abc123", "xx", "hunter2"])
def test_real_values_are_not_placeholders(value: str) -> None:
    assert not EnvEntry("API_KEY", value, 1).is_placeholder


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("DATABASE_URL", "postgres://h/db", "connection_string"),
        ("CACHE", "redis://:pw@host:6379", "connection_string"),
        ("SENTRY_DSN", "https://k@sentry.io/1", "connection_string"),
        ("DB_PASSWORD", "x", "password"),
        ("SMTP_PASS", "x", "password"),
        ("GITHUB_TOKEN", "x", "access_token"),
        ("DEPLOY_SSH_PRIVATE_KEY", "x", "ssh_key"),
        ("JWT_PRIVATE_KEY", "x", "secret"),
        ("STRIPE_API_KEY", "x", "api_key"),
        ("SIGNING_KEY", "x", "api_key"),
        ("COOKIE_SALT", "x", "secret"),
    ],
)
def test_kind_is_guessed_from_the_key_and_the_value(key: str, value: str, kind: str) -> None:
    assert guess_kind(EnvEntry(key, value, 1)) == kind
