"""Settings (saved, reloaded, cancel restores the theme), the keymap, help, the command palette."""

from __future__ import annotations

import tomllib

from textual.command import CommandList, CommandPalette

from aegis_tui.core.config import Settings, load_settings
from aegis_tui.tui.screens.credential_form_modal import CredentialFormModal
from aegis_tui.tui.screens.help_screen import HelpScreen
from aegis_tui.tui.screens.settings_screen import SettingsScreen
from aegis_tui.tui.screens.unlock_screen import UnlockScreen
from aegis_tui.tui.screens.vault_screen import VaultScreen

from .conftest import choose, plain, run, select, settle, type_into, unlocked, wait_until


async def open_settings(pilot) -> SettingsScreen:
    await pilot.press("f2")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, SettingsScreen)
    return screen


async def test_settings_are_saved_to_the_toml_file_read_back_and_applied(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await open_settings(pilot)
        assert app.focused.id == "setting-idle_lock_minutes"
        await type_into(pilot, "#setting-idle_lock_minutes", "1")
        await type_into(pilot, "#setting-reveal_seconds", "7")
        await choose(pilot, "#setting-theme", "textual-light", sorted(app.available_themes))
        assert app.theme == "textual-light"  # a preview while choosing
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, VaultScreen)
        with open(built.settings_path, "rb") as handle:
            document = tomllib.load(handle)
        assert document["idle_lock_minutes"] == 1
        assert document["reveal_seconds"] == 7
        assert document["theme"] == "textual-light"
        assert document["clipboard_clear_seconds"] == 30  # untouched values are written as they were
        loaded = load_settings(str(built.settings_path))
        assert (loaded.idle_lock_minutes, loaded.reveal_seconds, loaded.theme) == (1, 7, "textual-light")
        assert app.settings == loaded
        assert app.theme == "textual-light"
        # The new idle time is in force at once.
        built.clock.pinned += 61
        app.lock_if_idle()
        await settle(pilot)
        assert isinstance(app.screen, UnlockScreen) and not built.vault.is_unlocked


async def test_cancelling_settings_restores_the_theme_and_writes_nothing(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        assert app.theme == "aegis"
        for how in ("escape", "button"):
            await open_settings(pilot)
            await type_into(pilot, "#setting-idle_lock_minutes", "3")
            await choose(pilot, "#setting-theme", "nord", sorted(app.available_themes))
            assert app.theme == "nord"
            if how == "escape":
                await pilot.press("escape")
            else:
                await pilot.click("#settings-cancel")
            await settle(pilot)
            assert isinstance(app.screen, VaultScreen)
            assert app.theme == "aegis"
            assert app.settings.idle_lock_minutes == 10
            assert not built.settings_path.exists()


async def test_an_out_of_range_setting_is_refused_in_the_dialog(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        screen = await open_settings(pilot)
        await type_into(pilot, "#setting-reveal_seconds", "1")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is screen
        error = plain(screen.query_one("#settings-error"))
        assert error.startswith("✖") and "reveal_seconds must be a whole number from 3 to 600" in error
        assert not built.settings_path.exists()
        assert app.settings.reveal_seconds == 20


async def test_a_remapped_key_opens_the_add_form_and_the_old_key_does_not(make_app):
    built = make_app(Settings(keymap={"vault.add": "n"}))
    app = built.app
    async with unlocked(app) as pilot:
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, VaultScreen)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, CredentialFormModal)


async def help_text(app) -> str:
    assert isinstance(app.screen, HelpScreen)
    return "\n".join(plain(widget) for widget in app.screen.query("#help-dialog Static"))


async def test_f1_opens_help_listing_every_binding_id_with_remapped_keys(make_app):
    built = make_app(Settings(keymap={"vault.add": "n"}))
    app = built.app
    async with unlocked(app) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        text = await help_text(app)
        for binding in [*VaultScreen.BINDINGS, *type(app).BINDINGS]:
            if binding.description:
                assert binding.id in text, binding.id
        add_line = next(line for line in text.splitlines() if "vault.add" in line)
        assert add_line.split()[0] == "n"  # shows the remapped key, not the default
        assert "Every action by name" in text  # the palette
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, VaultScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)


async def test_help_on_the_unlock_screen_lists_only_the_keys_that_work_there(make_app):
    built = make_app()
    app = built.app
    async with run(app) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        text = await help_text(app)
        assert "app.lock" in text and "app.settings" in text
        assert "vault.reveal" not in text and "\nVault\n" not in f"\n{text}"


async def test_command_palette_lists_and_runs_add_credential(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"add cred")
        await wait_until(pilot, lambda: any("Add credential" in p for p in _sync_prompts(app)),
                         what="the palette to list Add credential")
        first = _sync_prompts(app)[0]
        assert "Add credential" in first
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, CredentialFormModal)


async def test_enter_on_a_credential_opens_the_palette_with_only_what_it_allows(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await select(pilot, "heroku-legacy")  # revoked
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await wait_until(pilot, lambda: any("Destroy credential" in p for p in _sync_prompts(app)),
                         what="the palette's command list")
        prompts = " | ".join(_sync_prompts(app))
        for title in ("Reveal value", "Copy value", "Rotate credential", "Revoke credential", "Copy TOTP code"):
            assert title not in prompts, title
        for title in ("Add credential", "Destroy credential", "Lock vault", "Settings", "Help"):
            assert title in prompts, title


def _sync_prompts(app) -> list[str]:
    if not isinstance(app.screen, CommandPalette):
        return []
    results = app.screen.query_one(CommandList)
    return [str(results.get_option_at_index(i).prompt) for i in range(results.option_count)]
