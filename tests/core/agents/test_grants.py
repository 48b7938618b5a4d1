"""Access grants: what a grant covers (one credential or a selector, in a context, for a
session or standing, for some scopes), how it runs out (uses, expiry, revocation), which
grant wins when several match, and the cache a broker relies on staying true when
another connection to the same vault file changes the grants."""

from __future__ import annotations

import pytest

from aegis_tui.core.agents.grants import INJECT, REVEAL, Use, Grant, Grants, GrantSpentError
from aegis_tui.core.agents.sessions import Sessions
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import NotFoundError, UsageError
from aegis_tui.core.models import Credential, Kind
from aegis_tui.core.secret import Secret

ANY_COMMAND = Use(INJECT, ("deploy", "--now"), "/usr/bin/deploy", "/work/app")

HOUR = 3600.0
SESSION_A = "as_00000000000000aa"
SESSION_B = "as_00000000000000bb"


@pytest.fixture
def stock(made) -> dict[str, Credential]:  # type: ignore[no-untyped-def]
    creds = Credentials(made.vault)
    return {
        "gh": creds.add("gh-token", Secret("ghp_test_token_000001"), kind=Kind.ACCESS_TOKEN, service="GitHub",
                        context="acme/dev", tags=["ci", "deploy"]),
        "gh-prod": creds.add("gh-prod", Secret("ghp_test_token_000002"), service="github", context="acme/prod",
                             tags=["deploy"]),
        "stripe": creds.add("stripe", Secret("sk_test_stripe_000003"), service="stripe", context="acme/dev",
                            tags=["payments"]),
        "old": creds.add("old-acme", Secret("old_acme_value_000004"), service="github", context="acme-old",
                         tags=["ci"]),
        "mine": creds.add("personal", Secret("personal_value_000005"), service="github", context="", tags=["ci"]),
    }


def operations(vault) -> list[str]:  # type: ignore[no-untyped-def]
    return [entry.operation for entry in vault.audit.entries()]


def covered(grant: Grant, credentials: dict[str, Credential], now: float, session: str | None = None,
            scopes: tuple[str, ...] = ()) -> set[str]:
    return {key for key, c in credentials.items() if grant.covers(c, session, scopes, now, ANY_COMMAND)}


# -- creating -----------------------------------------------------------------------------------------------
def test_a_grant_for_a_credential_takes_its_name_and_context_and_is_audited(made, stock) -> None:
    grant = Grants(made.vault).create(credential=stock["gh"], scopes=["repo:push", "repo:read", "repo:push"],
                                      uses=3, ttl_seconds=HOUR, reason="release 1.2")
    assert grant.id.startswith("gr_") and len(grant.id) == 19
    assert (grant.label, grant.credential_id, grant.selector) == ("gh-token", stock["gh"].id, "")
    assert (grant.context, grant.session_id, grant.scopes) == ("acme/dev", None, ("repo:push", "repo:read"))
    assert (grant.uses_left, grant.expires_at, grant.created_at) == (3, made.clock() + HOUR, made.clock())
    assert grant.reason == "release 1.2" and "pytest" in grant.created_by
    assert grant.state(made.clock()) == "active"
    assert Grants(made.vault).get(grant.id) == grant
    entry = list(made.vault.audit.entries())[-1]
    assert (entry.operation, entry.target, entry.context) == ("grant.create", "gh-token", "acme/dev")
    assert entry.detail == {"grant": grant.id, "uses": 3, "ttl_seconds": HOUR,
                            "scopes": ["repo:push", "repo:read"], "session": None, "rights": ["inject"],
                            "bound_to": "any command", "cwd": None}


def test_a_grant_survives_reopening_the_vault(made, stock, kit) -> None:
    grant = Grants(made.vault).create(selector="tag:ci", context="acme", scopes=["a:b"], uses=2,
                                      session_id=SESSION_A, ttl_seconds=60, created_by="the app")
    made.vault.close()
    vault = kit.open_unlocked(made.path, made.clock)
    try:
        assert Grants(vault).get(grant.id) == grant
        assert Grants(vault).get(grant.id).created_by == "the app"
    finally:
        vault.close()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "either one credential or a selector"),
    ({"selector": "service:github", "with_credential": True}, "either one credential or a selector"),
    ({"selector": "team:infra"}, "service:NAME or tag:NAME"),
    ({"selector": "service:"}, "service:NAME or tag:NAME"),
    ({"selector": "tag:" + "x" * 129}, "service:NAME or tag:NAME"),
    ({"with_credential": True, "uses": 0}, "positive number"),
    ({"with_credential": True, "uses": -2}, "positive number"),
    ({"with_credential": True, "ttl_seconds": 0}, "duration must be positive"),
    ({"with_credential": True, "ttl_seconds": -5.0}, "duration must be positive"),
    ({"with_credential": True, "scopes": ["repo push"]}, "scope"),
    ({"with_credential": True, "scopes": ["-leading"]}, "scope"),
    ({"with_credential": True, "scopes": ["x" * 65]}, "scope"),
    ({"selector": "tag:ci", "context": "acme//dev"}, "context"),
    ({"with_credential": True, "reason": "bad\x1b[2J"}, "reason"),
])
def test_invalid_grants_are_refused_and_nothing_is_written(made, stock, kit, kwargs: dict, message: str) -> None:
    before = kit.dump_tables(made.path)
    args = dict(kwargs)
    if args.pop("with_credential", False):
        args["credential"] = stock["gh"]
    with pytest.raises(UsageError, match=message):
        Grants(made.vault).create(**args)
    assert kit.dump_tables(made.path) == before


@pytest.mark.parametrize("raw", ["", "gr_123", "as_0123456789abcdef", "gr_0123456789ABCDEF", "gr_0123456789abcdez"])
def test_a_malformed_grant_id_is_a_usage_error(made, raw: str) -> None:
    with pytest.raises(UsageError, match="gr_0123456789abcdef"):
        Grants(made.vault).get(raw)
    with pytest.raises(UsageError):
        Grants(made.vault).revoke(raw)


def test_an_unknown_grant_is_not_found(made) -> None:
    with pytest.raises(NotFoundError, match="no grant gr_0123456789abcdef"):
        Grants(made.vault).get("gr_0123456789abcdef")
    with pytest.raises(NotFoundError):
        Grants(made.vault).revoke("gr_0123456789abcdef")


# -- what a grant covers --------------------------------------------------------------------------------------
def test_a_credential_grant_covers_that_credential_only(made, stock) -> None:
    grant = Grants(made.vault).create(credential=stock["gh"])
    assert covered(grant, stock, made.clock()) == {"gh"}


def test_a_service_selector_covers_that_service_case_insensitively_within_its_context(made, stock) -> None:
    grant = Grants(made.vault).create(selector="service:GITHUB", context="acme")
    assert grant.label == "service:GITHUB"
    assert covered(grant, stock, made.clock()) == {"gh", "gh-prod"}  # not acme-old, not the root context


def test_a_tag_selector_covers_credentials_with_that_tag_in_its_context(made, stock) -> None:
    grants = Grants(made.vault)
    assert covered(grants.create(selector="tag:ci", context="acme"), stock, made.clock()) == {"gh"}
    assert covered(grants.create(selector="tag:ci"), stock, made.clock()) == {"gh", "old", "mine"}
    assert covered(grants.create(selector="tag:deploy", context="acme/prod"), stock, made.clock()) == {"gh-prod"}
    assert covered(grants.create(selector="tag:CI"), stock, made.clock()) == set()  # tags match exactly


def test_a_selector_covers_credentials_added_after_the_grant(made, stock) -> None:
    grants = Grants(made.vault)
    grant = grants.create(selector="tag:ci", context="acme")
    late = Credentials(made.vault).add("late", Secret("late_value_00000006"), context="acme/qa", tags=["ci"])
    assert grants.find(late, None, (), ANY_COMMAND) == grant


def test_a_credential_grant_narrowed_to_a_subcontext_does_not_cover_it_outside(made, stock) -> None:
    # a credential grant for a credential that later moves out of the grant's context
    grant = Grants(made.vault).create(credential=stock["gh"])
    moved = Credentials(made.vault).edit("gh-token", context="personal")
    assert not grant.covers(moved, None, (), made.clock(), ANY_COMMAND)
    assert Grants(made.vault).find(moved, None, (), ANY_COMMAND) is None


@pytest.mark.parametrize(("asked", "expected"), [
    ((), True), (("repo:read",), True), (("repo:read", "repo:push"), True),
    (("admin",), False), (("repo:read", "admin"), False), (("repo",), False),
])
def test_a_scoped_grant_covers_requests_naming_only_its_scopes(made, stock, asked, expected) -> None:
    grant = Grants(made.vault).create(credential=stock["gh"], scopes=["repo:push", "repo:read"])
    assert grant.covers(stock["gh"], None, asked, made.clock(), ANY_COMMAND) is expected
    assert (Grants(made.vault).find(stock["gh"], None, asked, ANY_COMMAND) == grant) is expected


def test_a_grant_without_scopes_covers_any_scopes(made, stock) -> None:
    grant = Grants(made.vault).create(credential=stock["gh"])
    assert grant.covers(stock["gh"], None, ("admin", "repo:delete"), made.clock(), ANY_COMMAND)


# -- running out -----------------------------------------------------------------------------------------------
def test_a_once_grant_covers_one_use_then_is_used_up(made, stock) -> None:
    grants = Grants(made.vault)
    grant = grants.create(credential=stock["gh"], uses=1)
    found = grants.find(stock["gh"], None, (), ANY_COMMAND)
    assert found == grant
    with made.vault.store.transaction():
        used = grants.consume(found)
    assert used.uses_left == 0 and used.state(made.clock()) == "used"
    assert grants.get(grant.id).uses_left == 0
    assert grants.find(stock["gh"], None, (), ANY_COMMAND) is None
    with pytest.raises(GrantSpentError, match="no longer active"):
        grants.consume(found)  # a stale copy does not get a second use
    assert grants.list() == [] and grants.list(include_inactive=True) == [used]


def test_an_n_use_grant_counts_down_to_zero(made, stock) -> None:
    grants = Grants(made.vault)
    grant = grants.create(credential=stock["gh"], uses=3)
    for left in (2, 1, 0):
        found = grants.find(stock["gh"], None, (), ANY_COMMAND)
        assert found is not None and found.id == grant.id
        assert grants.consume(found).uses_left == left
    assert grants.find(stock["gh"], None, (), ANY_COMMAND) is None
    assert Grants(made.vault).get(grant.id).state(made.clock()) == "used"


def test_an_unlimited_grant_is_not_rewritten_on_use(made, stock, kit) -> None:
    grants = Grants(made.vault)
    grant = grants.create(credential=stock["gh"])
    before = kit.dump_tables(made.path)
    for _ in range(5):
        assert grants.consume(grant) == grant
    assert kit.dump_tables(made.path) == before
    assert grants.find(stock["gh"], None, (), ANY_COMMAND) == grant


def test_a_grant_expires_at_its_ttl(made, stock) -> None:
    grants = Grants(made.vault)
    grant = grants.create(credential=stock["gh"], ttl_seconds=60)
    made.clock.advance(59)
    assert grants.find(stock["gh"], None, (), ANY_COMMAND) == grant
    made.clock.advance(1)
    assert grant.state(made.clock()) == "expired"
    assert grants.find(stock["gh"], None, (), ANY_COMMAND) is None
    assert grants.list() == [] and grants.list(include_inactive=True) == [grant]
    with pytest.raises(GrantSpentError, match="no longer active"):
        grants.consume(grant._replace(uses_left=1))


def test_revoke_ends_a_grant_keeps_it_on_record_and_is_audited_once(made, stock) -> None:
    grants = Grants(made.vault)
    grant = grants.create(credential=stock["gh"])
    made.clock.advance(7)
    revoked = grants.revoke(grant.id, reason="leaked in a log")
    assert (revoked.revoked_at, revoked.revoked_reason) == (made.clock(), "leaked in a log")
    assert revoked.state(made.clock()) == "revoked"
    assert grants.find(stock["gh"], None, (), ANY_COMMAND) is None
    assert grants.list(include_inactive=True) == [revoked]
    entry = list(made.vault.audit.entries())[-1]
    assert (entry.operation, entry.target) == ("grant.revoke", "gh-token")
    assert entry.detail == {"grant": grant.id, "reason": "leaked in a log"}
    count = len(operations(made.vault))
    assert grants.revoke(grant.id, reason="again") == revoked  # idempotent: no second entry
    assert len(operations(made.vault)) == count


def test_revoke_wins_over_remaining_uses_and_time(made, stock) -> None:
    grants = Grants(made.vault)
    grant = grants.create(credential=stock["gh"], uses=5, ttl_seconds=HOUR)
    grants.revoke(grant.id)
    assert grants.get(grant.id).state(made.clock()) == "revoked"
    with pytest.raises(GrantSpentError):
        grants.consume(grant)


# -- sessions and precedence ---------------------------------------------------------------------------------
def test_a_session_grant_covers_only_its_session(made, stock) -> None:
    grant = Grants(made.vault).create(credential=stock["gh"], session_id=SESSION_A)
    now = made.clock()
    assert grant.covers(stock["gh"], SESSION_A, (), now, ANY_COMMAND)
    assert not grant.covers(stock["gh"], SESSION_B, (), now, ANY_COMMAND)
    assert not grant.covers(stock["gh"], None, (), now, ANY_COMMAND)


def test_a_standing_grant_covers_any_session_and_none(made, stock) -> None:
    grant = Grants(made.vault).create(credential=stock["gh"])
    assert all(grant.covers(stock["gh"], session, (), made.clock(), ANY_COMMAND) for session in (None, SESSION_A, SESSION_B))


def test_a_grant_approved_outside_any_session_does_not_cover_agents_in_sessions(made, stock) -> None:
    grants = Grants(made.vault)
    grant = grants.create(credential=stock["gh"], ttl_seconds=HOUR, outside_sessions=True)
    assert grant.audience == "no session"
    assert grants.find(stock["gh"], None, (), ANY_COMMAND) == grant
    assert grants.find(stock["gh"], "as_0123456789abcdef", (), ANY_COMMAND) is None


def test_a_sessions_own_grant_wins_over_a_standing_one(made, stock) -> None:
    grants = Grants(made.vault)
    standing = grants.create(credential=stock["gh"])
    made.clock.advance(1)
    own = grants.create(selector="tag:ci", context="acme", session_id=SESSION_A)  # newer, and only a selector
    assert grants.find(stock["gh"], SESSION_A, (), ANY_COMMAND) == own
    assert grants.find(stock["gh"], SESSION_B, (), ANY_COMMAND) == standing
    assert grants.find(stock["gh"], None, (), ANY_COMMAND) == standing


def test_among_equals_the_credential_grant_beats_the_selector_and_the_oldest_wins(made, stock) -> None:
    grants = Grants(made.vault)
    selector = grants.create(selector="service:github", context="acme")
    made.clock.advance(1)
    first = grants.create(credential=stock["gh"])
    made.clock.advance(1)
    grants.create(credential=stock["gh"])
    assert grants.find(stock["gh"], None, (), ANY_COMMAND) == first
    grants.revoke(first.id)
    second = grants.find(stock["gh"], None, (), ANY_COMMAND)
    assert second is not None and second.credential_id == stock["gh"].id and second.id != first.id
    assert grants.find(stock["gh-prod"], None, (), ANY_COMMAND) == selector


def test_a_used_up_session_grant_falls_back_to_a_standing_one(made, stock) -> None:
    grants = Grants(made.vault)
    standing = grants.create(credential=stock["gh"])
    own = grants.create(credential=stock["gh"], session_id=SESSION_A, uses=1)
    assert grants.find(stock["gh"], SESSION_A, (), ANY_COMMAND) == own
    grants.consume(own)
    assert grants.find(stock["gh"], SESSION_A, (), ANY_COMMAND) == standing


def test_ending_a_real_session_leaves_standing_grants_covering(made, stock) -> None:
    session, _ = Sessions(made.vault).start("acme", 3600)
    grants = Grants(made.vault)
    standing = grants.create(credential=stock["gh"])
    grants.create(credential=stock["gh"], session_id=session.id)
    Sessions(made.vault).end(session.id)
    assert grants.find(stock["gh"], session.id, (), ANY_COMMAND) == standing


# -- the cache and other connections -------------------------------------------------------------------------
def test_the_cache_sees_a_grant_added_through_another_connection(made, stock, kit) -> None:
    mine = Grants(made.vault)
    assert mine.find(stock["gh"], None, (), ANY_COMMAND) is None  # the cache is now filled
    other = kit.open_unlocked(made.path, made.clock)
    try:
        theirs = Grants(other).create(credential=stock["gh"])
    finally:
        other.close()
    assert mine.find(stock["gh"], None, (), ANY_COMMAND) == theirs
    assert mine.get(theirs.id) == theirs


def test_the_cache_sees_a_revocation_and_a_use_through_another_connection(made, stock, kit) -> None:
    mine = Grants(made.vault)
    unlimited = mine.create(credential=stock["gh"])
    once = mine.create(credential=stock["stripe"], uses=1)
    assert mine.find(stock["gh"], None, (), ANY_COMMAND) == unlimited
    assert mine.find(stock["stripe"], None, (), ANY_COMMAND) == once
    other = kit.open_unlocked(made.path, made.clock)
    try:
        Grants(other).revoke(unlimited.id, reason="elsewhere")
        Grants(other).consume(once)
    finally:
        other.close()
    assert mine.find(stock["gh"], None, (), ANY_COMMAND) is None
    assert mine.find(stock["stripe"], None, (), ANY_COMMAND) is None
    assert mine.get(unlimited.id).revoked_reason == "elsewhere"
    assert mine.list() == []


def test_the_cache_sees_its_own_connections_changes_made_by_another_grants_object(made, stock) -> None:
    mine = Grants(made.vault)
    assert mine.find(stock["gh"], None, (), ANY_COMMAND) is None
    made_elsewhere = Grants(made.vault).create(credential=stock["gh"])
    assert mine.find(stock["gh"], None, (), ANY_COMMAND) == made_elsewhere
    Grants(made.vault).revoke(made_elsewhere.id)
    assert mine.find(stock["gh"], None, (), ANY_COMMAND) is None


def test_every_grant_change_is_audited(made, stock) -> None:
    start = len(operations(made.vault))
    session, _ = Sessions(made.vault).start("acme", 3600)
    grants = Grants(made.vault)
    a = grants.create(credential=stock["gh"], session_id=session.id)
    b = grants.create(selector="tag:ci")
    grants.revoke(b.id)
    Sessions(made.vault).end(session.id)
    assert operations(made.vault)[start:] == ["session.start", "grant.create", "grant.create", "grant.revoke",
                                              "session.end"]
    created = [e for e in made.vault.audit.entries() if e.operation == "grant.create"]
    assert [e.detail["grant"] for e in created] == [a.id, b.id]
    assert made.vault.audit.verify().ok


# -- rights and bindings -------------------------------------------------------------------------------
def test_an_inject_grant_never_covers_a_reveal(made, stock) -> None:
    grant = Grants(made.vault).create(credential=stock["gh"])
    assert grant.rights == (INJECT,)
    assert Grants(made.vault).find(stock["gh"], None, (), ANY_COMMAND) == grant
    assert Grants(made.vault).find(stock["gh"], None, (), Use(REVEAL)) is None


def test_a_reveal_grant_covers_both_uses_only_when_it_says_so(made, stock) -> None:
    grant = Grants(made.vault).create(credential=stock["gh"], rights=(INJECT, REVEAL))
    assert Grants(made.vault).find(stock["gh"], None, (), Use(REVEAL)) == grant
    only_reveal = Grants(made.vault).create(credential=stock["stripe"], rights=(REVEAL,))
    assert Grants(made.vault).find(stock["stripe"], None, (), ANY_COMMAND) is None
    assert Grants(made.vault).find(stock["stripe"], None, (), Use(REVEAL)) == only_reveal


@pytest.mark.parametrize(("binding", "use", "covered"), [
    ({"command": ("deploy", "--now")}, ANY_COMMAND, True),
    ({"command": ("deploy", "--now")}, ANY_COMMAND._replace(command=("deploy", "--now", "--prod")), False),
    ({"program": "/usr/bin/deploy"}, ANY_COMMAND._replace(command=("deploy", "anything")), True),
    ({"program": "/usr/bin/deploy"}, ANY_COMMAND._replace(program="/tmp/deploy"), False),
    ({"cwd": "/work/app"}, ANY_COMMAND._replace(cwd="/work/app/sub"), True),
    ({"cwd": "/work/app"}, ANY_COMMAND._replace(cwd="/work/application"), False),
    ({}, ANY_COMMAND._replace(command=("anything",), program="/bin/anything", cwd="/"), True),
])
def test_a_bound_grant_covers_only_the_command_program_and_folder_it_names(made, stock, binding, use,
                                                                            covered) -> None:
    grant = Grants(made.vault).create(credential=stock["gh"], **binding)
    assert (Grants(made.vault).find(stock["gh"], None, (), use) == grant) is covered


def test_a_grant_bound_to_a_command_must_be_an_inject_grant(made, stock) -> None:
    with pytest.raises(UsageError, match="inject"):
        Grants(made.vault).create(credential=stock["gh"], rights=(REVEAL,), program="/usr/bin/deploy")


def test_a_grant_recorded_before_rights_existed_keeps_its_meaning(made, stock) -> None:
    from aegis_tui.core.agents.grants import Grant

    old = {"id": "gr_0123456789abcdef", "label": "gh", "credential_id": stock["gh"].id}
    assert Grant.from_dict(old).rights == (INJECT, REVEAL)  # a standing grant handed out values
    assert Grant.from_dict({**old, "session_id": "as_0123456789abcdef"}).rights == (INJECT,)
