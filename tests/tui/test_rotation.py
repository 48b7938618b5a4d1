"""The rotation view (``R``) and the compromised action (``!``), driven with the pilot.

The view lists what is due first; ``o`` rotates by the credential's policy (generate
here) or, for a manual one, opens the rotate dialog. ``!`` on a credential runs
compromise recovery and shows the incident it opened.
"""

from __future__ import annotations

from textual.widgets import OptionList

from aegis_tui.core.lifecycle.incidents import Incidents
from aegis_tui.core.models import Status
from aegis_tui.tui.screens.confirm_modal import ConfirmModal
from aegis_tui.tui.screens.incidents_screen import IncidentsScreen
from aegis_tui.tui.screens.rotate_modal import RotateModal
from aegis_tui.tui.screens.rotation_screen import RotationScreen

from .conftest import Extra, plain, select, settle, toasts, unlocked, vault_screen, wait_until

DAY = 86400.0
NIGHTLY = Extra("nightly-deploy-key", "nightly-value-0001", context="acme/ci")
BANK = Extra("bank-portal", "bank-value-0002", context="personal")


def lines(app) -> list[str]:
    listing = app.screen.query_one("#agent-list", OptionList)
    return [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]


def schedule(built) -> None:
    """Seven-day periods, made ten days ago: both overdue."""
    credentials = built.credentials()
    credentials.edit(NIGHTLY.name, rotation_days=7, rotation_policy={"method": "generate", "length": 40})
    credentials.edit(BANK.name, rotation_days=7)
    built.clock.pinned += 10 * DAY


async def open_rotation(pilot) -> None:
    await pilot.press("R")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, RotationScreen), what="the rotation view")
    await wait_until(pilot, lambda: lines(pilot.app), what="rows")
    await settle(pilot)


async def highlight(pilot, name: str) -> None:
    listing = pilot.app.screen.query_one("#agent-list", OptionList)
    listing.highlighted = next(i for i, line in enumerate(lines(pilot.app)) if line.startswith(name))
    await settle(pilot)


async def test_overdue_credentials_come_first_and_o_rotates_by_policy(make_app) -> None:
    built = make_app(extras=[NIGHTLY, BANK])
    async with unlocked(built.app) as pilot:
        schedule(built)
        vault_screen(built.app).reload()
        await settle(pilot)
        assert "to rotate by hand — press R" in plain(vault_screen(built.app).query_one("#top-bar"))
        await open_rotation(pilot)
        overdue = [line.split()[0] for line in lines(built.app) if "overdue" in line]
        assert {NIGHTLY.name, BANK.name} <= set(overdue)
        assert lines(built.app)[0].split()[0] in overdue
        await highlight(pilot, NIGHTLY.name)
        assert "generate 40 alnum" in next(line for line in lines(built.app) if line.startswith(NIGHTLY.name))
        await pilot.press("o")
        await wait_until(pilot, lambda: built.credentials().find(NIGHTLY.name).current_version == 2,
                         what="the rotation by policy")
        await wait_until(pilot, lambda: any("rotated to version 2" in t for t in toasts(built.app)), what="the toast")
        # a new seven-day period starts now (still inside the 14-day reminder window)
        await wait_until(pilot, lambda: "7 left" in next(line for line in lines(built.app)
                                                        if line.startswith(NIGHTLY.name)), what="the new period")


async def test_a_manual_credential_opens_the_rotate_dialog(make_app) -> None:
    built = make_app(extras=[NIGHTLY, BANK])
    async with unlocked(built.app) as pilot:
        schedule(built)
        await open_rotation(pilot)
        await highlight(pilot, BANK.name)
        assert "press o and type the new one" in plain(built.app.screen.query_one("#agent-detail"))
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(built.app.screen, RotateModal), what="the rotate dialog")


async def test_a_toggles_to_only_what_needs_attention(make_app) -> None:
    built = make_app(extras=[NIGHTLY, BANK])
    async with unlocked(built.app) as pilot:
        schedule(built)
        await open_rotation(pilot)
        everything = lines(built.app)
        await pilot.press("a")
        await wait_until(pilot, lambda: lines(built.app) != everything, what="the narrower list")
        assert all("✓ ok" not in line or "⌛" in line for line in lines(built.app))


async def test_compromised_recovers_the_credential_and_shows_the_incident(make_app) -> None:
    built = make_app(extras=[NIGHTLY])
    async with unlocked(built.app) as pilot:
        built.credentials().edit(NIGHTLY.name, rotation_policy={"method": "generate", "length": 32})
        vault_screen(built.app).reload()
        await settle(pilot)
        await select(pilot, NIGHTLY.name)
        await pilot.press("exclamation_mark")
        await wait_until(pilot, lambda: isinstance(built.app.screen, ConfirmModal), what="the confirmation")
        assert built.app.focused.id == "confirm-cancel"  # the safe answer is the default
        await pilot.click("#confirm-ok")
        await wait_until(pilot, lambda: isinstance(built.app.screen, IncidentsScreen), what="the incidents view")
        [incident] = Incidents(built.vault).list()
        assert (incident.credential, incident.source) == (NIGHTLY.name, "app")
        assert [step.step for step in incident.timeline][:2] == ["marked exposed", "revoked 0 grant(s)"]
        credential = built.credentials().find(NIGHTLY.name)
        assert (credential.current_version, credential.status) == (2, Status.ACTIVE)
        assert NIGHTLY.value not in " ".join(toasts(built.app))
