"""Incident records: opening one for a credential, the response timeline stamped by the
vault's clock, edits, closing only with a root cause and a prevention, reopening, ids by
unique prefix, the template-shaped JSON export, audit entries without the texts, and
sealing (a copy of the file shows none of an incident's words)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import NotFoundError, UsageError
from aegis_tui.core.lifecycle.incidents import Incident, Incidents, Step, export_incidents, write_export
from aegis_tui.core.models import Credential, Kind
from aegis_tui.core.secret import Secret

CANARY = "canary_value_7f3e9a1c5b2d4e6f8a0b"
MINUTE = 60.0
IMPACT = "token pushed to a public fork for 40 minutes"
ROOT_CAUSE = "debug log printed the environment"
PREVENTION = "run masks output; pre-commit scan added"


@pytest.fixture
def token(made) -> Credential:  # type: ignore[no-untyped-def]
    return Credentials(made.vault).add("github-pat-ci", Secret(CANARY), kind=Kind.ACCESS_TOKEN, service="github",
                                       context="acme/dev")


@pytest.fixture
def incidents(made) -> Incidents:  # type: ignore[no-untyped-def]
    return Incidents(made.vault)


def audit_of(vault, prefix: str = "incident.") -> list:  # type: ignore[no-untyped-def]
    return [entry for entry in vault.audit.entries() if entry.operation.startswith(prefix)]


def filled(incidents: Incidents, incident: Incident) -> Incident:
    return incidents.edit(incident.id, root_cause=ROOT_CAUSE, prevention=PREVENTION)


# -- opening and the timeline -------------------------------------------------------------------------
def test_opening_an_incident_records_the_credential_and_its_kind_and_is_audited_as_high_risk(
        made, incidents, token) -> None:
    incident = incidents.open(token, severity="critical", source="scan", impact=IMPACT)
    assert len(incident.id) == 16 and all(ch in "0123456789abcdef" for ch in incident.id)
    assert incident.short_id == incident.id[:8]
    assert (incident.credential, incident.credential_id, incident.context) == ("github-pat-ci", token.id, "acme/dev")
    assert (incident.credential_type, incident.severity, incident.source) == ("access_token", "critical", "scan")
    assert (incident.status, incident.opened_at, incident.closed_at) == ("open", made.clock(), None)
    assert (incident.impact, incident.root_cause, incident.prevention, incident.timeline) == (IMPACT, "", "", ())
    assert incidents.get(incident.id) == incident
    [entry] = audit_of(made.vault)
    assert (entry.operation, entry.risk, entry.flagged) == ("incident.open", "high", True)
    assert (entry.target, entry.context) == ("github-pat-ci", "acme/dev")
    assert entry.detail == {"incident": incident.id, "severity": "critical", "source": "scan"}


def test_steps_are_stamped_with_the_vault_clock_in_the_order_they_happened(made, incidents, token) -> None:
    incident = incidents.open(token, severity="high", source="run")
    start = made.clock()
    incidents.add_step(incident.id, "marked exposed")
    made.clock.advance(5 * MINUTE)
    incidents.add_step(incident.id, "revoked 3 grants")
    made.clock.advance(5 * MINUTE)
    incidents.add_step(incident.id, "revoke hook ran", outcome="failed", detail="exit status 1")
    made.clock.advance(MINUTE)
    updated = incidents.add_step(incident.id, "rotated to version 4", outcome="pending")
    assert updated.timeline == (
        Step(start, "marked exposed", "ok", ""),
        Step(start + 5 * MINUTE, "revoked 3 grants", "ok", ""),
        Step(start + 10 * MINUTE, "revoke hook ran", "failed", "exit status 1"),
        Step(start + 11 * MINUTE, "rotated to version 4", "pending", ""),
    )
    assert incidents.get(incident.id) == updated
    steps = audit_of(made.vault, "incident.step")
    assert [entry.detail for entry in steps] == [{"incident": incident.id, "outcome": outcome}
                                                 for outcome in ("ok", "ok", "failed", "pending")]


@pytest.mark.parametrize(("step", "outcome", "mentions"), [
    ("", "ok", "says what was done"),
    ("rotated", "maybe", "outcome"),
    ("rotated\x1b[2J", "ok", "control characters"),
    ("x" * 201, "ok", "at most"),
])
def test_a_bad_step_is_refused_and_changes_nothing(made, incidents, token, step, outcome, mentions) -> None:
    incident = incidents.open(token, severity="low", source="manual")
    with pytest.raises(UsageError, match=mentions):
        incidents.add_step(incident.id, step, outcome)
    assert incidents.get(incident.id) == incident


def test_a_step_detail_from_program_output_is_kept_on_one_line_and_cut_to_length(made, incidents, token) -> None:
    incident = incidents.open(token, severity="low", source="manual")
    stderr = "error: 401\n\x1b[31mbad credentials\x1b[0m\r\n" + "x" * 3000
    [step] = incidents.add_step(incident.id, "revoke hook ran", "failed", stderr).timeline
    assert step.detail.startswith("error: 401 [31mbad credentials [0m xxx")
    assert len(step.detail) == 2000 and step.detail.endswith("x…")


def test_opening_refuses_an_unknown_severity_or_source_and_stores_nothing(made, incidents, token) -> None:
    with pytest.raises(UsageError, match="a severity is one of: critical, high, medium, low"):
        incidents.open(token, severity="urgent", source="manual")
    with pytest.raises(UsageError, match="source"):
        incidents.open(token, severity="low", source="Not A Word")
    assert incidents.list() == [] and audit_of(made.vault) == []


# -- editing, closing, reopening ------------------------------------------------------------------------
def test_edit_changes_the_named_fields_and_audits_their_names_but_never_their_texts(made, incidents, token) -> None:
    incident = incidents.open(token, severity="medium", source="review")
    edited = incidents.edit(incident.id, severity="critical", impact=IMPACT, root_cause=ROOT_CAUSE)
    assert (edited.severity, edited.impact, edited.root_cause, edited.prevention) == (
        "critical", IMPACT, ROOT_CAUSE, "")
    entry = audit_of(made.vault, "incident.edit")[-1]
    assert entry.detail == {"incident": incident.id, "fields": ["impact", "root_cause", "severity"]}
    assert IMPACT not in json.dumps(entry._asdict()) and ROOT_CAUSE not in json.dumps(entry._asdict())


@pytest.mark.parametrize(("fields", "mentions"), [
    ({}, "nothing to change"),
    ({"status": "closed"}, "no editable field 'status'"),
    ({"severity": "urgent"}, "severity"),
    ({"impact": "line\x07bell"}, "impact must not contain control characters"),
    ({"prevention": "p" * 2001}, "prevention is at most 2000 characters"),
])
def test_a_bad_edit_is_refused_and_changes_nothing(made, incidents, token, fields, mentions) -> None:
    incident = incidents.open(token, severity="medium", source="manual")
    with pytest.raises(UsageError, match=mentions):
        incidents.edit(incident.id, **fields)
    assert incidents.get(incident.id) == incident
    assert audit_of(made.vault, "incident.edit") == []


def test_close_is_refused_until_root_cause_and_prevention_are_written(made, incidents, token) -> None:
    incident = incidents.open(token, severity="high", source="scan")
    with pytest.raises(UsageError, match=r"needs a root cause and prevention before it closes; see: "
                                         r"aegis-vault incidents edit \w{8} --root-cause TEXT --prevention TEXT"):
        incidents.close(incident.id)
    incidents.edit(incident.id, root_cause=ROOT_CAUSE, prevention="   ")
    with pytest.raises(UsageError, match="needs a prevention before it closes"):
        incidents.close(incident.id)
    assert incidents.get(incident.id).is_open
    assert audit_of(made.vault, "incident.close") == []


def test_close_sets_the_closing_time_and_reopen_clears_it_both_audited(made, incidents, token) -> None:
    incident = filled(incidents, incidents.open(token, severity="high", source="scan"))
    made.clock.advance(30 * MINUTE)
    closed = incidents.close(incident.id)
    assert (closed.status, closed.closed_at) == ("closed", made.clock())
    assert incidents.close(incident.id) == closed  # closing again changes nothing
    with pytest.raises(UsageError, match="is closed; reopen it to edit it"):
        incidents.edit(incident.id, impact="later")
    reopened = incidents.reopen(incident.id)
    assert (reopened.status, reopened.closed_at) == ("open", None)
    assert incidents.reopen(incident.id) == reopened
    operations = [entry.operation for entry in audit_of(made.vault)]
    assert operations == ["incident.open", "incident.edit", "incident.close", "incident.reopen"]


def test_a_closed_incident_still_takes_steps_reported_late(made, incidents, token) -> None:
    incident = incidents.close(filled(incidents, incidents.open(token, severity="low", source="manual")).id)
    late = incidents.add_step(incident.id, "revoke hook ran", detail="provider confirmed")
    assert late.status == "closed" and late.timeline[-1].step == "revoke hook ran"


# -- finding --------------------------------------------------------------------------------------------
def test_an_incident_is_found_by_any_unique_prefix_of_four_or_more_characters(made, incidents, token) -> None:
    incident = incidents.open(token, severity="low", source="manual")
    assert incidents.get(incident.short_id) == incident
    assert incidents.get(incident.id[:4].upper()) == incident
    with pytest.raises(UsageError, match="hex, 4 characters or more"):
        incidents.get(incident.id[:3])
    with pytest.raises(UsageError, match="hex"):
        incidents.get("not-an-id")
    with pytest.raises(NotFoundError, match="no incident"):
        incidents.get("ffff" if not incident.id.startswith("ffff") else "0000")


def test_a_prefix_shared_by_two_incidents_is_refused_as_ambiguous(made, incidents, token, monkeypatch) -> None:
    ids = iter(["abcd1234" + "00000001", "abcd1234" + "00000002"])
    monkeypatch.setattr("aegis_tui.core.lifecycle.incidents.random_hex", lambda count: next(ids))
    first, second = (incidents.open(token, severity="low", source="manual") for _ in range(2))
    with pytest.raises(UsageError, match="abcd1234 names 2 incidents; give more of the id"):
        incidents.get("abcd1234")
    assert incidents.get("abcd123400000002") == second
    with pytest.raises(UsageError, match="names 2 incidents"):
        incidents.close("abcd")
    assert incidents.get(first.id) == first


def test_list_is_newest_first_and_can_leave_out_closed_ones(made, incidents, token) -> None:
    other = Credentials(made.vault).add("stripe-live", Secret("sk_live_other_value_01"), kind=Kind.API_KEY)
    oldest = incidents.open(token, severity="low", source="manual")
    made.clock.advance(MINUTE)
    middle = incidents.close(filled(incidents, incidents.open(other, severity="high", source="scan")).id)
    made.clock.advance(MINUTE)
    newest = incidents.open(token, severity="critical", source="run")
    assert [i.id for i in incidents.list()] == [newest.id, middle.id, oldest.id]
    assert [i.id for i in incidents.list(include_closed=False)] == [newest.id, oldest.id]
    assert [i.id for i in incidents.for_credential(token.id)] == [newest.id, oldest.id]
    assert [i.id for i in incidents.for_credential(other.id)] == [middle.id]
    assert incidents.for_credential("cr_unknown") == []


def test_incidents_follow_their_credential_by_id_after_a_rename(made, incidents, token) -> None:
    incident = incidents.open(token, severity="low", source="manual")
    Credentials(made.vault).edit(token.name, name="github-pat-renamed")
    assert incidents.for_credential(token.id) == [incident]
    assert incident.credential == "github-pat-ci"  # the name it had when it happened


# -- export ---------------------------------------------------------------------------------------------
def test_export_follows_the_incident_template_with_a_sentence_per_response_step(made, incidents, token) -> None:
    made.clock.now = 1_795_000_000.0  # 2026-11-18T11:06:40Z
    incident = incidents.open(token, severity="critical", source="scan", impact=IMPACT)
    incidents.add_step(incident.id, "marked exposed")
    made.clock.advance(5 * MINUTE)
    incidents.add_step(incident.id, "revoke hook ran", outcome="failed", detail="exit status 1")
    filled(incidents, incident)
    made.clock.advance(MINUTE)
    incidents.close(incident.id)
    [document] = json.loads(export_incidents(incidents.list()))
    assert document == {
        "id": incident.id,
        "timestamp": "2026-11-18T11:06:40Z",
        "severity": "critical",
        "credential": "github-pat-ci",
        "credential_type": "access_token",
        "context": "acme/dev",
        "status": "closed",
        "closed_at": "2026-11-18T11:12:40Z",
        "source": "scan",
        "impact": IMPACT,
        "response": ["2026-11-18T11:06:40Z marked exposed (ok)", "2026-11-18T11:11:40Z revoke hook ran (failed)"],
        "root_cause": ROOT_CAUSE,
        "prevention": PREVENTION,
        "timeline": [
            {"at": "2026-11-18T11:06:40Z", "step": "marked exposed", "outcome": "ok", "detail": ""},
            {"at": "2026-11-18T11:11:40Z", "step": "revoke hook ran", "outcome": "failed", "detail": "exit status 1"},
        ],
    }
    assert export_incidents([]) == "[]"
    assert export_incidents(incidents.list()).startswith('[\n  {\n    "id"')  # indented by 2


def test_an_export_file_is_private_even_when_it_replaces_a_readable_one(tmp_path) -> None:
    target = tmp_path / "incidents.json"
    target.write_text("old")
    os.chmod(target, 0o644)
    assert write_export(str(target), "[]") == str(target)
    assert target.read_text() == "[]\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["incidents.json"]  # no temporary file left behind


# -- secrecy --------------------------------------------------------------------------------------------
def test_the_canary_value_is_in_no_incident_export_or_audit_entry(made, incidents, token) -> None:
    incident = incidents.open(token, severity="critical", source="scan", impact=IMPACT)
    incidents.add_step(incident.id, "marked exposed")
    filled(incidents, incident)
    incidents.close(incident.id)
    incidents.reopen(incident.id)
    records = json.dumps([data for _, data in incidents._records.all()])
    audit = json.dumps([entry._asdict() for entry in made.vault.audit.entries()])
    export = export_incidents(incidents.list())
    for text in (records, audit, export, repr(incidents.list())):
        assert CANARY not in text


def test_an_incident_is_sealed_in_the_file_only_its_kind_and_id_are_in_clear(made, incidents, token, kit) -> None:
    incident = incidents.open(token, severity="critical", source="scan", impact=IMPACT)
    incidents.add_step(incident.id, "rotated to version 4", detail="overlap 24 hours")
    filled(incidents, incident)
    made.vault.close()
    raw = b"".join(kit.file_bytes(made.path).values())
    for text in ("github-pat-ci", IMPACT, ROOT_CAUSE, PREVENTION, "rotated to version 4", "overlap 24 hours",
                 "access_token", "critical"):
        assert text.encode() not in raw, text
    with kit.raw_db(made.path) as conn:
        rows = conn.execute("SELECT kind, id FROM records WHERE kind = 'incident'").fetchall()
    assert rows == [("incident", incident.id)]


def test_incidents_survive_closing_and_reopening_the_vault(made, incidents, token, kit) -> None:
    incident = incidents.add_step(incidents.open(token, severity="high", source="run").id, "marked exposed")
    made.vault.close()
    again = kit.open_unlocked(made.path, made.clock)
    try:
        assert Incidents(again).get(incident.short_id) == incident
    finally:
        again.close()
