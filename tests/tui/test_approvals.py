"""Access requests from agents, answered in the app's pop-up.

The app hosts a real broker on a real Unix socket (in a private runtime folder); the
requests come from the real blocking client the command line uses, in a thread, while
the pilot presses keys. Values are compared by digest, never printed.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys

import pytest
from textual.content import Content

from aegis_tui.core.agents.grants import Grants
from aegis_tui.core.agents.sessions import Sessions
from aegis_tui.core.broker.client import BrokerClient
from aegis_tui.core.broker.runtime import socket_path
from aegis_tui.core.broker.server import BrokerServer
from aegis_tui.core.broker.service import HEADLESS, BrokerService
from aegis_tui.core.demo import DEMO_PASSPHRASE
from aegis_tui.core.errors import DeniedError
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault
from aegis_tui.tui.broker_host import BrokerState
from aegis_tui.tui.screens.approval_modal import ApprovalModal
from aegis_tui.tui.screens.confirm_modal import ConfirmModal
from aegis_tui.tui.screens.unlock_screen import UnlockScreen
from aegis_tui.tui.screens.vault_screen import VaultScreen

from .conftest import Extra, broker_get, digest, plain, screen_text, settle, toasts, unlocked, until_armed, wait_until

CREDENTIAL = "github-pat-ci"
OTHER = "slack-bot"


async def shown(pilot, name: str = CREDENTIAL) -> ApprovalModal:
    """Wait for the approval pop-up for ``name``: the screen on top, Deny focused."""
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, ApprovalModal)
                     and app.screen.request.credential.name == name, timeout=10, what=f"the request for {name}")
    await settle(pilot, 1)
    modal = app.screen
    assert app.focused is not None and app.focused.id == "approval-deny"
    await until_armed(pilot, modal)
    return modal


async def gone(pilot) -> None:
    await wait_until(pilot, lambda: not any(isinstance(s, ApprovalModal) for s in pilot.app.screen_stack),
                     timeout=10, what="the pop-up to close")


def title(modal: ApprovalModal) -> str:
    """The dialog's border title as drawn (the attribute reads back as markup)."""
    return Content.from_markup(modal.query_one("#approval-dialog").border_title or "").plain


def value_of(built, name: str) -> str:
    return digest(built.credentials().reveal(name, purpose="test").reveal())


def served(reply: dict[str, object]) -> str:
    return digest(base64.b64decode(str(reply["value_b64"])))


async def hosting(pilot) -> None:
    await wait_until(pilot, lambda: pilot.app.broker_service is not None, what="the broker to start")


async def test_a_request_pops_up_over_the_vault_screen_and_d_denies_it(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        assert "broker ● serving" in plain(built.app.screen.query_one("#top-bar"))
        asked = broker_get(built.vault, CREDENTIAL, reason="push the fix for CI failure #812")
        modal = await shown(pilot)
        assert isinstance(built.app.screen_stack[-2], VaultScreen)
        assert title(modal) == "Access request · 1 of 1 · denies itself in 2:00"
        text = screen_text(built.app)
        assert "⟨agent says⟩" in text and "push the fix for CI failure #812" in text
        assert "REVEAL the raw value" in text  # a get hands the value to the caller
        assert "github-pat-ci  (github · access_token · acme/dev)" in text
        assert f"(pid {os.getpid()})" in text  # the requesting process: this one
        assert "broker ● serving · 1 pending" in plain(built.app.screen_stack[-2].query_one("#top-bar"))
        await pilot.press("d")
        with pytest.raises(DeniedError, match="denied"):
            await asked
        await gone(pilot)
        assert isinstance(built.app.screen, VaultScreen)
        assert "Denied github-pat-ci." in toasts(built.app)
        assert not Grants(built.vault).list(include_inactive=True)
        assert any(e.operation == "access.deny" and e.target == CREDENTIAL for e in built.vault.audit.entries())


async def test_escape_denies_a_request_that_popped_up_over_another_dialog(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        await pilot.press("x")  # the revoke question is open when the request comes
        await settle(pilot)
        assert isinstance(built.app.screen, ConfirmModal)
        asked = broker_get(built.vault, CREDENTIAL)
        modal = await shown(pilot)
        assert isinstance(built.app.screen_stack[-2], ConfirmModal)
        await pilot.press("f1", "ctrl+p", "f2")  # nothing opens over a request: it has the whole attention
        await settle(pilot)
        assert built.app.screen is modal
        await until_armed(pilot, modal)
        await pilot.press("escape")
        with pytest.raises(DeniedError):
            await asked
        await gone(pilot)
        assert isinstance(built.app.screen, ConfirmModal)  # the dialog underneath is as it was


async def test_once_serves_one_request_and_the_next_one_asks_again(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        asked = broker_get(built.vault, CREDENTIAL)
        await shown(pilot)
        await pilot.press("1")
        reply = await asked
        assert served(reply) == value_of(built, CREDENTIAL)
        await gone(pilot)
        assert "Allowed github-pat-ci once." in toasts(built.app)
        [grant] = Grants(built.vault).list(include_inactive=True)
        assert grant.uses_left == 0 and grant.state(built.clock()) == "used"

        again = broker_get(built.vault, CREDENTIAL)
        await shown(pilot)
        await pilot.click("#approval-deny")
        with pytest.raises(DeniedError):
            await again


async def test_one_hour_serves_the_next_request_without_asking(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        asked = broker_get(built.vault, CREDENTIAL)
        await shown(pilot)
        await pilot.press("3")
        await asked
        await gone(pilot)
        [grant] = Grants(built.vault).list()
        assert grant.expires_at == built.clock() + 3600 and grant.uses_left is None
        reply = await asyncio.wait_for(broker_get(built.vault, CREDENTIAL), 10)
        assert served(reply) == value_of(built, CREDENTIAL)
        assert not isinstance(built.app.screen, ApprovalModal)


async def test_session_is_offered_only_to_a_request_from_an_agent_session(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        asked = broker_get(built.vault, CREDENTIAL)
        modal = await shown(pilot)
        assert modal.query_one("#approval-session").disabled
        assert "none: this applies to every request made outside a session" in screen_text(built.app)
        assert "✗ not sandboxed" in screen_text(built.app)
        await pilot.press("4")  # not offered: nothing happens
        await settle(pilot)
        assert built.app.screen is modal
        await until_armed(pilot, modal)
        await pilot.press("escape")
        with pytest.raises(DeniedError):
            await asked

        session, token = Sessions(built.vault).start("acme/dev", 7200, label="claude-fix")
        asked = broker_get(built.vault, CREDENTIAL, session=token)
        modal = await shown(pilot)
        assert not modal.query_one("#approval-session").disabled
        text = screen_text(built.app)
        assert f"{session.id} · acme/dev · not bound" in text and "claude-fix" in text
        await pilot.press("4")
        await asked
        [grant] = Grants(built.vault).list()
        assert grant.session_id == session.id and grant.expires_at == session.expires_at
        assert "Allowed github-pat-ci for this agent session." in toasts(built.app)


async def test_the_pop_up_says_whether_the_asking_session_is_sandboxed(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        session, token = Sessions(built.vault).start("acme/dev", 7200, label="contained")
        Sessions(built.vault).mark_sandboxed(session.id)
        asked = broker_get(built.vault, CREDENTIAL, session=token)
        modal = await shown(pilot)
        text = screen_text(built.app)
        assert "✓ sandboxed" in text and "not sandboxed" not in text
        await pilot.press("d")
        with pytest.raises(DeniedError):
            await asked
        await gone(pilot)

        loose, loose_token = Sessions(built.vault).start("acme/dev", 7200, label="loose")
        asked = broker_get(built.vault, CREDENTIAL, session=loose_token)
        modal = await shown(pilot)
        assert "✗ not sandboxed" in screen_text(built.app)
        await pilot.press("d")
        with pytest.raises(DeniedError):
            await asked
        assert modal is not None


async def test_an_edited_scope_is_what_the_grant_covers(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        asked = broker_get(built.vault, CREDENTIAL, scopes=["repo:read"])
        modal = await shown(pilot)
        assert "repo:read" in plain(modal.query_one("#approval-row-scope"))
        await pilot.press("e")
        field = modal.query_one("#approval-scope")
        assert field.display and field.has_focus and field.value == "repo:read"
        await pilot.press("end", *" bad scope!")
        await pilot.press("enter")  # checked on the way out of the field
        assert "✖ scope 'scope!'" in plain(modal.query_one("#approval-error"))
        assert field.has_focus
        await pilot.press(*["backspace"] * len(" bad scope!"), *", repo:push", "enter")
        assert built.app.focused.id == "approval-deny"  # Enter leaves the field; choosing is separate
        assert not modal.query_one("#approval-error").display
        await until_armed(pilot, modal)
        await pilot.press("2")
        await asked
        [grant] = Grants(built.vault).list()
        assert grant.scopes == ("repo:push", "repo:read")
        assert grant.expires_at == built.clock() + 900
        # The edited scope covers a request for repo:push without asking again.
        await asyncio.wait_for(broker_get(built.vault, CREDENTIAL, scopes=["repo:push"]), 10)
        assert not isinstance(built.app.screen, ApprovalModal)


async def test_e_twice_closes_the_scope_field_and_the_grant_keeps_the_asked_scopes(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        asked = broker_get(built.vault, CREDENTIAL, scopes=["repo:read"])
        modal = await shown(pilot)
        await pilot.press("e", "end", *" repo:admin", "tab")
        await until_armed(pilot, modal)  # a key right after another (the tab) does nothing
        await pilot.press("e")
        assert not modal.query_one("#approval-scope").display
        assert built.app.focused.id == "approval-deny"
        await until_armed(pilot, modal)
        await pilot.press("1")
        await asked
        [grant] = Grants(built.vault).list(include_inactive=True)
        assert grant.scopes == ("repo:read",)


async def test_two_requests_queue_and_show_one_at_a_time_in_arrival_order(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        first = broker_get(built.vault, CREDENTIAL)
        modal = await shown(pilot)
        second = broker_get(built.vault, OTHER)
        await wait_until(pilot, lambda: "1 of 2" in title(modal), what="the second request to be counted")
        assert modal.request.credential.name == CREDENTIAL
        assert "broker ● serving · 2 pending" in plain(built.app.screen_stack[-2].query_one("#top-bar"))
        await pilot.press("d")
        with pytest.raises(DeniedError):
            await first
        modal = await shown(pilot, OTHER)
        assert title(modal).startswith("Access request · 1 of 1 ·")
        await pilot.press("1")
        assert served(await second) == value_of(built, OTHER)
        await gone(pilot)


async def test_a_request_that_times_out_closes_its_pop_up_and_tells_the_agent(make_app, broker_runtime):
    built = make_app(host_broker=True, approval_timeout=3)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        asked = broker_get(built.vault, CREDENTIAL)
        # Only that it showed: on a loaded machine it may already be timing out, so no
        # settling and focus checks here (``shown`` does those elsewhere).
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ApprovalModal), timeout=10,
                         what="the approval pop-up")
        with pytest.raises(DeniedError, match="no one approved access to 'github-pat-ci' within 3 s"):
            await asyncio.wait_for(asked, 10)
        await gone(pilot)
        await settle(pilot)
        assert any("ended unanswered" in toast for toast in toasts(built.app))
        assert any(e.operation == "access.timeout" for e in built.vault.audit.entries())


async def test_a_client_that_hangs_up_withdraws_its_pop_up(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        client = BrokerClient.connect(str(built.vault.store.path))
        assert client is not None
        client.send("get", {"ref": CREDENTIAL, "reason": "then I leave"})
        await shown(pilot)
        client.close()
        await gone(pilot)
        await settle(pilot)
        assert any("ended unanswered" in toast for toast in toasts(built.app))
        assert not Grants(built.vault).list(include_inactive=True)


async def test_markup_and_escape_sequences_from_the_agent_are_shown_literally(make_app, broker_runtime):
    name = "evil[/]name"
    built = make_app(host_broker=True, extras=[Extra(name, "s3cret-value-for-literal-test", service="[b]svc")])
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        asked = broker_get(built.vault, name, reason="[b]x[/b] \x1b[31m red [link=http://x]y[/link]")
        await shown(pilot, name)
        text = screen_text(built.app)
        assert "[b]x[/b] ␛[31m red [link=http://x]y[/link]" in text
        assert "evil[/]name  ([b]svc · secret · no context)" in text
        assert "\x1b" not in text
        await pilot.press("d")
        with pytest.raises(DeniedError):
            await asked
        await gone(pilot)
        assert "Denied evil[/]name." in toasts(built.app)


async def test_locking_denies_what_waits_records_it_sealed_and_closes_the_broker(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        path = socket_path(str(built.vault.store.path))
        assert os.path.exists(path)
        asked = broker_get(built.vault, CREDENTIAL)
        await shown(pilot)
        await pilot.press("ctrl+l")
        with pytest.raises(DeniedError):
            await asyncio.wait_for(asked, 10)
        await settle(pilot)
        await wait_until(pilot, lambda: isinstance(built.app.screen, UnlockScreen), what="the unlock screen")
        assert not built.vault.is_unlocked
        assert not os.path.exists(path)
        assert BrokerClient.connect(str(built.vault.store.path)) is None
        assert built.app.broker_service is None
        # The denial was written while the keys could still seal it: read locked, it names nothing.
        [denial] = [e for e in built.vault.audit.entries() if e.operation == "access.deny"]
        assert denial.sealed and denial.target is None


async def test_quitting_the_app_closes_the_broker(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        await hosting(pilot)
        path = socket_path(str(built.vault.store.path))
        assert os.path.exists(path)
    assert not os.path.exists(path)


async def test_an_app_without_a_broker_says_nothing_about_one(make_app):
    built = make_app()
    async with unlocked(built.app) as pilot:
        await settle(pilot)
        assert built.app.broker_service is None and built.app.broker_status is None
        assert "broker ●" not in plain(built.app.screen.query_one("#top-bar"))
        assert "broker ○" not in plain(built.app.screen.query_one("#top-bar"))


async def test_with_aegis_vault_serve_running_the_app_attaches_and_answers_its_requests(make_app, broker_runtime):
    built = make_app(host_broker=True)
    path = str(built.vault.store.path)
    headless_vault = Vault.open(path, clock=built.clock)
    headless_vault.unlock_with_passphrase(Secret(DEMO_PASSPHRASE))
    headless = BrokerServer(BrokerService(headless_vault, mode=HEADLESS), path)
    await headless.start()
    try:
        async with unlocked(built.app) as pilot:
            await wait_until(pilot, lambda: built.app._broker.state is BrokerState.ATTACHED, what="attaching")
            assert "broker ● attached" in plain(built.app.screen.query_one("#top-bar"))
            assert built.app.broker_service is None
            asked = broker_get(built.vault, CREDENTIAL, reason="through serve")
            modal = await shown(pilot)
            asker = plain(modal.query_one("#approval-row-from"))  # came over the owner channel
            assert "executable hidden" not in asker and os.path.basename(os.path.realpath(sys.executable)) in asker
            assert sys.orig_argv[-1] in plain(modal.query_one("#approval-row-runs"))  # the asker's own argv
            await pilot.press("1")
            assert served(await asyncio.wait_for(asked, 10)) == value_of(built, CREDENTIAL)
            await gone(pilot)

            await headless.close()  # serve stops: the app serves the vault itself
            await wait_until(pilot, lambda: built.app._broker.state is BrokerState.SERVING, timeout=10,
                             what="the app to take over")
            asked = broker_get(built.vault, CREDENTIAL)
            await shown(pilot)
            await pilot.press("escape")
            with pytest.raises(DeniedError):
                await asked
    finally:
        await headless.close()
        headless_vault.close()
