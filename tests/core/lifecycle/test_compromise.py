"""Compromise recovery runs every step against a real vault and real hook processes, and
the incident's timeline shows each step with its time and outcome."""

from __future__ import annotations

import sys
from pathlib import Path
from types import MappingProxyType

from aegis_tui.core.agents.grants import Grants
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.lifecycle.compromise import recover, recover_leaks
from aegis_tui.core.lifecycle.incidents import Incidents
from aegis_tui.core.lifecycle.policy import Hook, PolicyFile
from aegis_tui.core.lifecycle.rotation import RotationManager
from aegis_tui.core.models import Status, VersionState
from aegis_tui.core.scan.findings import KNOWN, Finding
from aegis_tui.core.secret import Secret

LEAKED = "leaked-value-7c1d"


def hooks(tmp_path: Path, *, revoke_fails: bool = False) -> PolicyFile:
    rotate = tmp_path / "rotate.py"
    rotate.write_text("import sys\nsys.stdin.read()\nprint('fresh-value-91ab')\n")
    revoke = tmp_path / "revoke.py"
    revoke.write_text("import sys\nopen(sys.argv[1], 'w').write(sys.stdin.read())\n"
                      + ("sys.exit(4)\n" if revoke_fails else ""))
    hook = Hook("stripe", (sys.executable, str(rotate)), (sys.executable, str(revoke), str(tmp_path / "revoked")))
    return PolicyFile(hooks=MappingProxyType({"stripe": hook}))


def leaked_credential(made, policy: dict) -> Credentials:
    credentials = Credentials(made.vault)
    credentials.add("stripe-live", Secret(LEAKED), service="stripe", tags=["payments"])
    credentials.edit("stripe-live", rotation_policy=policy)
    grants = Grants(made.vault)
    grants.create(credential=credentials.find("stripe-live"), reason="standing")
    grants.create(selector="service:stripe", reason="by service")
    grants.create(selector="tag:payments", reason="by tag")
    credentials.add("other", Secret("other-value-1"))
    grants.create(credential=credentials.find("other"), reason="unrelated")
    return credentials


def test_recovery_runs_every_step_and_the_incident_shows_the_timeline(made, tmp_path) -> None:
    credentials = leaked_credential(made, {"method": "command", "hook": "stripe"})
    manager = RotationManager(made.vault, hooks(tmp_path))
    made.clock.advance(60)
    incident = recover(made.vault, "stripe-live", source="scan", manager=manager)

    assert [(s.step, s.outcome) for s in incident.timeline] == [
        ("marked exposed", "ok"),
        ("revoked 3 grant(s)", "ok"),
        ("rotated to version 2, old value retired at once", "ok"),
        ("revoke hook ran for version 1", "ok"),
    ]
    assert all(step.at == made.clock.now for step in incident.timeline)
    assert (incident.status, incident.severity, incident.source) == ("open", "high", "scan")
    assert credentials.reveal("stripe-live").reveal_text() == "fresh-value-91ab"
    assert credentials.versions("stripe-live")[0].state is VersionState.RETIRED  # no overlap for a leaked value
    assert (tmp_path / "revoked").read_text() == LEAKED  # the provider was asked to revoke the old one
    grants = Grants(made.vault).list(include_inactive=True)
    assert {g.reason for g in grants if g.revoked_at is not None} == {"standing", "by service", "by tag"}
    assert [g.reason for g in grants if g.revoked_at is None] == ["unrelated"]
    assert Incidents(made.vault).for_credential(incident.credential_id) == [incident]
    assert "status.exposed" in [e.operation for e in made.vault.audit.entries()]


def test_a_manual_credential_is_left_exposed_with_a_pending_rotation_step(made, tmp_path) -> None:
    credentials = leaked_credential(made, {"method": "manual"})
    incident = recover(made.vault, "stripe-live", manager=RotationManager(made.vault, hooks(tmp_path)))
    assert [(s.step, s.outcome) for s in incident.timeline][-1] == ("rotation", "pending")
    assert "aegis-vault rotate 'stripe-live'" in incident.timeline[-1].detail
    assert credentials.find("stripe-live").status is Status.EXPOSED
    assert credentials.find("stripe-live").current_version == 1


def test_a_failing_revoke_hook_is_a_failed_step_not_a_stop(made, tmp_path) -> None:
    leaked_credential(made, {"method": "command", "hook": "stripe"})
    manager = RotationManager(made.vault, hooks(tmp_path, revoke_fails=True))
    incident = recover(made.vault, "stripe-live", manager=manager)
    last = incident.timeline[-1]
    assert (last.step, last.outcome) == ("revoke hook ran for version 1", "failed")
    assert "status 4" in last.detail


def test_a_generated_credential_without_hooks_asks_for_provider_revocation(made, tmp_path) -> None:
    credentials = leaked_credential(made, {"method": "generate", "length": 24})
    incident = recover(made.vault, "stripe-live", manager=RotationManager(made.vault, PolicyFile()))
    assert [(s.step, s.outcome) for s in incident.timeline][2:] == [
        ("rotated to version 2, old value retired at once", "ok"),
        ("provider revocation of the old value", "pending"),
    ]
    assert credentials.find("stripe-live").status is Status.ACTIVE  # the new value is not exposed


def test_no_step_of_recovery_writes_the_leaked_value_anywhere(made, tmp_path) -> None:
    leaked_credential(made, {"method": "command", "hook": "stripe"})
    incident = recover(made.vault, "stripe-live", manager=RotationManager(made.vault, hooks(tmp_path)))
    assert LEAKED not in repr(incident)
    assert LEAKED not in repr(list(made.vault.audit.entries()))
    assert LEAKED.encode() not in made.path.read_bytes()


def known_finding(name: str, version: int) -> Finding:
    return Finding(detector=KNOWN, rule_id="known-value", description="", path="build.log", line=3, column=1,
                   start=10, end=20, fingerprint=f"build.log:known:{name}", credential=name, version=version,
                   encoding="raw")


def test_a_leaked_current_value_is_recovered_automatically_once(made, tmp_path) -> None:
    credentials = leaked_credential(made, {"method": "manual"})
    manager = RotationManager(made.vault, hooks(tmp_path))
    [incident] = recover_leaks(made.vault, [known_finding("stripe-live", 1)], via="scan", manager=manager)
    assert (incident.credential, incident.source) == ("stripe-live", "scan")
    assert credentials.find("stripe-live").status is Status.EXPOSED
    # the same leak scanned again: a human already has the open incident
    assert recover_leaks(made.vault, [known_finding("stripe-live", 1)], via="scan", manager=manager) == []


def test_a_leaked_retired_value_opens_no_incident(made, tmp_path) -> None:
    credentials = leaked_credential(made, {"method": "generate", "length": 24})
    credentials.rotate("stripe-live", Secret("second-value-1"), overlap_seconds=0)
    manager = RotationManager(made.vault, hooks(tmp_path))
    assert recover_leaks(made.vault, [known_finding("stripe-live", 1)], via="scan", manager=manager) == []
    assert Incidents(made.vault).list() == []


def test_the_policy_file_can_turn_automatic_recovery_off(made, tmp_path) -> None:
    leaked_credential(made, {"method": "generate", "length": 24})
    manager = RotationManager(made.vault, hooks(tmp_path)._replace(auto_recover=False))
    assert recover_leaks(made.vault, [known_finding("stripe-live", 1)], via="scan", manager=manager) == []
    assert Credentials(made.vault).find("stripe-live").current_version == 1
