"""The rotation manager against a real vault file and a clock the test moves: credentials
become due and are rotated, old versions work inside their overlap and not after, provider
hooks (real subprocesses) succeed, fail and hang, and missed runs are caught up."""

from __future__ import annotations

import sys
from pathlib import Path
from types import MappingProxyType

import pytest

from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import RefusedError
from aegis_tui.core.lifecycle.policy import Hook, PolicyFile
from aegis_tui.core.lifecycle.rotation import RotationManager
from aegis_tui.core.models import RotationState, Status
from aegis_tui.core.secret import Secret

DAY = 86400.0
OLD = "old-value-3f9c2a"


def hook_script(folder: Path, name: str, body: str) -> tuple[str, ...]:
    """A provider hook: a small Python program run as a real subprocess."""
    path = folder / f"{name}.py"
    path.write_text("import sys, os, time\n" + body)
    return (sys.executable, str(path))


def manager_with(made, hooks: dict[str, Hook] | None = None) -> RotationManager:
    return RotationManager(made.vault, PolicyFile(hooks=MappingProxyType(hooks or {})))


def add(made, name: str, *, period: int = 30, policy: dict | None = None, overlap: int = 3600) -> Credentials:
    credentials = Credentials(made.vault)
    credentials.add(name, Secret(OLD), rotation_days=period)
    credentials.edit(name, rotation_policy=policy or {"method": "generate", "length": 40, "prefix": "sk_"},
                     overlap_seconds=overlap)
    return credentials


def audit_ops(made) -> list[str]:
    return [entry.operation for entry in made.vault.audit.entries()]


def test_a_generate_credential_is_rotated_by_the_manager_once_its_period_ends(made) -> None:
    credentials = add(made, "api")
    manager = manager_with(made)
    made.clock.advance(29 * DAY)
    assert manager.tick().rotated == []  # due soon, not yet overdue
    assert manager.status()[0].state is RotationState.DUE
    made.clock.advance(DAY)
    [outcome] = manager.tick().rotated
    assert (outcome.ok, outcome.version) == (True, 2)
    value = credentials.reveal("api").reveal_text()
    assert value.startswith("sk_") and len(value) == 43 and value != OLD
    assert manager.status()[0].state is RotationState.OK
    assert "rotation.scheduled" in audit_ops(made)
    assert manager.tick().rotated == []  # nothing left to do


def test_the_old_version_works_inside_the_overlap_window_and_not_after(made) -> None:
    credentials = add(made, "api", overlap=2 * 3600)
    manager = manager_with(made)
    made.clock.advance(30 * DAY)
    manager.tick()
    assert credentials.reveal("api", version=1).reveal_text() == OLD
    assert Credentials(made.vault).values(active_only=True)["api"][0][0] == 1  # still masked in run output
    made.clock.advance(2 * 3600)
    report = manager.tick()
    assert report.retired == ["api v1"]
    with pytest.raises(RefusedError, match="retired"):
        credentials.reveal("api", version=1)
    assert [version for version, _ in credentials.values(active_only=True)["api"]] == [2]
    assert manager.tick().retired == []  # each version's end is handled once


def test_missed_runs_are_caught_up_once_at_the_next_tick(made) -> None:
    credentials = add(made, "api", period=30)
    manager = manager_with(made)
    made.clock.advance(95 * DAY)  # the machine was off for three periods
    [outcome] = manager.tick().rotated
    assert outcome.ok and credentials.find("api").current_version == 2
    entry = [e for e in made.vault.audit.entries() if e.operation == "rotation.scheduled"][-1]
    assert entry.detail["reason"] == "scheduled: due 65 day(s) ago"
    assert manager.tick().rotated == []


def test_rotate_due_also_rotates_what_is_merely_due(made) -> None:
    add(made, "api", period=30)
    manager = manager_with(made)
    made.clock.advance(20 * DAY)
    assert manager.tick().rotated == []
    assert [o.name for o in manager.tick(include_due=True).rotated] == ["api"]


def test_a_command_hook_that_succeeds_gets_the_old_value_on_stdin_and_its_output_becomes_current(made, tmp_path) -> None:
    seen = tmp_path / "seen"
    rotate = hook_script(tmp_path, "rotate", f"""
old = sys.stdin.read()
open({str(seen)!r}, "w").write(old + "|" + os.environ["AEGIS_CREDENTIAL"])
print("new-from-provider-77aa")
""")
    credentials = add(made, "stripe", policy={"method": "command", "hook": "stripe"})
    manager = manager_with(made, {"stripe": Hook("stripe", rotate)})
    made.clock.advance(30 * DAY)
    [outcome] = manager.tick().rotated
    assert outcome.ok, outcome.detail
    assert seen.read_text() == f"{OLD}|stripe"
    assert credentials.reveal("stripe").reveal_text() == "new-from-provider-77aa"


def test_a_failing_hook_leaves_the_current_version_untouched_and_is_audited_masked(made, tmp_path) -> None:
    rotate = hook_script(tmp_path, "fail", """
old = sys.stdin.read()
sys.stderr.write("provider said no to " + old + "\\n")
sys.exit(3)
""")
    credentials = add(made, "stripe", policy={"method": "command", "hook": "stripe"})
    manager = manager_with(made, {"stripe": Hook("stripe", rotate)})
    made.clock.advance(30 * DAY)
    [outcome] = manager.tick().rotated
    assert not outcome.ok and "status 3" in outcome.detail
    assert credentials.find("stripe").current_version == 1
    assert credentials.reveal("stripe").reveal_text() == OLD
    failed = [e for e in made.vault.audit.entries() if e.operation == "rotation.failed"][-1]
    assert (failed.outcome, failed.risk) == ("failed", "high")
    assert "provider said no to" in failed.detail["output"]
    assert OLD not in repr(failed)  # the hook printed the old value: masked before the audit log


def test_a_hanging_hook_is_killed_at_its_timeout_and_nothing_changes(made, tmp_path) -> None:
    rotate = hook_script(tmp_path, "hang", "time.sleep(60)\n")
    credentials = add(made, "stripe", policy={"method": "command", "hook": "stripe"})
    manager = manager_with(made, {"stripe": Hook("stripe", rotate, timeout=1.0)})
    made.clock.advance(30 * DAY)
    [outcome] = manager.tick().rotated
    assert not outcome.ok and "timed out" in outcome.detail
    assert credentials.find("stripe").current_version == 1


def test_a_hook_missing_from_the_policy_file_fails_the_rotation_with_its_name(made) -> None:
    credentials = add(made, "stripe", policy={"method": "command", "hook": "gone"})
    made.clock.advance(30 * DAY)
    [outcome] = manager_with(made).tick().rotated
    assert not outcome.ok and "no hook named 'gone'" in outcome.detail
    assert credentials.find("stripe").current_version == 1


def test_the_revoke_hook_runs_for_the_old_value_when_its_overlap_ends(made, tmp_path) -> None:
    revoked = tmp_path / "revoked"
    rotate = hook_script(tmp_path, "rotate", "sys.stdin.read(); print('second-value-5521')\n")
    revoke = hook_script(tmp_path, "revoke", f"open({str(revoked)!r}, 'a').write(sys.stdin.read() + '\\n')\n")
    add(made, "stripe", policy={"method": "command", "hook": "stripe"}, overlap=3600)
    manager = manager_with(made, {"stripe": Hook("stripe", rotate, revoke)})
    made.clock.advance(30 * DAY)
    manager.tick()
    assert not revoked.exists()  # inside the overlap the old value must keep working
    made.clock.advance(3600)
    manager.tick()
    assert revoked.read_text() == OLD + "\n"
    assert "revoke-hook" in audit_ops(made)


def test_manual_credentials_are_reminded_not_rotated(made) -> None:
    credentials = add(made, "bank", policy={"method": "manual"})
    manager = manager_with(made)
    made.clock.advance(31 * DAY)
    report = manager.tick()
    assert report.rotated == [] and [r.name for r in report.reminders] == ["bank"]
    assert report.reminders[0].needs_human and report.reminders[0].days_left == -1
    assert credentials.find("bank").current_version == 1
    assert "needs a human" in manager.rotate_now("bank").detail


def test_status_lists_overdue_due_and_expiring_first(made) -> None:
    credentials = Credentials(made.vault)
    credentials.add("fresh", Secret("a-value-1"), rotation_days=90)
    credentials.add("late", Secret("a-value-2"), rotation_days=10)
    credentials.add("ending", Secret("a-value-3"), expires="2025-06-25")  # 10 days after the test clock's start
    credentials.add("plain", Secret("a-value-4"))
    made.clock.advance(11 * DAY)
    rows = manager_with(made).status()
    assert [r.name for r in rows] == ["late", "ending", "fresh"]  # no period and no expiry: not listed
    assert (rows[0].state, rows[0].days_left) == (RotationState.OVERDUE, -1)
    assert rows[1].expiry_days == -1 and rows[1].attention
    assert not rows[2].attention


def test_revoked_credentials_are_neither_rotated_nor_listed(made) -> None:
    credentials = add(made, "api")
    credentials.set_status("api", Status.REVOKED)
    manager = manager_with(made)
    made.clock.advance(40 * DAY)
    assert manager.tick().rotated == [] and manager.status() == []
