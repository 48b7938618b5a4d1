"""Screenshot of the rotation view over the demo vault: overdue and due credentials first,
each with its days and how its next value is made (a generate policy and a provider hook
among the manual ones), expiring certificates flagged.

Deterministic like ``test_agent_snapshots.py`` (``snapshot_app``: frozen clock, UTC,
relative vault path). Update after an intended change with:
pytest tests/tui/test_rotation_snapshots.py --snapshot-update
"""

from __future__ import annotations

from aegis_tui.core.credentials import Credentials
from aegis_tui.tui.screens.rotation_screen import RotationScreen

from .conftest import settle, unlock, wait_until

SIZE = (120, 40)


def test_rotation_view(snap_compare, snapshot_app):
    async def run_before(pilot) -> None:
        await unlock(pilot)
        credentials = Credentials(pilot.app.vault)
        credentials.edit("aws-prod-deployer", rotation_policy={"method": "command", "hook": "aws-iam"})
        credentials.edit("github-deploy", rotation_policy={"method": "generate", "length": 40, "prefix": "gd_"})
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, RotationScreen), what="the rotation view")
        await wait_until(pilot, lambda: pilot.app.screen.rows, what="the rows")
        await settle(pilot)

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)
