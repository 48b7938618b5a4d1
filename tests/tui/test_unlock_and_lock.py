"""Unlocking (right and wrong passphrase), the idle lock and Ctrl+L."""

from __future__ import annotations

from textual.widgets import Input

from aegis_tui.core.config import Settings
from aegis_tui.tui.screens.help_screen import HelpScreen
from aegis_tui.tui.screens.unlock_screen import UnlockScreen
from aegis_tui.tui.screens.vault_screen import VaultScreen

from .conftest import DEMO_COUNT, plain, row_names, run, settle, unlock, unlocked


async def test_right_passphrase_typed_opens_the_vault_screen_with_all_40_credentials(make_app):
    built = make_app()
    async with run(built.app) as pilot:
        assert isinstance(built.app.screen, UnlockScreen)
        assert not built.vault.is_unlocked
        await unlock(pilot, type_it=True)
        assert isinstance(built.app.screen, VaultScreen)
        assert built.vault.is_unlocked
        names = row_names(built.app)
        assert len(names) == DEMO_COUNT
        assert {c.name for c in built.credentials().list()} == set(names)
        assert "40 credentials" in plain(built.app.screen.query_one("#top-bar"))


async def test_wrong_passphrase_stays_locked_says_so_audits_the_failure_and_clears_the_input(make_app):
    built = make_app()
    async with run(built.app) as pilot:
        failures_before = [e for e in built.vault.audit.entries() if e.operation == "unlock" and e.outcome == "failed"]
        await unlock(pilot, "not-the-passphrase", type_it=True)
        screen = built.app.screen
        assert isinstance(screen, UnlockScreen)
        assert not built.vault.is_unlocked
        assert "wrong passphrase" in plain(screen.query_one("#unlock-message"))
        field = screen.query_one("#passphrase", Input)
        assert field.value == ""
        assert not field.disabled and field.has_focus
        failures = [e for e in built.vault.audit.entries() if e.operation == "unlock" and e.outcome == "failed"]
        assert len(failures) == len(failures_before) + 1
        assert failures[-1].detail.get("slot") == "passphrase"
        # ...and the right one still works afterwards.
        await unlock(pilot)
        assert isinstance(built.app.screen, VaultScreen)


async def test_empty_passphrase_asks_for_one_and_writes_no_audit_entry(make_app):
    built = make_app()
    async with run(built.app) as pilot:
        count = len(list(built.vault.audit.entries()))
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(built.app.screen, UnlockScreen)
        assert "Type the vault passphrase" in plain(built.app.screen.query_one("#unlock-message"))
        assert len(list(built.vault.audit.entries())) == count


async def test_idle_lock_after_the_configured_minutes_drops_keys_and_the_vault_screen(make_app):
    built = make_app(Settings(idle_lock_minutes=1))
    app = built.app
    async with unlocked(app) as pilot:
        built.clock.pinned += 59
        app.lock_if_idle()
        await pilot.pause()
        assert isinstance(app.screen, VaultScreen) and built.vault.is_unlocked  # not yet
        built.clock.pinned += 2  # 61 s without a key press
        app.lock_if_idle()
        await settle(pilot)
        assert isinstance(app.screen, UnlockScreen)
        assert not built.vault.is_unlocked
        assert not any(isinstance(screen, VaultScreen) for screen in app.screen_stack)
        assert "Locked after 1 min" in plain(app.screen.query_one("#unlock-message"))
        # Unlocking again works and shows everything again.
        await unlock(pilot)
        assert len(row_names(app)) == DEMO_COUNT


async def test_a_key_press_restarts_the_idle_countdown(make_app):
    built = make_app(Settings(idle_lock_minutes=1))
    app = built.app
    async with unlocked(app) as pilot:
        built.clock.pinned += 50
        await pilot.press("down")
        built.clock.pinned += 50  # 100 s since unlocking, 50 s since the key press
        app.lock_if_idle()
        await pilot.pause()
        assert isinstance(app.screen, VaultScreen) and built.vault.is_unlocked
        built.clock.pinned += 11
        app.lock_if_idle()
        await settle(pilot)
        assert isinstance(app.screen, UnlockScreen) and not built.vault.is_unlocked


async def test_idle_lock_zero_minutes_never_locks(make_app):
    built = make_app(Settings(idle_lock_minutes=0))
    async with unlocked(built.app) as pilot:
        built.clock.pinned += 10 * 86400
        built.app.lock_if_idle()
        await pilot.pause()
        assert isinstance(built.app.screen, VaultScreen) and built.vault.is_unlocked


async def test_ctrl_l_locks_even_with_a_dialog_open_and_clears_the_clipboard(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await pilot.press("c")  # copy a value first: locking must clear it
        await settle(pilot)
        assert app.clipboard != ""  # (fails only when empty: no secret in the message)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert isinstance(app.screen, UnlockScreen)
        assert not built.vault.is_unlocked
        assert len(app.screen_stack) == 2  # the default screen and the unlock screen
        assert not any(isinstance(screen, (VaultScreen, HelpScreen)) for screen in app.screen_stack)
        cleared = app.clipboard == ""
        assert cleared, "locking left a value on the clipboard"


async def test_idle_lock_with_a_dialog_open_leaves_only_the_unlock_screen(make_app):
    built = make_app(Settings(idle_lock_minutes=1))
    app = built.app
    async with unlocked(app) as pilot:
        await pilot.press("a")
        await pilot.pause()
        assert type(app.screen).__name__ == "CredentialFormModal"
        built.clock.pinned += 61
        app.lock_if_idle()
        await settle(pilot)
        assert isinstance(app.screen, UnlockScreen) and not built.vault.is_unlocked
        assert len(app.screen_stack) == 2
        assert not any(type(s).__name__ in ("VaultScreen", "CredentialFormModal") for s in app.screen_stack)
