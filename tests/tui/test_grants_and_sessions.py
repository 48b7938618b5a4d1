"""The Grants and Sessions views: what agents may use, and taking it back.

Grants are made the way they are in use: a real client asks the app's broker and the
pilot approves in the pop-up. Revoking or ending happens through the views' keys and
their confirmation, and the next request needs an approval again.
"""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import OptionList

from aegis_tui.core.agents.grants import Grants
from aegis_tui.core.agents.sessions import Sessions
from aegis_tui.core.errors import DeniedError
from aegis_tui.tui.screens.approval_modal import ApprovalModal
from aegis_tui.tui.screens.confirm_modal import ConfirmModal
from aegis_tui.tui.screens.grants_screen import GrantsScreen
from aegis_tui.tui.screens.help_screen import HelpScreen
from aegis_tui.tui.screens.sessions_screen import SessionsScreen
from aegis_tui.tui.screens.vault_screen import VaultScreen

from .conftest import Extra, broker_get, plain, screen_text, settle, toasts, unlocked, until_armed, wait_until

CREDENTIAL = "github-pat-ci"


async def approve(pilot, built, name: str, key: str, **request: object) -> None:
    """An agent asks for ``name``; the person answers with ``key`` in the pop-up."""
    asked = broker_get(built.vault, name, **request)  # type: ignore[arg-type]
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ApprovalModal), timeout=10, what="the pop-up")
    await settle(pilot, 1)
    await until_armed(pilot, pilot.app.screen)
    await pilot.press(key)
    await asyncio.wait_for(asked, 10)
    await wait_until(pilot, lambda: not isinstance(pilot.app.screen, ApprovalModal), what="the pop-up to close")


async def opened(pilot, key: str, screen_type: type) -> None:
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, screen_type), what=screen_type.__name__)
    await settle(pilot)


def lines(app) -> list[str]:
    """The rows the open view lists, as text."""
    listing = app.screen.query_one("#agent-list", OptionList)
    return [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]


async def hosting(pilot) -> None:
    await wait_until(pilot, lambda: pilot.app.broker_service is not None, what="the broker to start")


async def confirm(pilot) -> None:
    assert isinstance(pilot.app.screen, ConfirmModal)
    assert pilot.app.focused.id == "confirm-cancel"  # the safe answer is the default
    await pilot.click("#confirm-ok")
    await settle(pilot)


async def test_grants_view_lists_grants_and_revoking_one_means_asking_again(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        await approve(pilot, built, CREDENTIAL, "3", scopes=["repo:push"])
        await opened(pilot, "A", GrantsScreen)
        [row] = lines(built.app)
        assert row.split() == ["github-pat-ci", "acme/dev", "no", "session", "reveal", "repo:push", "∞", "in", "1h", "✓", "active"]
        [grant] = Grants(built.vault).list()
        detail = plain(built.app.screen.query_one("#agent-detail"))
        assert grant.id in detail and "approved in the app" in detail
        assert "1 active grants" in plain(built.app.screen.query_one("#agent-top"))

        await pilot.press("x")
        await settle(pilot)
        await confirm(pilot)
        await wait_until(pilot, lambda: lines(built.app) == [], what="the revoked grant to leave the list")
        assert "Revoked the grant for github-pat-ci." in toasts(built.app)
        assert Grants(built.vault).list(include_inactive=True)[0].state(built.clock()) == "revoked"
        assert built.app.screen.check_action("end", ()) is False  # nothing left to revoke

        await pilot.press("a")  # the inactive ones too
        await wait_until(pilot, lambda: len(lines(built.app)) == 1, what="the revoked grant to show")
        assert "⊘ revoked" in lines(built.app)[0]
        assert built.app.screen.check_action("end", ()) is False  # revoked already

        asked = broker_get(built.vault, CREDENTIAL, scopes=["repo:push"])
        await wait_until(pilot, lambda: isinstance(built.app.screen, ApprovalModal), timeout=10, what="a new pop-up")
        assert isinstance(built.app.screen_stack[-2], GrantsScreen)
        await until_armed(pilot, built.app.screen)
        await pilot.press("escape")
        with pytest.raises(DeniedError):
            await asked
        await wait_until(pilot, lambda: isinstance(built.app.screen, GrantsScreen), what="the grants view")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(built.app.screen, VaultScreen)


async def test_cancelling_the_confirmation_keeps_the_grant(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        await approve(pilot, built, CREDENTIAL, "3")
        await opened(pilot, "A", GrantsScreen)
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(built.app.screen, ConfirmModal)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(built.app.screen, GrantsScreen)
        assert Grants(built.vault).list()[0].state(built.clock()) == "active"


async def test_help_on_a_view_lists_that_view_s_keys_first(make_app):
    built = make_app()
    async with unlocked(built.app) as pilot:
        await opened(pilot, "A", GrantsScreen)
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(built.app.screen, HelpScreen)
        text = screen_text(built.app)
        assert text.index("Agent grants") < text.index("Vault") and "grants.revoke" in text


async def test_grants_and_sessions_are_in_the_command_palette(make_app):
    built = make_app()
    async with unlocked(built.app) as pilot:
        for words, screen_type in (("agent grants", GrantsScreen), ("agent sessions", SessionsScreen)):
            await pilot.press("ctrl+p")
            await settle(pilot)
            await pilot.press(*words)
            await pilot.pause(0.3)  # the palette searches in a task of its own
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(built.app.screen, screen_type), what=screen_type.__name__)
            await settle(pilot)
            assert lines(built.app) == []
            assert "no " in plain(built.app.screen.query_one("#agent-detail"))
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(built.app.screen, VaultScreen)


async def test_names_labels_and_reasons_in_the_views_are_literal(make_app, broker_runtime):
    name = "evil[/]name"
    built = make_app(host_broker=True, extras=[Extra(name, "value-for-a-literal-grant", context="acme/dev")])
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        session, token = Sessions(built.vault).start("acme/dev", 3600, label="[b]label[/b]")
        await approve(pilot, built, name, "4", session=token, reason="[red]because[/red] \x1b[2J")
        await opened(pilot, "A", GrantsScreen)
        [row] = lines(built.app)
        assert row.startswith("evil[/]name") and "[b]label[/b]" in row
        assert "[red]because[/red] ␛[2J" in plain(built.app.screen.query_one("#agent-detail"))
        await pilot.press("escape")
        await settle(pilot)
        await opened(pilot, "S", SessionsScreen)
        [row] = lines(built.app)
        assert "[b]label[/b]" in row


async def test_sessions_view_ends_a_session_and_its_grants_with_it(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        session, token = Sessions(built.vault).start("acme/dev", 7200, label="claude-fix")
        await approve(pilot, built, CREDENTIAL, "4", session=token)
        await approve(pilot, built, "slack-bot", "3", session=token)
        await opened(pilot, "S", SessionsScreen)
        [row] = lines(built.app)
        assert row.split() == [session.id, "claude-fix", "acme/dev", "✓", "active", "now", "in", "2h", "—", "✗", "no",
                               "2"]
        assert "not bound to a process" in plain(built.app.screen.query_one("#agent-detail"))
        assert "not sandboxed: its agent can reach what your user can" in plain(
            built.app.screen.query_one("#agent-detail"))

        await pilot.press("x")
        await settle(pilot)
        await confirm(pilot)
        await wait_until(pilot, lambda: lines(built.app) == [], what="the ended session to leave the list")
        assert "Ended the session claude-fix; 2 grant(s) revoked." in toasts(built.app)
        assert Grants(built.vault).list() == []
        assert Sessions(built.vault).get(session.id).state(built.clock()) == "ended"
        await pilot.press("a")
        await wait_until(pilot, lambda: len(lines(built.app)) == 1, what="the ended session to show")
        assert "⊘ ended" in lines(built.app)[0] and lines(built.app)[0].split()[-1] == "0"

        # The session is over: its agent is refused outright, not asked about.
        with pytest.raises(Exception, match="has ended"):
            await asyncio.wait_for(broker_get(built.vault, CREDENTIAL, session=token), 10)
        assert isinstance(built.app.screen, SessionsScreen)


async def test_sessions_view_marks_a_sandboxed_session(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        session, _ = Sessions(built.vault).start("acme/dev", 7200, label="contained")
        Sessions(built.vault).mark_sandboxed(session.id)
        await opened(pilot, "S", SessionsScreen)
        [row] = lines(built.app)
        assert "✓ yes" in row and "✗ no" not in row
        assert "sandboxed: the vault, keyring and other processes are out of its reach" in plain(
            built.app.screen.query_one("#agent-detail"))
