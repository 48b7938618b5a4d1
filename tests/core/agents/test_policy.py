"""The policy shared by the broker and the command line: what a session sees (outside
its context a credential does not exist, with exactly a missing name's message), which
listing filters are valid, which credential git gets, and which credentials may not be
handed out at all (revoked, expired)."""

from __future__ import annotations

import pytest

from aegis_tui.core.agents.policy import (
    check_usable,
    git_location,
    list_visible,
    parse_filter,
    resolve_git,
    resolve_visible,
    visible,
)
from aegis_tui.core.agents.sessions import Sessions
from aegis_tui.core.credentials import CredentialFilter, Credentials
from aegis_tui.core.errors import NotFoundError, RefusedError, UsageError
from aegis_tui.core.gitcred import GitRequest
from aegis_tui.core.models import Kind, Status
from aegis_tui.core.secret import Secret

HOUR = 3600


@pytest.fixture
def stock(made):  # type: ignore[no-untyped-def]
    creds = Credentials(made.vault)
    creds.add("dev-db", Secret("dev_db_value_000001"), service="postgres", context="acme/dev",
              url="https://db.acme.dev")
    creds.add("prod-db", Secret("prod_db_value_00002"), service="postgres", context="acme/prod")
    creds.add("gh-acme", Secret("ghp_acme_value_00003"), kind=Kind.ACCESS_TOKEN, service="github",
              context="acme/dev", url="https://github.com/acme")
    creds.add("gh-personal", Secret("ghp_mine_value_00004"), kind=Kind.ACCESS_TOKEN, service="github",
              context="personal", url="https://github.com")
    creds.add("legacy", Secret("legacy_value_000005"), context="acme-old")
    creds.add("rootless", Secret("root_value_00000006"), context="")
    return creds


def session_in(made, context: str):  # type: ignore[no-untyped-def]
    return Sessions(made.vault).start(context, HOUR)[0]


# -- visibility ----------------------------------------------------------------------------------------------
def test_without_a_session_everything_is_visible(made, stock) -> None:
    names = {c.name for c in list_visible(stock, None)}
    assert names == {"dev-db", "prod-db", "gh-acme", "gh-personal", "legacy", "rootless"}
    assert all(visible(c, None) for c in stock.list())


@pytest.mark.parametrize(("context", "expected"), [
    ("acme", {"dev-db", "prod-db", "gh-acme"}),
    ("acme/dev", {"dev-db", "gh-acme"}),
    ("acme/prod", {"prod-db"}),
    ("personal", {"gh-personal"}),
    ("", {"dev-db", "prod-db", "gh-acme", "gh-personal", "legacy", "rootless"}),
    ("nowhere", set()),
])
def test_a_session_sees_only_its_context_and_below(made, stock, context: str, expected: set[str]) -> None:
    session = session_in(made, context)
    assert {c.name for c in list_visible(stock, session)} == expected


def test_a_listing_filter_applies_on_top_of_the_session(made, stock) -> None:
    session = session_in(made, "acme")
    found = list_visible(stock, session, parse_filter({"service": "postgres"}))
    assert [c.name for c in found] == ["dev-db", "prod-db"]
    assert list_visible(stock, session, parse_filter({"context": "personal"})) == []


def test_a_session_resolves_what_it_sees_by_name_and_reference(made, stock) -> None:
    session = session_in(made, "acme/dev")
    assert resolve_visible(stock, "dev-db", session).name == "dev-db"
    assert resolve_visible(stock, "acme/dev/dev-db", session).name == "dev-db"
    assert resolve_visible(stock, "aegis://acme/dev/gh-acme", session).name == "gh-acme"


@pytest.mark.parametrize("reference", ["prod-db", "acme/prod/prod-db", "aegis://acme/prod/prod-db"])
def test_outside_its_context_a_credential_is_not_found_with_a_missing_names_exact_message(
        made, stock, reference: str) -> None:
    session = session_in(made, "acme/dev")
    with pytest.raises(NotFoundError) as hidden:
        resolve_visible(stock, reference, session)
    stock.destroy("prod-db")
    with pytest.raises(NotFoundError) as missing:
        resolve_visible(stock, reference, None)
    assert str(hidden.value) == str(missing.value)
    assert type(hidden.value) is type(missing.value)


def test_a_reference_in_the_wrong_context_is_not_found(made, stock) -> None:
    with pytest.raises(NotFoundError, match="no credential matches"):
        resolve_visible(stock, "acme/prod/dev-db", None)


# -- filters ---------------------------------------------------------------------------------------------------
def test_parse_filter_builds_the_filter_and_ignores_empty_values(made) -> None:
    assert parse_filter({}) == CredentialFilter()
    assert parse_filter({"context": "", "service": None, "status": "", "kind": None}) == CredentialFilter()
    found = parse_filter({"context": "acme/dev", "service": "github", "status": "exposed", "kind": "api_key"})
    assert found == CredentialFilter(context="acme/dev", service="github", status=Status.EXPOSED,
                                     kind=Kind.API_KEY)


@pytest.mark.parametrize("args", [{"context": "a//b"}, {"status": "bogus"}, {"kind": "nuclear-code"},
                                  {"context": "../etc"}])
def test_parse_filter_refuses_invalid_values(args: dict[str, str]) -> None:
    with pytest.raises(UsageError):
        parse_filter(args)


# -- usable or not ---------------------------------------------------------------------------------------------
def test_an_active_credential_without_expiry_is_usable(made, stock) -> None:
    check_usable(stock.find("dev-db"), made.clock())


def test_an_exposed_credential_is_still_usable(made, stock) -> None:
    stock.set_status("dev-db", Status.EXPOSED, reason="pasted in chat")
    check_usable(stock.find("dev-db"), made.clock())


def test_a_revoked_credential_is_refused(made, stock) -> None:
    stock.set_status("dev-db", Status.REVOKED)
    with pytest.raises(RefusedError, match="'dev-db' is revoked"):
        check_usable(stock.find("dev-db"), made.clock())


@pytest.mark.parametrize(("expires", "usable"), [("2025-06-14", False), ("2020-01-01", False),
                                                 ("2025-06-15", True), ("2025-06-16", True)])
def test_a_credential_past_its_expiry_date_is_refused(made, stock, expires: str, usable: bool) -> None:
    # the clock stands at 2025-06-15 (UTC): the expiry day itself is still usable
    stock.edit("dev-db", expires=expires)
    credential = stock.find("dev-db")
    if usable:
        check_usable(credential, made.clock())
    else:
        with pytest.raises(RefusedError, match=f"expired on {expires}"):
            check_usable(credential, made.clock())


# -- git ------------------------------------------------------------------------------------------------------
def test_git_gets_the_credential_whose_url_matches_best(made, stock) -> None:
    assert resolve_git(stock, None, GitRequest("https", "github.com", "acme/repo.git", "")).name == "gh-acme"
    assert resolve_git(stock, None, GitRequest("https", "github.com", "other/repo.git", "")).name == "gh-personal"
    assert resolve_git(stock, None, GitRequest("https", "db.acme.dev", "", "")).name == "dev-db"


def test_git_only_gets_a_credential_the_session_sees(made, stock) -> None:
    request = GitRequest("https", "github.com", "acme/repo.git", "")
    assert resolve_git(stock, session_in(made, "personal"), request).name == "gh-personal"
    assert resolve_git(stock, session_in(made, "acme"), request).name == "gh-acme"
    with pytest.raises(NotFoundError, match="no credential for https://github.com/acme/repo.git"):
        resolve_git(stock, session_in(made, "acme/prod"), request)


def test_git_without_any_matching_url_is_not_found_naming_the_location(made, stock) -> None:
    request = GitRequest("https", "gitlab.example", "group/project", "")
    assert git_location(request) == "https://gitlab.example/group/project"
    with pytest.raises(NotFoundError, match="no credential for https://gitlab.example/group/project"):
        resolve_git(stock, None, request)
