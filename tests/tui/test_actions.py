"""Actions on the selected credential: reveal, copy, rotate, revoke, destroy, TOTP codes."""

from __future__ import annotations

import pytest
from textual.widgets import Button, Input

from aegis_tui.core.config import Settings
from aegis_tui.core.errors import NotFoundError
from aegis_tui.core.models import Kind, Status, VersionState
from aegis_tui.core.totp import totp_code
from aegis_tui.tui.screens.confirm_modal import ConfirmModal
from aegis_tui.tui.screens.destroy_modal import DestroyModal
from aegis_tui.tui.screens.rotate_modal import RotateModal
from aegis_tui.tui.screens.vault_screen import VaultScreen

from .conftest import (
    NOW,
    choose,
    digest,
    paste,
    plain,
    row_names,
    select,
    settle,
    toasts,
    type_into,
    unlocked,
    vault_screen,
    wait_until,
)

DAY = 86400


def reads(built, name: str, via: str) -> list:
    return [e for e in built.vault.audit.entries()
            if e.operation == "read" and e.target == name and e.detail.get("via") == via]


def detail_value(app) -> str:
    return plain(vault_screen(app).query_one("#detail-value"))


# -- reveal and copy ---------------------------------------------------------------------------
async def test_reveal_shows_the_value_is_audited_and_r_again_hides_it(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await select(pilot, "stripe-test")
        assert "••••••••" in detail_value(app)
        assert reads(built, "stripe-test", "tui.reveal") == []
        await pilot.press("r")
        await pilot.pause()
        value = built.credentials().reveal("stripe-test", purpose="test").reveal_text()
        shown = value in detail_value(app)
        assert shown, "the revealed value is not in #detail-value"
        assert "hides in 20s" in detail_value(app)
        entries = reads(built, "stripe-test", "tui.reveal")
        assert len(entries) == 1 and entries[0].outcome == "ok"
        await pilot.press("r")
        await pilot.pause()
        hidden = value not in detail_value(app)
        assert hidden and "••••••••" in detail_value(app)


async def test_moving_to_another_credential_hides_a_revealed_value(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await select(pilot, "stripe-test")
        await pilot.press("r", "down")
        await pilot.pause()
        value = built.credentials().reveal("stripe-test", purpose="test").reveal_text()
        hidden = value not in detail_value(app)
        assert hidden and "••••••••" in detail_value(app)


async def test_a_revealed_value_hides_itself_and_a_copied_one_is_cleared_from_the_clipboard(make_app):
    built = make_app(Settings(reveal_seconds=3, clipboard_clear_seconds=5), live=True)
    app = built.app
    async with unlocked(app) as pilot:
        await select(pilot, "openai-api")
        value = built.credentials().reveal("openai-api", purpose="test").reveal_text()
        await pilot.press("c", "r")
        await pilot.pause()
        copied = app.clipboard == value
        shown = value in detail_value(app)
        assert copied and shown
        await wait_until(pilot, lambda: value not in detail_value(app), timeout=8, what="the value to hide")
        assert "••••••••" in detail_value(app)
        await wait_until(pilot, lambda: app.clipboard == "", timeout=10, what="the clipboard to clear")


async def test_copy_puts_the_value_on_the_clipboard_audits_it_and_says_when_it_clears(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await select(pilot, "postgres-staging")
        await pilot.press("c")
        await pilot.pause()
        value = built.credentials().reveal("postgres-staging", purpose="test").reveal_text()
        copied = app.clipboard == value
        assert copied, "the clipboard does not hold the value"
        assert len(reads(built, "postgres-staging", "tui.copy")) == 1
        assert any("copied postgres-staging; clipboard clears in 30s" in t for t in toasts(app))
        shown = value in detail_value(app)
        assert not shown  # copying does not reveal


# -- rotate ------------------------------------------------------------------------------------
OVERLAP_LABELS = ["none: retire at once", "1 hour", "24 hours", "7 days", "30 days"]


async def test_rotate_dialog_makes_a_new_current_version_and_keeps_the_old_one_for_the_chosen_overlap(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await select(pilot, "stripe-test")
        old_value = built.credentials().reveal("stripe-test", purpose="test").reveal_text()
        assert built.credentials().find("stripe-test").current_version == 1
        await pilot.press("o")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, RotateModal)
        assert dialog.query_one("#value-input", Input).has_focus
        await paste(pilot, "sk_test_rotated_value_0123456789")
        await choose(pilot, "#rotate-overlap", "7 days", OVERLAP_LABELS, value=7 * DAY)
        assert "v2 becomes current; v1 stays valid until 2026-11-25" in plain(dialog.query_one("#rotate-summary"))
        await pilot.click("#rotate-go")
        await settle(pilot)
        assert isinstance(app.screen, VaultScreen)
        credential = built.credentials().find("stripe-test")
        assert credential.current_version == 2
        versions = {v.version: v for v in built.credentials().versions("stripe-test")}
        assert versions[2].state is VersionState.CURRENT
        assert versions[1].state is VersionState.PREVIOUS
        assert versions[1].retires_at == NOW + 7 * DAY
        new_value = built.credentials().reveal("stripe-test").reveal_text()
        assert digest(new_value) == digest("sk_test_rotated_value_0123456789")
        assert digest(built.credentials().reveal("stripe-test", version=1).reveal_text()) == digest(old_value)
        rotations = [e for e in built.vault.audit.entries() if e.operation == "rotate" and e.target == "stripe-test"]
        assert rotations[-1].detail["overlap_seconds"] == 7 * DAY
        assert any("rotated stripe-test to v2" in t for t in toasts(app))
        assert vault_screen(app).selected.name == "stripe-test"
        assert "valid until 2026-11-25" in plain(vault_screen(app).query_one("#detail-history"))


async def test_rotate_with_a_generated_value_and_no_overlap_retires_the_old_version_at_once(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await select(pilot, "redis-cache")
        await pilot.press("o")
        await pilot.pause()
        await choose(pilot, "#rotate-overlap", "none: retire at once", OVERLAP_LABELS, value=0)
        assert "v1 retires at once" in plain(app.screen.query_one("#rotate-summary"))
        await pilot.click("#gen-button")
        await pilot.pause()
        generated = app.screen.query_one("#value-input", Input).value
        assert len(generated) == 32
        await pilot.click("#rotate-go")
        await settle(pilot)
        versions = {v.version: v for v in built.credentials().versions("redis-cache")}
        assert versions[1].state is VersionState.RETIRED and versions[2].state is VersionState.CURRENT
        assert digest(built.credentials().reveal("redis-cache").reveal_text()) == digest(generated)


async def test_rotate_refuses_an_empty_value_and_a_bad_totp_seed_and_escape_changes_nothing(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await select(pilot, "npm-2fa")
        await pilot.press("o")
        await pilot.pause()
        dialog = app.screen
        await pilot.click("#rotate-go")
        await pilot.pause()
        assert plain(dialog.query_one("#rotate-error")).startswith("✖ type a new value")
        await type_into(pilot, "#value-input", "not a seed!")
        await pilot.click("#rotate-go")
        await pilot.pause()
        assert app.screen is dialog
        assert plain(dialog.query_one("#rotate-error")).startswith("✖ a TOTP seed")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, VaultScreen)
        assert built.credentials().find("npm-2fa").current_version == 1


# -- revoke ------------------------------------------------------------------------------------
async def test_revoke_asks_first_with_cancel_focused_and_enter_or_escape_leaves_it_active(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await select(pilot, "slack-bot")
        for key in ("enter", "escape"):
            await pilot.press("x")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmModal)
            assert app.focused is app.screen.query_one("#confirm-cancel", Button)
            assert "slack-bot" in plain(app.screen.query_one("#confirm-body"))
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, VaultScreen)
            assert built.credentials().find("slack-bot").status is Status.ACTIVE
        assert not [e for e in built.vault.audit.entries() if e.operation == "revoke" and e.target == "slack-bot"]
        # Confirming revokes: Tab to the Revoke button, Enter.
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("tab")
        assert app.focused is app.screen.query_one("#confirm-ok", Button)
        await pilot.press("enter")
        await settle(pilot)
        credential = built.credentials().find("slack-bot")
        assert credential.status is Status.REVOKED
        assert all(v.state is VersionState.RETIRED for v in built.credentials().versions("slack-bot"))
        assert any("revoked slack-bot" in t for t in toasts(app))
        assert "revoked" in plain(vault_screen(app).query_one("#detail-meta"))


@pytest.mark.parametrize("name", ["heroku-legacy", "slack-bot"], ids=["revoked-in-demo", "revoked-in-app"])
async def test_a_revoked_credential_cannot_be_revealed_copied_rotated_or_revoked_again(make_app, name):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        if name == "slack-bot":
            await select(pilot, name)
            await pilot.press("x")
            await pilot.pause()
            await pilot.click("#confirm-ok")
            await settle(pilot)
        await select(pilot, name)
        screen = vault_screen(app)
        for action in ("reveal", "copy", "rotate", "revoke"):
            assert screen.check_action(action, ()) is not True, action
        assert screen.check_action("destroy", ()) is True
        assert screen.check_action("copy_totp", ()) is False
        audit_before = len(list(built.vault.audit.entries()))
        await pilot.press("r", "c", "o", "x")
        await settle(pilot)
        assert isinstance(app.screen, VaultScreen)  # no dialog opened
        assert "••••••••" in detail_value(app)
        assert len(list(built.vault.audit.entries())) == audit_before  # and nothing was read
        # An active credential has every action.
        await select(pilot, "stripe-test")
        assert all(screen.check_action(a, ()) is True for a in ("reveal", "copy", "rotate", "revoke", "destroy"))


# -- destroy -----------------------------------------------------------------------------------
async def test_destroy_is_enabled_only_by_the_exact_name_and_then_deletes_the_credential(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await select(pilot, "gitlab-mirror")
        await pilot.press("D")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, DestroyModal)
        button = dialog.query_one("#destroy-ok", Button)
        field = dialog.query_one("#destroy-name", Input)
        assert field.has_focus and button.disabled
        for attempt in ("gitlab-mirro", "GITLAB-MIRROR", "gitlab-mirror "):
            await paste(pilot, attempt)
            assert button.disabled, attempt
            await pilot.press("enter")
            await settle(pilot)
            assert app.screen is dialog
            field.value = ""  # start over
            await pilot.pause()
        await pilot.press(*"gitlab-mirror")
        await pilot.pause()
        assert not button.disabled
        await pilot.click("#destroy-ok")
        await settle(pilot)
        assert isinstance(app.screen, VaultScreen)
        with pytest.raises(NotFoundError):
            built.credentials().find("gitlab-mirror")
        assert "gitlab-mirror" not in row_names(app)
        assert any("destroyed gitlab-mirror" in t for t in toasts(app))
        destroyed = [e for e in built.vault.audit.entries() if e.operation == "destroy"]
        assert [e.target for e in destroyed] == ["gitlab-mirror"]


async def test_destroy_cancel_and_escape_keep_the_credential(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await select(pilot, "gitlab-mirror")
        for how in ("escape", "cancel"):
            await pilot.press("D")
            await pilot.pause()
            await paste(pilot, "gitlab-mirror")
            if how == "escape":
                await pilot.press("escape")
            else:
                await pilot.click("#destroy-cancel")
            await settle(pilot)
            assert isinstance(app.screen, VaultScreen)
            assert built.credentials().find("gitlab-mirror").name == "gitlab-mirror"


# -- TOTP ----------------------------------------------------------------------------------------
TOTP_NAMES = ["github-2fa", "aws-root-mfa", "google-workspace", "npm-2fa"]


async def test_totp_panel_shows_the_current_code_of_every_totp_entry(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app):
        panel = plain(vault_screen(app).query_one("#totp"))
        totp = [c.name for c in built.credentials().list() if c.kind is Kind.TOTP]
        assert sorted(totp) == sorted(TOTP_NAMES)
        for name in totp:
            code = totp_code(built.credentials().reveal(name, purpose="test"), built.clock()).code
            listed = f"{name:<17} {code[:3]} {code[3:]}" in panel  # no code in a failure message
            assert listed, f"no current code for {name} in the TOTP panel"
        assert len(panel.splitlines()) == len(totp)


async def test_t_copies_the_code_of_the_selected_totp_entry_and_does_nothing_on_other_kinds(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await select(pilot, "stripe-test")
        assert vault_screen(app).check_action("copy_totp", ()) is False
        await pilot.press("t")
        await pilot.pause()
        untouched = app.clipboard == ""
        assert untouched, "t copied something for a credential that is not a TOTP entry"
        await select(pilot, "aws-root-mfa")
        await pilot.press("t")
        await pilot.pause()
        code = totp_code(built.credentials().reveal("aws-root-mfa", purpose="test"), built.clock()).code
        copied = app.clipboard == code
        assert copied, "the clipboard does not hold the current code"
        assert any("copied the code for aws-root-mfa" in t for t in toasts(app))
