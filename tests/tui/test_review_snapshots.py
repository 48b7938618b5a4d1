"""A screenshot of the access review: flagged rows first, a few decisions taken.

Deterministic like the other snapshots (``snapshot_app``: the demo vault, frozen clock,
``live=False``, UTC, fixed actor), with the Grants view's fixed-id sessions and grants
(among them a standing ``service:aws`` grant), so the flags and the details pane do not
depend on chance. Update after an intended change with:
pytest tests/tui/test_review_snapshots.py --snapshot-update
"""

from __future__ import annotations

from aegis_tui.tui.screens.review_cells import standing
from aegis_tui.tui.screens.review_screen import ReviewScreen

from .conftest import settle, unlock, wait_until
from .test_agent_snapshots import seed_grants

SIZE = (120, 40)


async def review_showing(pilot) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    await unlock(pilot)
    seed_grants(app.vault)
    await pilot.press("V")
    await wait_until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.review is not None,
                     what="the review to load")
    await settle(pilot)
    await pilot.press("k", "o", "x", "down", "k")  # each decision moves the cursor on
    covered = next(index for index, row in enumerate(app.screen.rows) if standing(row))
    await pilot.press("ctrl+home", *["down"] * covered)  # the details of a row under the standing grant
    await settle(pilot)


def test_review_screen(snap_compare, snapshot_app):
    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=review_showing)
