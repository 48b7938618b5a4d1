"""The Leaks view: what scans found where and what ``run`` masked, grouped by credential.

Leaks are recorded through the core, as ``aegis-vault scan`` does; the view is opened
from the command palette; ``f`` (after a confirmation) calls a leak a false positive,
``o`` opens the rotation dialog, and rotating clears "exposed".
"""

from __future__ import annotations

from textual.widgets import OptionList

from aegis_tui.core.credentials import Credentials
from aegis_tui.core.models import Status
from aegis_tui.core.scan.exposure import record_exposures, vault_known_values
from aegis_tui.core.vault import Vault
from aegis_tui.tui.screens.confirm_modal import ConfirmModal
from aegis_tui.tui.screens.leaks_screen import LeaksScreen
from aegis_tui.tui.screens.rotate_modal import RotateModal
from aegis_tui.tui.screens.vault_screen import VaultScreen

from .conftest import Extra, paste, plain, settle, toasts, unlocked, wait_until

NAME = "leaky-deploy-token"
VALUE = "sk_live_LeaksViewCanary0000000001"
LEAKY = Extra(NAME, VALUE, context="acme/prod")


def leak(vault: Vault, path: str = "deploy/config.yml") -> None:
    """Record a finding of the value as ``aegis-vault scan`` would (the vault is unlocked)."""
    known = vault_known_values(vault)
    findings = known.scan_bytes(f"# config\ntoken: {VALUE}\n".encode(), path)
    assert record_exposures(vault, findings, via="aegis-vault scan") == [NAME]


async def open_leaks(pilot) -> None:
    await pilot.press("ctrl+p")
    await settle(pilot)
    await pilot.press(*"leaks")
    await pilot.pause(0.3)  # the palette searches in a task of its own
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, LeaksScreen), what="the Leaks view")
    await settle(pilot)


def lines(app) -> list[str]:
    listing = app.screen.query_one("#agent-list", OptionList)
    return [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]


def detail(app) -> str:
    return plain(app.screen.query_one("#agent-detail"))


async def test_a_leak_is_listed_with_its_location_and_a_false_positive_clears_it(make_app):
    built = make_app(extras=[LEAKY])
    async with unlocked(built.app) as pilot:
        leak(built.vault)
        await open_leaks(pilot)
        [row] = lines(built.app)
        assert row.split()[:3] == [NAME, "acme/prod", "1"]
        assert "scan" in row and "✖ exposed" in row
        assert "deploy/config.yml:2:8" in detail(built.app) and "raw" in detail(built.app)
        assert "1 active of 1 leaks" in plain(built.app.screen.query_one("#agent-top"))

        await pilot.press("f")
        await settle(pilot)
        assert isinstance(built.app.screen, ConfirmModal)
        assert built.app.focused.id == "confirm-cancel"  # the safe answer is the default
        await pilot.click("#confirm-ok")
        await settle(pilot)
        await wait_until(pilot, lambda: "✓ cleared" in lines(built.app)[0], what="the leak to show cleared")
        assert Credentials(built.vault).find(NAME).status is Status.ACTIVE
        assert f"Marked {NAME} active again (false positive)." in toasts(built.app)
        await pilot.press("f")  # nothing left to clear
        await settle(pilot)
        assert isinstance(built.app.screen, LeaksScreen)

        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(built.app.screen, VaultScreen)


async def test_o_opens_the_rotation_and_rotating_clears_exposed(make_app):
    built = make_app(extras=[LEAKY])
    async with unlocked(built.app) as pilot:
        leak(built.vault)
        await open_leaks(pilot)
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(built.app.screen, RotateModal), what="the rotate dialog")
        await settle(pilot)
        await paste(pilot, "sk_live_LeaksViewCanary0000000002")
        await pilot.click("#rotate-go")
        await settle(pilot)
        assert isinstance(built.app.screen, LeaksScreen)
        await wait_until(pilot, lambda: "✓ cleared" in lines(built.app)[0], what="the leak to show cleared")
        credential = Credentials(built.vault).find(NAME)
        assert credential.status is Status.ACTIVE and credential.current_version == 2
        assert f"rotated {NAME} to v2" in toasts(built.app)


async def test_masked_run_output_is_listed_and_cannot_be_called_a_false_positive(make_app):
    built = make_app(extras=[LEAKY])
    async with unlocked(built.app) as pilot:
        built.vault.audit.append("run", built.vault.actor, target="make [b]deploy[/b]",
                                 detail={"masked": {NAME: 3}, "exit_code": 0})
        await open_leaks(pilot)
        [row] = lines(built.app)
        assert row.split()[:3] == [NAME, "acme/prod", "3"] and "run masking" in row and "◌ masked" in row
        assert "run: make [b]deploy[/b]" in detail(built.app)  # literal, never markup
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(built.app.screen, LeaksScreen)


async def test_a_live_view_shows_a_leak_recorded_while_it_is_open(make_app):
    built = make_app(live=True, extras=[LEAKY])
    async with unlocked(built.app) as pilot:
        await open_leaks(pilot)
        assert lines(built.app) == []
        leak(built.vault, "literal[/]path.txt")
        await wait_until(pilot, lambda: len(lines(built.app)) == 1, timeout=6, what="the new leak to show")
        await settle(pilot)
        assert "literal[/]path.txt:2:8" in detail(built.app)
