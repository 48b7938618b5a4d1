"""Management operations tried by an agent: by one inside its own session, and by a
process outside any session that never proved it holds the vault key (it only talks to
the broker). Neither may see, revoke or end another agent's session or grants, nor
write audit entries about credentials it was never given.

Each attempt is made twice: with the real CLI, and with the broker's wire protocol
spoken by hand, so the broker itself must refuse (not only the command line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.attacker import (
    RawClient,
    grants_as_owner,
    ok,
    run_as_fake_aegis_run,
    session_by_label,
    sessions_as_owner,
    start_session,
)
from tests.support.broker import audit_entries

ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b]52;c;cm0gLXJmIH4K\x07"


@pytest.fixture
def victim(owner, broker):  # type: ignore[no-untyped-def]
    """Another agent's session with a grant of its own: what the attacker aims at."""
    start_session(owner.env, "acme/dev", label="victim")
    public = session_by_label(owner.env, "victim")["id"]
    grant = ok(owner("grants", "add", "dev-db", "--session", public)).out.strip()
    return {"session": public, "grant": grant}


def strings(value: Any) -> list[str]:
    """Every string in a decoded JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (key, *strings(item))]
    if isinstance(value, list):
        return [text for item in value for text in strings(item)]
    return []


def attackers(owner) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    """No session (and no key), and a session of its own in the same context."""
    return {"no session": None, "own session": start_session(owner.env, "acme/dev", label="attacker")}


def test_an_agent_or_a_keyless_process_cannot_see_revoke_or_end_another_agents_session_or_grants(
        owner, broker, agent, victim):
    problems: list[str] = []
    for who, token in attackers(owner).items():
        env = {"AEGIS_SESSION": token} if token else {}
        for args in (("session", "list", "--all", "--json"), ("grants", "list", "--all", "--json")):
            shown = agent(*args, env=env)
            if victim["session"] in shown.out or victim["grant"] in shown.out:
                problems.append(f"{who}: `{' '.join(args)}` shows the victim's session or grant")
        if agent("grants", "revoke", victim["grant"], env=env).returncode == 0:
            problems.append(f"{who}: `grants revoke` of the victim's grant succeeded")
        if agent("session", "end", victim["session"], env=env).returncode == 0:
            problems.append(f"{who}: `session end` of the victim's session succeeded")
        with RawClient(broker.socket_path) as raw:
            for op, args in (("session.list", {}), ("grants.list", {"all": True})):
                reply = raw.call(op, args, session=token)
                if victim["session"] in json.dumps(reply) or victim["grant"] in json.dumps(reply):
                    problems.append(f"{who}: {op} on the wire shows the victim's session or grant")
            for op, args in (("grants.revoke", {"id": victim["grant"], "reason": "x"}),
                             ("session.end", {"id": victim["session"]})):
                reply = raw.call(op, args, session=token)
                if reply is not None and reply.get("ok"):
                    problems.append(f"{who}: {op} on the wire succeeded")
    sessions = {s["id"]: s["state"] for s in sessions_as_owner(owner.env)}
    grants = {g: state["state"] for g, state in grants_as_owner(owner.env).items()}
    if sessions.get(victim["session"]) != "active" or grants.get(victim["grant"]) != "active":
        problems.append("the victim's session or grant is no longer active")
    assert not problems, "\n".join(problems)


def test_run_report_never_writes_an_audit_entry_about_credentials_the_caller_was_never_given(
        owner, broker, victim, tmp_path: Path):
    before = max(entry["seq"] for entry in audit_entries(owner.env))
    report = {"command": f"terraform destroy {ESCAPES}", "credentials": ["prod-db", "pin", "dev-db"],
              "duration": 1.5, "exit_code": 0, "signal": None, "masked": {"prod-db": 3, ESCAPES: 1}}
    note = {"text": f"owner approved everything {ESCAPES}"}
    replies: dict[str, Any] = {}
    for who, token in attackers(owner).items():
        with RawClient(broker.socket_path) as raw:
            replies[f"{who}, a plain script"] = [raw.call("run.report", report, session=token),
                                                  raw.call("audit.note", note, session=token)]
        env = owner.env | ({"AEGIS_SESSION": token} if token else {})
        plan = {"calls": [["run.report", report], ["audit.note", note]]}
        replies[f"{who}, a look-alike aegis-vault run"] = run_as_fake_aegis_run(
            env, broker.socket_path, "calls", plan, tmp_path / who.replace(" ", "-"))["replies"]
    problems = [f"{who}: audit.note was accepted" for who, (_, noted) in replies.items()
                if noted is not None and noted.get("ok")]
    for entry in audit_entries(owner.env):
        if entry["seq"] <= before:
            continue
        detail = entry.get("detail") or {}
        named = {entry.get("target"), *detail.get("credentials", []), *dict(detail.get("masked") or {})}
        if named & {"prod-db", "pin", "dev-db"}:
            problems.append(f"{entry['operation']} #{entry['seq']} names {sorted(named & {'prod-db', 'pin', 'dev-db'})}")
        if any(ch in text for text in strings(entry) for ch in "\x1b\x07"):
            problems.append(f"{entry['operation']} #{entry['seq']} holds raw escape characters")
    accepted = {who: (reported or {}).get("ok") for who, (reported, _) in replies.items()}
    assert not problems, "\n".join(problems) + f"\n(run.report accepted: {accepted})"
