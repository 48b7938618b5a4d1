"""The usage index: an incremental, sealed summary of who used which credential."""

from __future__ import annotations

import pytest

from aegis_tui.core.audit import Risk
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.lifecycle.usage import INDEX_ID, KEEP_RECENT, USAGE_KIND, UsageIndex
from aegis_tui.core.errors import RefusedError
from aegis_tui.core.models import Status
from aegis_tui.core.secret import Secret


def _read_as(vault, name: str, session: str, program: str = "agent") -> None:  # type: ignore[no-untyped-def]
    """A read by an agent process in a session: the audit entry a broker would write."""
    actor = vault.actor._replace(session_id=session, program=program)
    Credentials(vault, actor).reveal(name)


def test_reads_count_as_uses_with_last_time_sessions_and_agents(vault, creds, kit) -> None:  # type: ignore[no-untyped-def]
    creds.add("github", Secret("ghp_value"))
    _read_as(vault, "github", "sess-a", "claude")
    vault.clock.advance(kit.DAY)  # type: ignore[attr-defined]
    _read_as(vault, "github", "sess-b", "codex")
    index = UsageIndex(vault)
    index.refresh()
    usage = index.get("github")
    assert usage.uses == 2
    assert usage.last_used == vault.clock()
    assert dict(usage.sessions) == {"sess-a": kit.START, "sess-b": kit.START + kit.DAY}
    assert set(usage.agents) == {"claude", "codex"}


def test_a_never_used_credential_has_an_empty_summary(vault, creds) -> None:  # type: ignore[no-untyped-def]
    creds.add("idle", Secret("v"))
    index = UsageIndex(vault)
    index.refresh()
    assert index.get("idle").uses == 0 and index.get("idle").last_used is None


def test_a_refused_read_of_a_revoked_credential_is_not_a_use(vault, creds) -> None:  # type: ignore[no-untyped-def]
    creds.add("old", Secret("v"))
    creds.set_status("old", Status.REVOKED)
    with pytest.raises(RefusedError):
        creds.reveal("old")
    index = UsageIndex(vault)
    index.refresh()
    assert index.get("old").uses == 0


def test_the_vaults_own_upkeep_reads_are_not_uses(vault, creds) -> None:  # type: ignore[no-untyped-def]
    creds.add("mfa", Secret("JBSWY3DPEHPK3PXP"))
    creds.reveal("mfa", purpose="tui.totp")  # the app works out the code on unlock
    creds.reveal("mfa", purpose="rotation.hook")  # the rotation manager feeds a provider hook
    index = UsageIndex(vault)
    index.refresh()
    assert index.get("mfa").uses == 0
    creds.reveal("mfa", purpose="tui.copy")
    index.refresh()
    assert index.get("mfa").uses == 1


def test_refresh_reads_only_entries_written_since_the_last_one(vault, creds) -> None:  # type: ignore[no-untyped-def]
    creds.add("db", Secret("v"))
    creds.reveal("db")
    index = UsageIndex(vault)
    first = index.refresh()
    assert first == vault.store.last_audit().seq
    assert index.refresh() == 0
    creds.reveal("db")
    creds.reveal("db")
    assert index.refresh() == 2
    assert index.get("db").uses == 3
    assert index.through_seq == vault.store.last_audit().seq


def test_a_fresh_index_object_continues_from_the_stored_summary(vault, creds) -> None:  # type: ignore[no-untyped-def]
    creds.add("db", Secret("v"))
    creds.reveal("db")
    UsageIndex(vault).refresh()
    creds.reveal("db")
    later = UsageIndex(vault)
    assert later.refresh() == 1
    assert later.get("db").uses == 2


def test_a_rename_carries_the_history_to_the_new_name(vault, creds) -> None:  # type: ignore[no-untyped-def]
    creds.add("old-name", Secret("v"))
    creds.reveal("old-name")
    index = UsageIndex(vault)
    index.refresh()
    creds.edit("old-name", name="new-name")
    creds.reveal("new-name")
    index.refresh()
    assert index.get("old-name").uses == 0
    assert index.get("new-name").uses == 2


def test_a_destroyed_credential_leaves_the_index_and_a_new_one_starts_clean(vault, creds) -> None:  # type: ignore[no-untyped-def]
    creds.add("temp", Secret("v"))
    creds.reveal("temp")
    creds.destroy("temp")
    creds.add("temp", Secret("w"))
    index = UsageIndex(vault)
    index.refresh()
    assert index.get("temp").uses == 0


def test_leak_findings_are_counted_with_their_last_time(vault, creds, kit) -> None:  # type: ignore[no-untyped-def]
    creds.add("aws", Secret("v"), context="prod")
    for _ in range(2):
        vault.audit.append("leak.found", vault.actor, risk=Risk.HIGH, target="aws", context="prod",
                           detail={"via": "scan", "count": 1})
        vault.clock.advance(kit.DAY)  # type: ignore[attr-defined]
    index = UsageIndex(vault)
    index.refresh()
    usage = index.get("aws")
    assert (usage.leaks, usage.last_leak, usage.uses) == (2, kit.START + kit.DAY, 0)


def test_only_the_most_recent_sessions_are_kept(vault, creds, kit) -> None:  # type: ignore[no-untyped-def]
    creds.add("busy", Secret("v"))
    for number in range(KEEP_RECENT + 5):
        _read_as(vault, "busy", f"s{number:02d}")
        vault.clock.advance(1)  # type: ignore[attr-defined]
    index = UsageIndex(vault)
    index.refresh()
    assert set(index.get("busy").sessions) == {f"s{n:02d}" for n in range(5, KEEP_RECENT + 5)}


def test_the_index_is_one_sealed_record_that_names_no_credential_in_clear(made, creds) -> None:  # type: ignore[no-untyped-def]
    creds.add("very-secret-name", Secret("v"))
    creds.reveal("very-secret-name")
    UsageIndex(made.vault).refresh()
    rows = made.vault.store.list_records(USAGE_KIND)
    assert [row.id for row in rows] == [INDEX_ID]
    assert b"very-secret-name" not in rows[0].sealed


def test_a_long_lived_index_adopts_what_another_process_stored_without_counting_twice(made, creds, kit) -> None:  # type: ignore[no-untyped-def]
    creds.add("db", Secret("v"))
    broker = UsageIndex(made.vault)
    creds.reveal("db")
    broker.refresh()
    other_vault = kit.open_unlocked(made.path, made.clock)
    try:
        creds.reveal("db")
        UsageIndex(other_vault).refresh()  # another process catches up first
        creds.reveal("db")
        broker.refresh()
    finally:
        other_vault.close()
    assert broker.get("db").uses == 3
    assert broker.refresh() == 0
