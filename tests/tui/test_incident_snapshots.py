"""Screenshot of the Incidents view: one open incident with a four-step timeline (one step
failed, one pending) above one closed incident, the open one highlighted.

Deterministic like ``test_agent_snapshots.py``: ``snapshot_app`` (frozen clock, UTC,
relative vault path) and incidents stored with fixed ids and times through the vault's
sealed records. Update after an intended change with:
pytest tests/tui/test_incident_snapshots.py --snapshot-update
"""

from __future__ import annotations

from aegis_tui.core.store.records import SealedRecords
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.lifecycle.incidents import INCIDENT_KIND, Incident, Step
from aegis_tui.core.vault import Vault
from aegis_tui.tui.screens.incidents_screen import IncidentsScreen

from .conftest import NOW, settle, unlock, wait_until

SIZE = (120, 40)
MINUTE = 60.0


def seed_incidents(vault: Vault) -> None:
    credentials = {c.name: c for c in Credentials(vault).list()}
    github, stripe = credentials["github-pat-ci"], credentials["stripe-test"]
    open_one = Incident(
        "3f9a1c2e7b5d4086", github.name, github.id, github.context, str(github.kind), NOW - 30 * MINUTE,
        severity="critical", source="scan", impact="token printed in a public CI log for 20 minutes",
        timeline=(Step(NOW - 30 * MINUTE, "marked exposed"),
                  Step(NOW - 29 * MINUTE, "revoked 2 grants", detail="claude · CI fix, nightly backup"),
                  Step(NOW - 28 * MINUTE, "revoke hook ran", "failed", "github-revoke: exit status 1"),
                  Step(NOW - 27 * MINUTE, "rotated to version 4", "pending", "old version valid 24 hours")))
    closed_one = Incident(
        "a07c55e1d2b34f19", stripe.name, stripe.id, stripe.context, str(stripe.kind), NOW - 3 * 86400,
        NOW - 2 * 86400, "closed", "medium", "review", impact="test key shared in a chat",
        root_cause="pasted into a support ticket", prevention="agents get keys through aegis-vault run only",
        timeline=(Step(NOW - 3 * 86400, "marked exposed"), Step(NOW - 3 * 86400 + 300, "rotated to version 2")))
    records = SealedRecords(vault, INCIDENT_KIND)
    with vault.store.transaction():
        for incident in (open_one, closed_one):
            records.insert(incident.to_dict())


def test_incidents_view(snap_compare, snapshot_app):
    async def run_before(pilot) -> None:
        await unlock(pilot)
        seed_incidents(pilot.app.vault)
        await pilot.press("I")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, IncidentsScreen), what="the incidents view")
        await wait_until(pilot, lambda: len(pilot.app.screen.rows) == 2, what="the rows")
        await settle(pilot)

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)
