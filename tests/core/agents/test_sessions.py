"""Agent sessions: starting them (and refusing bad input), their live/expired/ended
states under a clock the test drives, ending them (which revokes their grants), and
``session_for``: which session a process acts in, by ancestry first, then by name."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from aegis_tui.core.agents.grants import INJECT, Grants, Use
from aegis_tui.core.agents.sessions import (
    MAX_SESSION_SECONDS,
    AgentSession,
    Sessions,
    context_contains,
    session_for,
    validate_session_id,
)
from aegis_tui.core.processes import describe_process, start_time
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import NotFoundError, RefusedError, UsageError
from aegis_tui.core.secret import Secret

HOUR = 3600


def operations(vault) -> list[str]:  # type: ignore[no-untyped-def]
    return [entry.operation for entry in vault.audit.entries()]


def session_records(kit, path) -> int:  # type: ignore[no-untyped-def]
    with kit.raw_db(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM records WHERE kind = 'session'").fetchone()[0]


# -- starting ---------------------------------------------------------------------------------------------
def test_start_records_a_live_session_with_the_documented_fields(made, kit) -> None:
    sessions = Sessions(made.vault)
    session, _ = sessions.start("acme/dev", 2 * HOUR, label="fix the build")
    assert session.id.startswith("as_") and validate_session_id(session.id) == session.id
    assert (session.context, session.label) == ("acme/dev", "fix the build")
    assert (session.created_at, session.expires_at) == (kit.START, kit.START + 2 * HOUR)
    assert session.ended_at is None and session.root_pid is None and session.root_started is None
    assert "pytest" in session.created_by
    assert sessions.get(session.id) == session
    assert sessions.live(session.id) == session
    assert sessions.list() == [session]


def test_start_is_audited_with_its_context_ttl_and_binding(made) -> None:
    session, _ = Sessions(made.vault).start("acme", 600, label="deploy", root_pid=4321, root_started=99)
    entry = list(made.vault.audit.entries())[-1]
    assert entry.operation == "session.start"
    assert (entry.target, entry.context) == (session.id, "acme")
    assert entry.detail == {"ttl_seconds": 600, "label": "deploy", "bound_to_pid": 4321, "parent": None}


def test_a_session_persists_across_reopening_the_vault(made, kit) -> None:
    session, _ = Sessions(made.vault).start("acme", HOUR, root_pid=10, root_started=20)
    made.vault.close()
    vault = kit.open_unlocked(made.path, made.clock)
    try:
        assert Sessions(vault).get(session.id) == session
    finally:
        vault.close()


@pytest.mark.parametrize("ttl", [0, -1, -HOUR, MAX_SESSION_SECONDS + 1, 10**12])
def test_a_ttl_outside_one_second_to_thirty_days_is_refused_and_nothing_is_written(made, kit, ttl: int) -> None:
    before = kit.dump_tables(made.path)
    with pytest.raises(UsageError, match="between 1 second and 30 days"):
        Sessions(made.vault).start("acme", ttl)
    assert kit.dump_tables(made.path) == before
    assert session_records(kit, made.path) == 0


@pytest.mark.parametrize("ttl", [1, MAX_SESSION_SECONDS])
def test_the_ttl_bounds_themselves_are_accepted(made, ttl: int) -> None:
    session, _ = Sessions(made.vault).start("acme", ttl)
    assert session.expires_at - session.created_at == ttl


@pytest.mark.parametrize("context", ["acme//dev", "/acme", "acme/", "a b", "acme/../prod", "x" * 129, "acme\x1b[31m"])
def test_a_bad_context_is_refused_and_nothing_is_written(made, kit, context: str) -> None:
    before = kit.dump_tables(made.path)
    with pytest.raises(UsageError, match="context"):
        Sessions(made.vault).start(context, HOUR)
    assert kit.dump_tables(made.path) == before


@pytest.mark.parametrize("label", ["evil\x1b[2J", "line\nbreak", "x" * 121])
def test_a_label_with_control_characters_or_too_long_is_refused(made, kit, label: str) -> None:
    before = kit.dump_tables(made.path)
    with pytest.raises(UsageError, match="session label"):
        Sessions(made.vault).start("acme", HOUR, label=label)
    assert kit.dump_tables(made.path) == before


def test_the_empty_context_is_a_session_over_everything(made) -> None:
    session, _ = Sessions(made.vault).start("", HOUR)
    assert session.sees("") and session.sees("acme") and session.sees("acme/prod/eu")


# -- ids ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", ["", "as_", "as_0123", "gr_0123456789abcdef", "as_0123456789ABCDEF",
                                 "as_0123456789abcdeg", "as_0123456789abcdef0", "../as_0123456789abc"])
def test_a_malformed_session_id_is_a_usage_error(made, raw: str) -> None:
    with pytest.raises(UsageError, match="as_0123456789abcdef"):
        Sessions(made.vault).get(raw)


def test_an_unknown_session_id_is_not_found(made) -> None:
    with pytest.raises(NotFoundError, match="no agent session as_0123456789abcdef"):
        Sessions(made.vault).get("as_0123456789abcdef")
    with pytest.raises(NotFoundError):
        Sessions(made.vault).end("as_0123456789abcdef")


# -- states ------------------------------------------------------------------------------------------------
def test_a_session_is_active_until_its_expiry_then_expired(made) -> None:
    sessions = Sessions(made.vault)
    session, _ = sessions.start("acme", 60)
    assert session.state(made.clock()) == "active" and session.is_live(made.clock())
    made.clock.advance(59.999)
    assert sessions.live(session.id) == session
    made.clock.advance(0.001)  # exactly at expires_at: over
    assert sessions.get(session.id).state(made.clock()) == "expired"
    assert not sessions.get(session.id).is_live(made.clock())
    with pytest.raises(RefusedError, match=f"agent session {session.id} has expired"):
        sessions.live(session.id)


def test_an_ended_session_is_ended_whatever_the_clock_says(made) -> None:
    sessions = Sessions(made.vault)
    session, _ = sessions.start("acme", HOUR)
    made.clock.advance(10)
    ended, _ = sessions.end(session.id)
    assert ended.ended_at == made.clock() and ended.state(made.clock()) == "ended"
    assert sessions.get(session.id) == ended
    with pytest.raises(RefusedError, match="has ended"):
        sessions.live(session.id)
    made.clock.advance(2 * HOUR)
    assert sessions.get(session.id).state(made.clock()) == "ended"


def test_list_returns_every_session_oldest_first_whatever_its_state(made) -> None:
    sessions = Sessions(made.vault)
    first, _ = sessions.start("acme", 10)
    made.clock.advance(1)
    second, _ = sessions.start("acme/dev", HOUR)
    made.clock.advance(1)
    third, _ = sessions.start("personal", HOUR)
    sessions.end(second.id)
    made.clock.advance(20)
    assert [s.id for s in sessions.list()] == [first.id, second.id, third.id]
    assert [s.state(made.clock()) for s in sessions.list()] == ["expired", "ended", "active"]


# -- ending --------------------------------------------------------------------------------------------------
def test_end_revokes_the_sessions_grants_only_and_audits_the_count(made) -> None:
    creds = Credentials(made.vault)
    api = creds.add("api", Secret("sk_test_value_0001"), context="acme")
    db = creds.add("db", Secret("postgres-pass-0001"), context="acme")
    sessions = Sessions(made.vault)
    mine, _ = sessions.start("acme", HOUR)
    other, _ = sessions.start("acme", HOUR)
    grants = Grants(made.vault)
    g1 = grants.create(credential=api, session_id=mine.id)
    g2 = grants.create(selector="tag:x", context="acme", session_id=mine.id)
    already = grants.create(credential=db, session_id=mine.id)
    grants.revoke(already.id, reason="by hand")
    theirs = grants.create(credential=api, session_id=other.id)
    standing = grants.create(credential=db)
    made.clock.advance(5)

    ended, revoked = sessions.end(mine.id)

    assert revoked == 2
    now = made.clock()
    fresh = Grants(made.vault)
    for grant_id in (g1.id, g2.id):
        grant = fresh.get(grant_id)
        assert grant.state(now) == "revoked"
        assert grant.revoked_at == now and grant.revoked_reason == "session ended"
    assert fresh.get(already.id).revoked_reason == "by hand"  # an earlier revocation stays as it was
    assert fresh.get(theirs.id).state(now) == "active"
    assert fresh.get(standing.id).state(now) == "active"
    assert fresh.find(api, mine.id, (), Use(INJECT)) is None
    entry = list(made.vault.audit.entries())[-1]
    assert entry.operation == "session.end"
    assert (entry.target, entry.context, entry.detail) == (mine.id, "acme", {"grants_revoked": 2})
    assert ended.ended_at == now


def test_ending_an_ended_session_again_changes_nothing(made, kit) -> None:
    sessions = Sessions(made.vault)
    session, _ = sessions.start("acme", HOUR)
    first, _ = sessions.end(session.id)
    before = kit.dump_tables(made.path)
    made.clock.advance(100)
    again, revoked = sessions.end(session.id)
    assert (again, revoked) == (first, 0)
    assert kit.dump_tables(made.path) == before


def test_end_expired_closes_only_expired_sessions_revoking_their_grants(made) -> None:
    api = Credentials(made.vault).add("api", Secret("sk_test_value_0002"), context="acme")
    sessions = Sessions(made.vault)
    short, _ = sessions.start("acme", 60)
    long, _ = sessions.start("acme", HOUR)
    grants = Grants(made.vault)
    short_grant = grants.create(credential=api, session_id=short.id)
    long_grant = grants.create(credential=api, session_id=long.id)
    made.clock.advance(120)

    ended = sessions.end_expired()

    assert [s.id for s in ended] == [short.id]
    assert ended[0].ended_at == short.expires_at  # it ended when its time ran out, not when noticed
    now = made.clock()
    assert Grants(made.vault).get(short_grant.id).state(now) == "revoked"
    assert Grants(made.vault).get(short_grant.id).revoked_reason == "session expired"
    assert Grants(made.vault).get(long_grant.id).state(now) == "active"
    assert sessions.get(long.id).state(now) == "active"
    last = list(made.vault.audit.entries())[-1]
    assert (last.operation, last.target) == ("session.expire", short.id)
    assert last.detail == {"grants_revoked": 1}  # the grant itself had no expiry: it was still active
    assert sessions.end_expired() == []


def test_every_session_change_is_audited(made) -> None:
    start = len(operations(made.vault))
    sessions = Sessions(made.vault)
    a, _ = sessions.start("acme", 60)
    b, _ = sessions.start("acme", HOUR)
    sessions.end(b.id)
    made.clock.advance(61)
    sessions.end_expired()
    assert operations(made.vault)[start:] == ["session.start", "session.start", "session.end", "session.expire"]
    assert [e.target for e in list(made.vault.audit.entries())[start:]] == [a.id, b.id, b.id, a.id]
    assert made.vault.audit.verify().ok


# -- which session a process acts in -----------------------------------------------------------------------
def bound(made, context: str, pid: int, started: int, ttl: int = HOUR) -> AgentSession:  # type: ignore[no-untyped-def]
    return Sessions(made.vault).start(context, ttl, root_pid=pid, root_started=started)[0]


def bound_with_token(made, context: str, pid: int, started: int) -> tuple[AgentSession, str]:  # type: ignore[no-untyped-def]
    return Sessions(made.vault).start(context, HOUR, root_pid=pid, root_started=started)


def declared(made, token: str) -> str:  # type: ignore[no-untyped-def]
    """What the broker looks a presented token up by: its keyed hash."""
    return Sessions(made.vault).hash_token(token)


ANCESTRY = ((3000, 900), (2000, 500), (1000, 100), (1, 1))


def test_no_binding_and_no_declared_session_means_no_session(made) -> None:
    bound(made, "acme", 7777, 1)
    assert session_for(Sessions(made.vault).list(), None, ANCESTRY, made.clock()) is None


def test_a_declared_live_session_is_used(made) -> None:
    session, token = Sessions(made.vault).start("acme", HOUR)
    assert session_for(Sessions(made.vault).list(), declared(made, token), ANCESTRY, made.clock()) == session


def test_the_public_session_id_is_not_a_token(made) -> None:
    session, token = Sessions(made.vault).start("acme", HOUR)
    assert token not in repr(Sessions(made.vault).list())
    with pytest.raises(NotFoundError, match="no such agent session, or not yours"):
        session_for(Sessions(made.vault).list(), declared(made, session.id), ANCESTRY, made.clock())


def test_a_declared_unknown_session_is_not_found(made) -> None:
    with pytest.raises(NotFoundError, match="no such agent session"):
        session_for(Sessions(made.vault).list(), declared(made, "ast_" + "x" * 43), ANCESTRY, made.clock())


@pytest.mark.parametrize("how", ["ended", "expired"])
def test_a_declared_session_that_is_over_refuses_instead_of_meaning_no_session(made, how: str) -> None:
    sessions = Sessions(made.vault)
    session, token = sessions.start("acme", 60)
    if how == "ended":
        sessions.end(session.id)
    else:
        made.clock.advance(60)
    with pytest.raises(RefusedError, match=f"agent session {session.id} has {how}"):
        session_for(sessions.list(), declared(made, token), ANCESTRY, made.clock())


def test_a_session_bound_to_an_ancestor_wins_without_any_declaration(made) -> None:
    session = bound(made, "acme/dev", 2000, 500)
    assert session_for(Sessions(made.vault).list(), None, ANCESTRY, made.clock()) == session


def test_a_session_bound_to_the_process_itself_applies(made) -> None:
    session = bound(made, "acme/dev", 3000, 900)
    assert session_for(Sessions(made.vault).list(), None, ANCESTRY, made.clock()) == session


def test_declaring_the_bound_session_is_accepted(made) -> None:
    session, token = bound_with_token(made, "acme/dev", 1000, 100)
    assert session_for(Sessions(made.vault).list(), declared(made, token), ANCESTRY, made.clock()) == session


def test_a_bound_sessions_token_presented_from_outside_its_tree_is_refused_like_an_unknown_one(made) -> None:
    session, token = bound_with_token(made, "acme/dev", 4444, 44)
    with pytest.raises(NotFoundError, match="no such agent session, or not yours") as refused:
        session_for(Sessions(made.vault).list(), declared(made, token), ANCESTRY, made.clock())
    assert refused.value.stolen == session


def test_declaring_another_live_session_than_the_bound_one_is_refused(made) -> None:
    bound(made, "acme/dev", 1000, 100)
    _, wider = Sessions(made.vault).start("", HOUR)  # an agent trying to escape to a broader session
    with pytest.raises(NotFoundError, match="not yours"):
        session_for(Sessions(made.vault).list(), declared(made, wider), ANCESTRY, made.clock())


@pytest.mark.parametrize("how", ["ended", "expired"])
def test_a_bound_session_that_is_over_refuses_and_does_not_fall_back_to_no_session(made, how: str) -> None:
    sessions = Sessions(made.vault)
    session = bound(made, "acme", 2000, 500, ttl=60)
    if how == "ended":
        sessions.end(session.id)
    else:
        made.clock.advance(61)
    with pytest.raises(RefusedError, match=f"has {how}"):
        session_for(sessions.list(), None, ANCESTRY, made.clock())
    # unsetting AEGIS_SESSION or naming a live session does not get it out either
    _, live = sessions.start("", HOUR)
    with pytest.raises((RefusedError, NotFoundError)):
        session_for(sessions.list(), declared(made, live), ANCESTRY, made.clock())


def test_a_recycled_pid_with_another_start_time_does_not_inherit_the_session(made) -> None:
    bound(made, "acme", 2000, 499)  # the pid 2000 the session was bound to started at 499, not 500
    assert session_for(Sessions(made.vault).list(), None, ANCESTRY, made.clock()) is None
    other, token = Sessions(made.vault).start("personal", HOUR)
    assert session_for(Sessions(made.vault).list(), declared(made, token), ANCESTRY, made.clock()) == other


def test_a_session_bound_without_a_start_time_binds_nothing(made) -> None:
    Sessions(made.vault).start("acme", HOUR, root_pid=2000, root_started=None)
    assert session_for(Sessions(made.vault).list(), None, ANCESTRY, made.clock()) is None


def test_with_nested_bound_sessions_the_innermost_newest_wins(made) -> None:
    outer = bound(made, "acme", 1000, 100)
    made.clock.advance(1)
    inner = bound(made, "acme/dev", 3000, 900)
    assert session_for(Sessions(made.vault).list(), None, ANCESTRY, made.clock()) == inner
    Sessions(made.vault).end(inner.id)  # the inner one ended: its processes are not released to the outer
    with pytest.raises(RefusedError):
        session_for(Sessions(made.vault).list(), None, ANCESTRY, made.clock())
    assert session_for(Sessions(made.vault).list(), None, ((1000, 100),), made.clock()) == outer


def test_binding_works_with_the_kernels_real_ancestry_and_its_start_time(made) -> None:
    parent = os.getppid()
    started = start_time(parent)
    assert started is not None
    session = bound(made, "acme", parent, started)
    mine = describe_process(os.getpid(), os.getuid()).ancestry
    assert (parent, started) in mine
    assert session_for(Sessions(made.vault).list(), None, mine, made.clock()) == session
    Sessions(made.vault).end(session.id)
    recycled = bound(made, "acme", parent, started + 1)  # same pid, another process
    with pytest.raises(RefusedError):  # still inside the ended session, not inside the "recycled" one
        session_for(Sessions(made.vault).list(), None, mine, made.clock())
    assert recycled.state(made.clock()) == "active"


def test_a_child_process_belongs_to_the_session_bound_to_it_and_its_parent_does_not(made) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        started = start_time(child.pid)
        assert started is not None
        session = bound(made, "personal", child.pid, started)
        of_child = describe_process(child.pid, os.getuid()).ancestry
        assert session_for(Sessions(made.vault).list(), None, of_child, made.clock()) == session
        mine = describe_process(os.getpid(), os.getuid()).ancestry
        assert session_for(Sessions(made.vault).list(), None, mine, made.clock()) is None
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=60)


# -- context containment -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("scope", "context", "expected"), [
    ("", "", True), ("", "acme/prod", True), ("acme", "acme", True), ("acme", "acme/dev", True),
    ("acme", "acme/dev/eu", True), ("acme", "acme-old", False), ("acme", "acmeX/dev", False),
    ("acme", "", False), ("acme/dev", "acme", False), ("acme/dev", "acme/devops", False),
    ("acme/dev", "acme/dev/x", True), ("personal", "acme", False),
])
def test_context_contains_follows_whole_path_segments(scope: str, context: str, expected: bool) -> None:
    assert context_contains(scope, context) is expected


# -- nested sessions ------------------------------------------------------------------------------------------
def test_a_session_started_inside_a_session_stays_in_its_context_and_never_outlives_it(made) -> None:
    sessions = Sessions(made.vault)
    parent, _ = sessions.start("acme/dev", 600)
    child, _ = sessions.start("acme/dev/api", 30 * 86400, parent=parent)
    assert child.parent_id == parent.id
    assert child.expires_at == parent.expires_at  # asked for 30 days, gets what the parent has left
    with pytest.raises(RefusedError, match="stays within its context"):
        sessions.start("acme", 60, parent=parent)
    with pytest.raises(RefusedError, match="stays within its context"):
        sessions.start("acme/prod", 60, parent=parent)


def test_ending_a_session_ends_the_sessions_started_inside_it_and_their_grants(made) -> None:
    sessions = Sessions(made.vault)
    parent, _ = sessions.start("acme", HOUR)
    child, _ = sessions.start("acme/dev", HOUR, parent=parent)
    grandchild, _ = sessions.start("acme/dev", HOUR, parent=child)
    gh = Credentials(made.vault).add("gh", Secret(b"ghp_nested_value_0001"), context="acme/dev")
    Grants(made.vault).create(credential=gh, session_id=grandchild.id)
    _, revoked = sessions.end(parent.id)
    assert revoked == 1
    assert {s.id: s.state(made.clock()) for s in sessions.list()} == {
        parent.id: "ended", child.id: "ended", grandchild.id: "ended"}


def test_inside_a_bound_session_a_nested_sessions_token_is_accepted_but_not_a_sibling(made) -> None:
    outer = bound(made, "acme", 1000, 100)
    sessions = Sessions(made.vault)
    nested, nested_token = sessions.start("acme/dev", HOUR, parent=outer)
    _, sibling_token = sessions.start("acme/dev", HOUR)
    assert session_for(sessions.list(), declared(made, nested_token), ANCESTRY, made.clock()) == nested
    with pytest.raises(NotFoundError, match="not yours"):
        session_for(sessions.list(), declared(made, sibling_token), ANCESTRY, made.clock())
