"""The access review: rows, decisions applied and audited, the signed report and its checks."""

from __future__ import annotations

import json

import pytest

from aegis_tui.core.agents.grants import Grants
from aegis_tui.core.audit import Risk
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.crypto import new_signing_key, Signer
from aegis_tui.core.errors import IntegrityError, RefusedError, UsageError
from aegis_tui.core.lifecycle.incidents import Incidents
from aegis_tui.core.lifecycle.review import (
    SIGNATURE_DOMAIN,
    Decision,
    Review,
    ReviewReport,
    last_review_age_days,
    list_reviews,
    review_rows,
    rotate_for_review,
    verify_report,
)
from aegis_tui.core.models import Kind, Status
from aegis_tui.core.secret import Secret

CANARY = "canary-9f8e7d6c5b4a-do-not-leak"


def _rows(vault) -> dict:  # type: ignore[no-untyped-def]
    return {row.name: row for row in review_rows(vault)}


def _public_key(vault) -> bytes:  # type: ignore[no-untyped-def]
    return bytes.fromhex(vault.store.get_meta("audit_public_key"))


def _rotate_with_new_value(vault):  # type: ignore[no-untyped-def]
    """A real rotation, as a screen's rotate dialog would do it."""
    return lambda name: f"rotated to version {Credentials(vault).rotate(name, Secret('new-' + name)).current_version}"


def _finished(vault, decisions: dict[str, Decision]) -> ReviewReport:  # type: ignore[no-untyped-def]
    review = Review.start(vault)
    for name, decision in decisions.items():
        review.decide(name, decision)
    return review.finish(_rotate_with_new_value(vault))


def _audit_ops(vault, operation: str) -> list:  # type: ignore[no-untyped-def]
    return [entry for entry in vault.audit.entries() if entry.operation == operation]


# -- rows ----------------------------------------------------------------------------------------
def test_a_row_shows_age_rotation_state_and_days_since_rotation(vault, creds, kit) -> None:  # type: ignore[no-untyped-def]
    creds.add("db", Secret("v"), context="acme/prod", rotation_days=30)
    vault.clock.advance(20 * kit.DAY)
    creds.add("fresh", Secret("v"), context="acme")
    vault.clock.advance(20 * kit.DAY)
    rows = _rows(vault)
    assert (rows["db"].age_days, rows["db"].rotated_days_ago) == (40, 40)
    assert (rows["db"].rotation_state, rows["db"].rotation_days_left) == ("overdue", -10)
    assert "overdue" in rows["db"].flags
    assert (rows["fresh"].age_days, rows["fresh"].rotation_state, rows["fresh"].rotation_days_left) == (20, "none", None)


def test_a_row_shows_last_use_and_the_sessions_that_read_it(vault, creds, kit) -> None:  # type: ignore[no-untyped-def]
    creds.add("api", Secret("v"), context="acme")
    for session in ("sess-1", "sess-2"):
        Credentials(vault, vault.actor._replace(session_id=session)).reveal("api")
        vault.clock.advance(kit.DAY)
    row = _rows(vault)["api"]
    assert row.uses == 2 and row.last_used == kit.START + kit.DAY
    assert row.sessions == ("sess-2", "sess-1")  # most recent first


def test_grants_cover_a_row_by_name_service_and_tag_in_its_context(vault, creds) -> None:  # type: ignore[no-untyped-def]
    gh = creds.add("gh", Secret("v"), service="GitHub", context="acme/dev", tags=["ci"])
    other = creds.add("other", Secret("v"), context="acme/dev")
    grants = Grants(vault)
    by_name = grants.create(credential=gh)
    by_service = grants.create(selector="service:github")
    by_tag = grants.create(selector="tag:ci", context="acme")
    grants.create(selector="tag:ci", context="elsewhere")  # another context: does not cover
    grants.create(credential=other)
    grants.revoke(grants.create(credential=gh).id)  # inactive: not shown
    rows = _rows(vault)
    assert {grant.id for grant in rows["gh"].grants} == {by_name.id, by_service.id, by_tag.id}
    assert "standing-grants" in rows["gh"].flags


def test_exposures_and_open_incidents_are_counted(vault, creds) -> None:  # type: ignore[no-untyped-def]
    aws = creds.add("aws", Secret("v"), context="prod")
    vault.audit.append("leak.found", vault.actor, risk=Risk.HIGH, target="aws", context="prod", detail={"count": 1})
    incidents = Incidents(vault)
    incidents.open(aws, severity="high", source="scan")
    closed = incidents.open(aws, severity="low", source="manual")
    incidents.edit(closed.id, root_cause="pasted in a ticket", prevention="masking on")
    incidents.close(closed.id)
    row = _rows(vault)["aws"]
    assert (row.exposures, row.incidents) == (1, 1)
    assert "exposed" in row.flags


def test_an_old_credential_never_used_and_without_context_is_flagged(vault, creds, kit) -> None:  # type: ignore[no-untyped-def]
    creds.add("orphan", Secret("v"))
    creds.add("used", Secret("v"), context="acme")
    vault.clock.advance(100 * kit.DAY)
    creds.reveal("used")
    creds.add("new", Secret("v"), context="acme")
    rows = _rows(vault)
    assert rows["orphan"].flags == ("unused", "no-owner-context")
    assert rows["used"].flags == ()
    assert rows["new"].flags == ()  # not used yet, but too new to call unused


def test_expiry_flags(vault, creds, kit) -> None:  # type: ignore[no-untyped-def]
    creds.add("soon", Secret("v"), context="a", expires="2025-06-20")
    creds.add("gone", Secret("v"), context="a", expires="2025-06-01")
    rows = _rows(vault)
    assert rows["soon"].flags == ("expiring",) and rows["gone"].flags == ("expired",)


# -- decisions -------------------------------------------------------------------------------------
def test_finishing_with_undecided_rows_is_refused_and_changes_nothing(vault, creds) -> None:  # type: ignore[no-untyped-def]
    for name in ("a", "b", "c"):
        creds.add(name, Secret("v"), context="x")
    review = Review.start(vault)
    review.decide("a", Decision("keep"))
    before = vault.store.last_audit().seq
    with pytest.raises(UsageError, match="2 credential"):
        review.finish(_rotate_with_new_value(vault))
    assert vault.store.last_audit().seq == before and list_reviews(vault) == []


def test_a_decision_is_checked_when_made(vault, creds) -> None:  # type: ignore[no-untyped-def]
    creds.add("a", Secret("v"), context="x")
    review = Review.start(vault)
    with pytest.raises(UsageError, match="unknown decision"):
        review.decide("a", Decision("delete"))
    with pytest.raises(UsageError, match="only a narrow"):
        review.decide("a", Decision("keep", grant_ids=("gr_0123456789abcdef",)))
    with pytest.raises(UsageError, match="not an active grant"):
        review.decide("a", Decision("narrow", grant_ids=("gr_0123456789abcdef",)))
    with pytest.raises(UsageError, match="control characters"):
        review.decide("a", Decision("keep", note="two\nlines"))


def test_keep_changes_nothing_but_is_audited(vault, creds) -> None:  # type: ignore[no-untyped-def]
    creds.add("a", Secret("v"), context="x")
    report = _finished(vault, {"a": Decision("keep", note="still needed by CI")})
    assert creds.find("a").status is Status.ACTIVE
    [entry] = _audit_ops(vault, "review.decision")
    assert (entry.target, entry.outcome, entry.detail["action"]) == ("a", "ok", "keep")
    assert entry.detail["note_length"] == len("still needed by CI")
    assert "still needed" not in json.dumps(entry.detail)
    assert report.decisions[0]["note"] == "still needed by CI"
    assert _audit_ops(vault, "review.finish")[0].detail["review"] == report.id


def test_revoke_revokes_the_credential_and_the_grants_naming_it(vault, creds) -> None:  # type: ignore[no-untyped-def]
    gh = creds.add("gh", Secret("v"), service="github", context="x")
    grants = Grants(vault)
    direct = grants.create(credential=gh)
    selector = grants.create(selector="service:github")
    report = _finished(vault, {"gh": Decision("revoke")})
    assert creds.find("gh").status is Status.REVOKED
    assert grants.get(direct.id).state(vault.clock()) == "revoked"
    assert grants.get(selector.id).state(vault.clock()) == "active"  # it covers other credentials too
    assert report.decisions[0]["result"] == "applied"


def test_rotate_calls_the_rotator_and_records_a_failure_without_stopping(vault, creds) -> None:  # type: ignore[no-untyped-def]
    creds.add("a", Secret("v"), context="x")
    creds.add("b", Secret("v"), context="x")
    creds.set_status("b", Status.REVOKED)  # rotating a revoked credential fails
    report = _finished(vault, {"a": Decision("rotate"), "b": Decision("rotate")})
    outcomes = {entry["name"]: (entry["result"], entry["outcome"]) for entry in report.decisions}
    assert outcomes["a"] == ("applied", "rotated to version 2")
    assert outcomes["b"][0] == "failed"
    assert creds.find("a").current_version == 2
    failed = [e for e in _audit_ops(vault, "review.decision") if e.target == "b"]
    assert failed[0].outcome == "failed"


def test_rotate_for_review_asks_a_human_when_no_policy_generates(vault, creds) -> None:  # type: ignore[no-untyped-def]
    creds.add("my key", Secret("v"), context="x")
    assert rotate_for_review(vault, "my key") == "rotation needs a human: run aegis-vault rotate 'my key'"
    assert creds.find("my key").current_version == 1


def test_rotate_for_review_generates_when_the_policy_says_so(vault, creds) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("aegis_tui.core.lifecycle.policy")
    creds.add("tok", Secret("v"), context="x")
    creds.edit("tok", rotation_policy={"method": "generate", "length": 20, "charset": "hex", "prefix": "tk_"})
    assert rotate_for_review(vault, "tok") == "rotated to version 2 (generated)"
    value = creds.reveal("tok").reveal()
    assert value.startswith(b"tk_") and len(value) == 23


def test_narrow_without_grants_named_revokes_the_standing_grants_naming_it(vault, creds) -> None:  # type: ignore[no-untyped-def]
    gh = creds.add("gh", Secret("v"), service="github", context="x")
    grants = Grants(vault)
    standing = grants.create(credential=gh)
    session_bound = grants.create(credential=gh, session_id="sess-1")
    selector = grants.create(selector="service:github")
    _finished(vault, {"gh": Decision("narrow")})
    now = vault.clock()
    states = {g.id: g.state(now) for g in grants.list(include_inactive=True)}
    assert states == {standing.id: "revoked", session_bound.id: "active", selector.id: "active"}
    assert creds.find("gh").status is Status.ACTIVE


def test_narrow_with_an_end_time_shortens_the_chosen_grants(vault, creds, kit) -> None:  # type: ignore[no-untyped-def]
    creds.add("gh", Secret("v"), service="github", context="x")
    grants = Grants(vault)
    selector = grants.create(selector="service:github")
    until = vault.clock() + 7 * kit.DAY
    report = _finished(vault, {"gh": Decision("narrow", grant_ids=(selector.id,), expires_at=until)})
    assert grants.get(selector.id).expires_at == until
    assert report.decisions[0]["outcome"].startswith("shortened 1 grant(s) to end ")
    assert _audit_ops(vault, "grant.shorten")[0].detail["expires_at"] == until


def test_a_grant_is_never_lengthened_or_shortened_into_the_past(vault, creds, kit) -> None:  # type: ignore[no-untyped-def]
    gh = creds.add("gh", Secret("v"), context="x")
    grants = Grants(vault)
    grant = grants.create(credential=gh, ttl_seconds=kit.DAY)
    with pytest.raises(RefusedError, match="only shortens"):
        grants.shorten(grant.id, vault.clock() + 2 * kit.DAY)
    with pytest.raises(UsageError, match="revoke it"):
        grants.shorten(grant.id, vault.clock() - 1)
    grants.revoke(grant.id)
    with pytest.raises(RefusedError, match="revoked"):
        grants.shorten(grant.id, vault.clock() + 60)


def test_a_narrow_that_would_lengthen_a_grant_is_recorded_as_failed(vault, creds, kit) -> None:  # type: ignore[no-untyped-def]
    gh = creds.add("gh", Secret("v"), context="x")
    grant = Grants(vault).create(credential=gh, ttl_seconds=kit.DAY)
    report = _finished(vault, {"gh": Decision("narrow", grant_ids=(grant.id,), expires_at=vault.clock() + 9 * kit.DAY)})
    assert report.decisions[0]["result"] == "failed"
    assert Grants(vault).get(grant.id).expires_at == vault.clock() + kit.DAY


# -- the report ---------------------------------------------------------------------------------------
@pytest.fixture
def report(vault, creds) -> ReviewReport:  # type: ignore[no-untyped-def]
    creds.add("gh", Secret(CANARY), kind=Kind.API_KEY, service="github", context="acme")
    creds.add("db | prod <b>", Secret(CANARY + "2"), context="acme/prod")
    return _finished(vault, {"gh": Decision("keep", note="used by *CI*"), "db | prod <b>": Decision("rotate")})


def test_the_report_is_stored_signed_and_verifies_as_json_and_markdown(vault, report) -> None:  # type: ignore[no-untyped-def]
    assert [r.id for r in list_reviews(vault)] == [report.id]
    assert list_reviews(vault)[0] == report
    key = _public_key(vault)
    assert verify_report(report.to_json(), key) == report
    assert verify_report(report.to_markdown(), key) == report
    assert verify_report(report.to_markdown() + "\n") == report  # an editor's final newline is fine


def test_the_markdown_shows_counts_rows_flags_and_decisions_with_names_escaped(report) -> None:  # type: ignore[no-untyped-def]
    text = report.to_markdown()
    assert "- Decisions: keep 1, rotate 1, revoke 0, narrow 0; failed: 0" in text
    assert "| db \\| prod &lt;b&gt; | acme/prod |" in text
    assert "**gh**: used by \\*CI\\*" in text
    assert "```aegis-review\n" in text


@pytest.mark.parametrize("tamper", [
    lambda d: d["decisions"][0].update(action="revoke"),
    lambda d: d["rows"][0].update(flags=["unused"]),
    lambda d: d["rows"].pop(),
    lambda d: d.update(reviewer="mallory"),
    lambda d: d.update(finished_at=d["finished_at"] + 1),
])
def test_any_changed_field_breaks_the_signature(report, tamper) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(report.to_json())
    tamper(data)
    with pytest.raises(IntegrityError, match="signature does not match"):
        verify_report(json.dumps(data))


def test_a_swapped_key_is_rejected_signed_or_not(vault, report) -> None:  # type: ignore[no-untyped-def]
    private, public = new_signing_key()
    data = json.loads(report.to_json())
    data["public_key"] = public.hex()
    with pytest.raises(IntegrityError, match="signature does not match"):
        verify_report(json.dumps(data))
    body = {k: v for k, v in data.items() if k != "signature"}
    message = SIGNATURE_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    data["signature"] = Signer(private).sign(message).hex()
    forged = json.dumps(data)
    assert verify_report(forged).public_key == public.hex()  # self-consistent: only a known key can tell
    with pytest.raises(IntegrityError, match="not this vault's audit key"):
        verify_report(forged, _public_key(vault))


def test_a_truncated_or_edited_markdown_is_rejected(report) -> None:  # type: ignore[no-untyped-def]
    text = report.to_markdown()
    with pytest.raises(IntegrityError, match="no complete aegis-review block"):
        verify_report(text[: text.rindex("```")])
    with pytest.raises(IntegrityError, match="not valid JSON"):
        verify_report(text[: text.rindex("```") - 40] + "\n```")
    with pytest.raises(IntegrityError, match="Markdown around the signed block was edited"):
        verify_report(text.replace("| keep |", "| revoke |"))
    with pytest.raises(IntegrityError, match="not an aegis-vault review"):
        verify_report('{"hello": 1}')


def test_no_value_reaches_the_report_the_exports_or_the_audit_log(vault, report) -> None:  # type: ignore[no-untyped-def]
    texts = [report.to_json(), report.to_markdown(), *(json.dumps(e.to_export()) for e in vault.audit.entries())]
    assert not [text for text in texts if CANARY in text]


def test_the_age_of_the_last_review_drives_the_reminder(vault, creds, kit) -> None:  # type: ignore[no-untyped-def]
    assert last_review_age_days(vault) is None
    creds.add("a", Secret("v"), context="x")
    _finished(vault, {"a": Decision("keep")})
    vault.clock.advance(91 * kit.DAY)
    assert last_review_age_days(vault) == 91
    _finished(vault, {"a": Decision("keep")})
    assert last_review_age_days(vault) == 0 and len(list_reviews(vault)) == 2


def test_a_field_of_the_wrong_type_is_refused_before_anything_reads_it(report) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(report.to_json())
    data["finished_at"] = "yesterday"
    with pytest.raises(IntegrityError, match="'finished_at' has the wrong type"):
        verify_report(json.dumps(data))


def test_a_finished_review_cannot_be_applied_twice(vault, creds) -> None:  # type: ignore[no-untyped-def]
    creds.add("a", Secret("v"), context="x")
    review = Review.start(vault)
    review.decide("a", Decision("revoke"))
    review.finish(_rotate_with_new_value(vault))
    with pytest.raises(UsageError, match="finished already"):
        review.finish(_rotate_with_new_value(vault))
    assert len(list_reviews(vault)) == 1
