"""Screenshots of every screen and dialog, compared with the committed SVGs.

Deterministic: the demo data and the clock are fixed, timers are off (``live=False``),
the vault path is relative, the actor is fixed and times are UTC (``snapshot_app``).
Update after an intended change with: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from aegis_tui.tui.screens.confirm_modal import ConfirmModal
from aegis_tui.tui.screens.credential_form_modal import CredentialFormModal
from aegis_tui.tui.screens.destroy_modal import DestroyModal
from aegis_tui.tui.screens.help_screen import HelpScreen
from aegis_tui.tui.screens.rotate_modal import RotateModal
from aegis_tui.tui.screens.settings_screen import SettingsScreen
from aegis_tui.tui.screens.unlock_screen import UnlockScreen
from aegis_tui.tui.screens.vault_screen import VaultScreen

from .conftest import paste, settle, unlock

SIZE = (120, 40)
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


async def opened(pilot, key: str, screen_type: type) -> None:
    await unlock(pilot)
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(pilot.app.screen, screen_type), type(pilot.app.screen).__name__


def test_unlock_screen(snap_compare, snapshot_app):
    async def run_before(pilot) -> None:
        await settle(pilot)
        assert isinstance(pilot.app.screen, UnlockScreen)

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_unlock_screen_after_a_wrong_passphrase(snap_compare, snapshot_app):
    async def run_before(pilot) -> None:
        await unlock(pilot, "wrong-passphrase")
        assert isinstance(pilot.app.screen, UnlockScreen)

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_vault_screen(snap_compare, snapshot_app):
    async def run_before(pilot) -> None:
        await unlock(pilot)
        assert isinstance(pilot.app.screen, VaultScreen)

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_vault_screen_80x24(snap_compare, snapshot_app):
    async def run_before(pilot) -> None:
        await unlock(pilot)
        assert isinstance(pilot.app.screen, VaultScreen)

    assert snap_compare(snapshot_app(), terminal_size=(80, 24), run_before=run_before)


def test_add_form(snap_compare, snapshot_app):
    async def run_before(pilot) -> None:
        await opened(pilot, "a", CredentialFormModal)

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_add_form_with_totp_kind_and_a_seed(snap_compare, snapshot_app):
    async def run_before(pilot) -> None:
        await opened(pilot, "a", CredentialFormModal)
        await pilot.press(*"github-2fa-work")
        await pilot.press("shift+tab", "enter", *"to", "enter")  # the kind: type-to-search "totp"
        await pilot.press(*["tab"] * 9)  # name, service, context, tags, url, expires, rotate, notes -> value
        assert pilot.app.focused.id == "value-input"
        await paste(pilot, SEED)
        await settle(pilot)

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_rotate_dialog(snap_compare, snapshot_app):
    async def run_before(pilot) -> None:
        await opened(pilot, "o", RotateModal)

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_revoke_confirm(snap_compare, snapshot_app):
    async def run_before(pilot) -> None:
        await opened(pilot, "x", ConfirmModal)

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_destroy_dialog(snap_compare, snapshot_app):
    async def run_before(pilot) -> None:
        await opened(pilot, "D", DestroyModal)

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare, snapshot_app):
    async def run_before(pilot) -> None:
        await opened(pilot, "f1", HelpScreen)

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_settings_screen(snap_compare, snapshot_app):
    async def run_before(pilot) -> None:
        await opened(pilot, "f2", SettingsScreen)

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)
