"""Names that look like markup are shown as they are, everywhere, and break nothing."""

from __future__ import annotations

from textual.content import Content

from aegis_tui.core.models import Kind
from aegis_tui.tui.screens.confirm_modal import ConfirmModal
from aegis_tui.tui.screens.credential_form_modal import CredentialFormModal
from aegis_tui.tui.screens.destroy_modal import DestroyModal
from aegis_tui.tui.screens.rotate_modal import RotateModal
from aegis_tui.tui.screens.vault_screen import VaultScreen
from aegis_tui.tui.widgets.detail_panel import DetailPanel

from .conftest import (
    Extra,
    choose,
    list_lines,
    listing,
    paste,
    plain,
    screen_text,
    select,
    settle,
    toasts,
    type_into,
    unlocked,
    vault_screen,
    wait_until,
)

SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
EVIL = "evil[/]"
BOLD = "[b]x"


def shown_in_list(app, name: str) -> bool:
    return any(f"▸{name} " in line for line in list_lines(listing(app)))


async def test_markup_like_names_show_literally_in_list_details_audit_totp_dialogs_and_toasts(make_app):
    built = make_app(extras=[Extra(EVIL, "value-evil", service="[red]svc", notes="[bold]not bold[/bold]")])
    app = built.app
    async with unlocked(app) as pilot:
        # One more, through the form: a TOTP entry named like a markup tag.
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, CredentialFormModal)
        await choose(pilot, "#field-kind", "totp", [str(kind) for kind in Kind])
        await type_into(pilot, "#field-name", BOLD, keys=True)
        await type_into(pilot, "#value-input", SEED)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, VaultScreen)
        assert any(f"added {BOLD}" == t.strip() or f"added {BOLD}" in t for t in toasts(app))
        assert built.credentials().find(BOLD).kind is Kind.TOTP

        screen = vault_screen(app)
        for name in (EVIL, BOLD):
            await select(pilot, name)
            assert shown_in_list(app, name), name
            detail = screen.query_one(DetailPanel)
            assert Content.from_markup(detail.border_title).plain == name  # the getter gives markup
            assert f"╭─ {name} ─" in screen_text(app), name
            assert name in plain(screen.query_one("#audit-lines"))
        await select(pilot, EVIL)
        meta = plain(screen.query_one("#detail-meta"))
        assert "[red]svc · secret" in meta and "[bold]not bold[/bold]" in meta
        assert "[red]svc" in "\n".join(str(screen.query_one("#sidebar").get_option_at_index(i).prompt)
                                       for i in range(screen.query_one("#sidebar").option_count))
        assert BOLD in plain(screen.query_one("#totp"))

        # Dialog titles and the toasts that follow.
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, RotateModal)
        assert f"Rotate {EVIL}  (now v1)" in screen_text(app)
        await paste(pilot, "value-evil-2")
        await pilot.click("#rotate-go")
        await settle(pilot)
        assert any(f"rotated {EVIL} to v2" in t for t in toasts(app))
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        text = screen_text(app)
        assert f"Revoke {EVIL}" in text and f"Every version of {EVIL} retires now" in text
        await pilot.click("#confirm-ok")
        await settle(pilot)
        assert any(f"revoked {EVIL}" in t for t in toasts(app))
        await pilot.press("D")
        await pilot.pause()
        assert isinstance(app.screen, DestroyModal)
        assert f"Destroy {EVIL}" in screen_text(app)
        await paste(pilot, EVIL)
        await pilot.press("enter")
        await settle(pilot)
        assert any(f"destroyed {EVIL}" in t for t in toasts(app))
        assert isinstance(app.screen, VaultScreen)
        assert app.is_running and app.return_code is None
        assert EVIL not in [c.name for c in built.credentials().list()]
        # The audit panel still names it, literally.
        assert EVIL in plain(screen.query_one("#audit-lines"))
