"""``aegis-vault incidents ...`` through the real CLI: open, list, show, edit, close,
reopen and export, and every bad input as one stderr line that changes nothing."""

from __future__ import annotations

import json
import os
import re
import stat

import pytest

CANARY = "canary-incident-value-" + "9d41b7" * 3
ID_LINE = re.compile(r"^([0-9a-f]{16})$")
ROOT_CAUSE = "debug log printed the environment"
PREVENTION = "output masked by run; pre-commit scan"


def ok(result):  # type: ignore[no-untyped-def]
    assert result.returncode == 0, (result.returncode, result.err)
    return result


@pytest.fixture
def stocked(env_vault):  # type: ignore[no-untyped-def]
    ok(env_vault("add", "github-pat-ci", "--kind", "access_token", "--context", "acme/dev", input=CANARY))
    return env_vault


def open_incident(cli, severity: str = "critical", impact: str = "pushed to a fork") -> str:  # type: ignore[no-untyped-def]
    result = ok(cli("incidents", "open", "acme/dev/github-pat-ci", "--severity", severity, "--impact", impact))
    found = ID_LINE.match(result.out.strip())
    assert found, result.out
    assert f"incident {found.group(1)[:8]} opened for github-pat-ci" in result.err
    return found.group(1)


def listed(cli, *args: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(ok(cli("incidents", "list", "--json", *args)).out)


def test_open_prints_the_id_and_list_shows_the_open_incident_in_a_table_and_as_json(stocked) -> None:
    incident = open_incident(stocked)
    table = ok(stocked("incidents", "list")).out.splitlines()
    assert table[0].split() == ["INCIDENT", "OPENED", "SEVERITY", "CREDENTIAL", "CONTEXT", "STATUS", "STEPS", "SOURCE"]
    assert table[1].split()[:1] + table[1].split()[3:] == [incident[:8], "critical", "github-pat-ci", "acme/dev",
                                                          "open", "0", "manual"]
    [document] = listed(stocked)
    assert (document["id"], document["credential_type"], document["impact"]) == (
        incident, "access_token", "pushed to a fork")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["timestamp"])


def test_show_gives_every_field_and_the_timeline_by_a_short_id(stocked) -> None:
    incident = open_incident(stocked)
    shown = ok(stocked("incidents", "show", incident[:8])).out
    assert f"incident    {incident}" in shown
    assert "credential  github-pat-ci (access_token)" in shown
    assert "root cause  -" in shown and "timeline    0 step(s)" in shown
    as_json = json.loads(ok(stocked("incidents", "show", incident[:6], "--json")).out)
    assert as_json["id"] == incident and as_json["response"] == [] and as_json["status"] == "open"


def test_edit_then_close_then_reopen_and_list_all_keeps_closed_ones(stocked) -> None:
    incident = open_incident(stocked)
    edited = ok(stocked("incidents", "edit", incident[:8], "--severity", "high", "--root-cause", ROOT_CAUSE,
                        "--prevention", PREVENTION))
    assert f"incident {incident[:8]} updated (prevention, root_cause, severity)" in edited.err
    assert f"incident {incident[:8]} closed" in ok(stocked("incidents", "close", incident[:8])).err
    assert listed(stocked) == []
    [closed] = listed(stocked, "--all")
    assert (closed["status"], closed["severity"], closed["root_cause"], closed["prevention"]) == (
        "closed", "high", ROOT_CAUSE, PREVENTION)
    assert closed["closed_at"] is not None
    assert "open again" in ok(stocked("incidents", "reopen", incident[:8])).err
    [reopened] = listed(stocked)
    assert (reopened["status"], reopened["closed_at"]) == ("open", None)


def test_export_writes_every_incident_to_a_private_file_or_the_named_ones_to_stdout(stocked, tmp_path) -> None:
    first = open_incident(stocked)
    second = open_incident(stocked, severity="low", impact="seen in a CI log")
    target = tmp_path / "incidents.json"
    result = ok(stocked("incidents", "export", "--output", str(target)))
    assert f"exported 2 incident(s) to {target}" in result.err and result.out == ""
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    documents = json.loads(target.read_text())
    assert {d["id"] for d in documents} == {first, second}
    for document in documents:
        assert {"timestamp", "severity", "credential_type", "impact", "response", "root_cause", "prevention",
                "timeline", "status", "source", "closed_at", "credential", "context"} <= set(document)
    only = json.loads(ok(stocked("incidents", "export", second[:8])).out)
    assert [d["id"] for d in only] == [second]
    everything = target.read_text() + json.dumps(only) + ok(stocked("audit", "export", "--jsonl")).out
    assert CANARY not in everything


@pytest.mark.parametrize(("args", "code", "mentions"), [
    (("close", "{id}"), 2, ("needs a root cause and prevention", "incidents edit")),
    (("edit", "{id}"), 2, ("nothing to change",)),
    (("edit", "{id}", "--severity", "urgent"), 2, ("a severity is one of: critical, high, medium, low",)),
    (("edit", "{id}", "--impact", "bell\x07"), 2, ("impact must not contain control characters",)),
    (("show", "zz"), 2, ("hex, 4 characters or more",)),
    (("show", "{missing}"), 4, ("no incident",)),
    (("export", "{missing}"), 4, ("no incident",)),
    (("open", "nope", "--severity", "high"), 4, ("no credential",)),
    (("open", "github-pat-ci", "--severity", "ghp_notasecret"), 2, ("a severity is one of",)),
])
def test_bad_input_is_one_stderr_line_and_changes_nothing(stocked, expect_error, args, code, mentions) -> None:
    incident = open_incident(stocked)
    missing = "0000" if not incident.startswith("0000") else "ffff"
    before = listed(stocked, "--all")
    result = stocked("incidents", *(arg.format(id=incident[:8], missing=missing) for arg in args))
    line = expect_error(result, code, mentions=mentions)
    assert "ghp_notasecret" not in line and result.stdout == b""
    assert listed(stocked, "--all") == before
