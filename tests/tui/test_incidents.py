"""The Incidents view: opened with ``I``, an incident's assessment and timeline under the
table, editing through the dialog (whose errors stay in the dialog), closing (refused
until root cause and prevention are written), reopening, and exporting to a file."""

from __future__ import annotations

import json
import os
import stat

from textual.widgets import Input, OptionList

from aegis_tui.core.credentials import Credentials
from aegis_tui.core.lifecycle.incidents import Incident, Incidents
from aegis_tui.tui.screens.incident_modals import IncidentEditModal, IncidentExportModal
from aegis_tui.tui.screens.incidents_screen import IncidentsScreen
from aegis_tui.tui.screens.vault_screen import VaultScreen

from aegis_tui.tui.when import clock_time

from .conftest import NOW, plain, settle, toasts, type_into, unlocked, wait_until

ROOT_CAUSE = "debug log printed the environment"
PREVENTION = "run masks output; pre-commit scan added"
MINUTES = [clock_time(NOW + 60 * minute, NOW) for minute in range(3)]  # local time, as the view shows it


def open_with_timeline(built) -> Incident:  # type: ignore[no-untyped-def]
    """An open incident for github-pat-ci with three steps, one minute apart."""
    incidents = Incidents(built.vault)
    incident = incidents.open(Credentials(built.vault).find("github-pat-ci"), severity="critical", source="scan",
                              impact="token in a public CI log")
    for minute, (step, outcome) in enumerate((("marked exposed", "ok"), ("revoked 2 grants", "ok"),
                                              ("revoke hook ran", "failed"))):
        built.clock.pinned = NOW + 60 * minute
        incidents.add_step(incident.id, step, outcome, detail="exit status 1" if outcome == "failed" else "")
    return incidents.get(incident.id)


def lines(app) -> list[str]:  # type: ignore[no-untyped-def]
    listing = app.screen.query_one("#agent-list", OptionList)
    return [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]


def detail(app) -> str:  # type: ignore[no-untyped-def]
    return plain(app.screen.query_one("#agent-detail"))


async def replace_text(pilot, selector: str, text: str) -> None:  # type: ignore[no-untyped-def]
    """Paste ``text`` over a field's long value (pressing backspace for each character is slow)."""
    pilot.app.screen.query_one(selector, Input).value = ""
    await type_into(pilot, selector, text)


async def press(pilot, *keys: str) -> None:  # type: ignore[no-untyped-def]
    await pilot.press(*keys)
    await settle(pilot)


async def test_I_opens_the_view_with_the_incident_and_its_timeline_and_escape_goes_back(make_app) -> None:
    built = make_app()
    async with unlocked(built.app) as pilot:
        incident = open_with_timeline(built)
        await press(pilot, "I")
        assert isinstance(built.app.screen, IncidentsScreen)
        await wait_until(pilot, lambda: len(lines(built.app)) == 1, what="the incident row")
        assert lines(built.app)[0].split() == [MINUTES[0], "✖", "critical", "github-pat-ci", "acme/dev", "●", "open",
                                               "3", "scan"]
        shown = detail(built.app)
        assert f"{incident.short_id} · github-pat-ci (access_token) · acme/dev · opened {MINUTES[0]} by scan" in shown
        assert "impact     token in a public CI log" in shown and "root cause — not written yet" in shown
        assert "timeline   3 step(s)" in shown
        for minute, line in zip(MINUTES, ("✓ ok      marked exposed", "✓ ok      revoked 2 grants",
                                          "✖ failed  revoke hook ran · exit status 1")):
            assert f"{minute}  {line}" in shown
        assert "1 open of 1 incidents" in plain(built.app.screen.query_one("#agent-top"))
        await press(pilot, "escape")
        assert isinstance(built.app.screen, VaultScreen)


async def test_close_is_refused_until_the_edit_dialog_fills_root_cause_and_prevention(make_app) -> None:
    built = make_app()
    async with unlocked(built.app) as pilot:
        incident = open_with_timeline(built)
        await press(pilot, "I")
        await wait_until(pilot, lambda: len(lines(built.app)) == 1, what="the incident row")

        await press(pilot, "c")
        assert any("needs a root cause and prevention before it closes" in toast for toast in toasts(built.app))
        assert Incidents(built.vault).get(incident.id).is_open

        await press(pilot, "e")
        assert isinstance(built.app.screen, IncidentEditModal)
        await type_into(pilot, "#incident-root_cause", ROOT_CAUSE)
        await type_into(pilot, "#incident-prevention", "p" * 2001)
        await pilot.click("#incident-save")
        await settle(pilot)
        assert isinstance(built.app.screen, IncidentEditModal)  # the error stays in the dialog
        assert "prevention is at most 2000 characters" in plain(built.app.screen.query_one("#incident-error"))
        assert Incidents(built.vault).get(incident.id).root_cause == ""  # nothing saved

        await replace_text(pilot, "#incident-prevention", PREVENTION)
        await pilot.click("#incident-save")
        await settle(pilot)
        assert isinstance(built.app.screen, IncidentsScreen)
        saved = Incidents(built.vault).get(incident.id)
        assert (saved.root_cause, saved.prevention, saved.severity) == (ROOT_CAUSE, PREVENTION, "critical")
        await wait_until(pilot, lambda: ROOT_CAUSE in detail(built.app), what="the saved root cause")

        built.clock.pinned = NOW + 3600
        await press(pilot, "c")
        assert f"Closed incident {incident.short_id}." in toasts(built.app)
        await wait_until(pilot, lambda: "✓ closed" in lines(built.app)[0], what="the closed row")
        assert Incidents(built.vault).get(incident.id).closed_at == NOW + 3600
        assert built.app.screen.check_action("edit", ()) is False and built.app.screen.check_action("close", ()) is False

        await press(pilot, "r")
        await wait_until(pilot, lambda: "● open" in lines(built.app)[0], what="the reopened row")
        assert Incidents(built.vault).get(incident.id).is_open


async def test_escape_in_the_edit_dialog_changes_nothing(make_app) -> None:
    built = make_app()
    async with unlocked(built.app) as pilot:
        incident = open_with_timeline(built)
        await press(pilot, "I")
        await wait_until(pilot, lambda: len(lines(built.app)) == 1, what="the incident row")
        await press(pilot, "e")
        await type_into(pilot, "#incident-root_cause", ROOT_CAUSE)
        await press(pilot, "escape")
        assert isinstance(built.app.screen, IncidentsScreen)
        assert Incidents(built.vault).get(incident.id) == incident


async def test_w_exports_every_incident_to_a_private_json_file(make_app, tmp_path) -> None:
    built = make_app()
    async with unlocked(built.app) as pilot:
        incident = open_with_timeline(built)
        await press(pilot, "I")
        await wait_until(pilot, lambda: len(lines(built.app)) == 1, what="the incident row")
        await press(pilot, "w")
        assert isinstance(built.app.screen, IncidentExportModal)
        assert built.app.screen.query_one("#export-path").value == "~/aegis-incidents.json"
        await replace_text(pilot, "#export-path", str(tmp_path / "missing-folder" / "out.json"))
        await press(pilot, "enter")
        assert isinstance(built.app.screen, IncidentExportModal)  # the error stays in the dialog
        assert "No such file or directory" in plain(built.app.screen.query_one("#export-error"))

        target = tmp_path / "incidents.json"
        await replace_text(pilot, "#export-path", str(target))
        await press(pilot, "enter")
        assert isinstance(built.app.screen, IncidentsScreen)
        assert f"Exported 1 incident(s) to {target}." in toasts(built.app)
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
        [document] = json.loads(target.read_text())
        assert (document["id"], document["severity"], document["credential_type"]) == (
            incident.id, "critical", "access_token")
        assert document["response"][2] == "2026-11-18T11:08:40Z revoke hook ran (failed)"


async def test_the_incidents_view_is_in_the_command_palette(make_app) -> None:
    built = make_app()
    async with unlocked(built.app) as pilot:
        await press(pilot, "ctrl+p")
        await pilot.press(*"incidents")
        await pilot.pause(0.3)  # the palette searches in a task of its own
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(built.app.screen, IncidentsScreen), what="the incidents view")
        await settle(pilot)
        assert lines(built.app) == [] and "no incidents" in detail(built.app)
        assert built.app.screen.check_action("export", ()) is False  # nothing to export yet
