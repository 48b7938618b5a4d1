"""Attacks on the approval pop-up: the one place a human says yes.

Everything an agent controls reaches the pop-up (through the broker it is already made
literal; these tests hand the dialog raw hostile text anyway, as a broker of another
version or a relayed request could): it must be drawn as visible symbols, never
interpreted by the terminal, and marked as the agent's claim. And a key typed for
something else must never approve a request that pops up under it.

The app hosts a real broker; the requests go into its real approval queue.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata

from textual.content import Content

from aegis_tui.core.agents.sessions import AgentSession
from aegis_tui.core.approvals import PendingRequest
from aegis_tui.core.processes import PeerInfo, ProcessInfo
from aegis_tui.core.credentials import Credentials
from aegis_tui.tui.screens.approval_modal import ApprovalModal
from aegis_tui.tui.screens.confirm_modal import ConfirmModal
from tests.tui.conftest import (NOW, broker_runtime, make_app, screen_text, settle, unlocked,  # noqa: F401
                                toasts, until_armed, wait_until)

CREDENTIAL = "github-pat-ci"
# Clear the screen, set the window title, write the clipboard (OSC 52), move the cursor,
# reverse the text that follows (RLO), hide a word behind zero-width characters.
HOSTILE = "\x1b[2J\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x1b[10;10H\u202egnp.exe\u200b\u200d\ufeffok\x9b31m"
INVISIBLE = {chr(c) for c in range(0x20)} - {"\n"} | {chr(c) for c in range(0x7F, 0xA0)} | {
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e",
    "\u200f", "\u061c", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"}


def hostile_request(credential, session: AgentSession | None, request_id: int = 7) -> PendingRequest:  # type: ignore[no-untyped-def]
    chain = (ProcessInfo(4121, "claude" + HOSTILE, "/usr/bin/node" + HOSTILE),
             ProcessInfo(4080, "zsh" + HOSTILE, "?"))  # a process that hid its executable: its name shows
    peer = PeerInfo(pid=4121, uid=1000, exe="/usr/bin/node" + HOSTILE, cwd="/home/dev/src" + HOSTILE,
                    chain=chain, ancestry=(), cmdline=("node", "agent" + HOSTILE))
    return PendingRequest(
        id=request_id, created_at=NOW, deadline=NOW + 120, peer=peer, session=session,
        credential=credential._replace(name="github" + HOSTILE),
        scopes=("repo:push" + HOSTILE,), reason="please" + HOSTILE, duration=900, via="via" + HOSTILE,
        right="inject", command=("git", "push" + HOSTILE), program="/usr/bin/git" + HOSTILE, bound=True,
        outside_project="acme/dev" + HOSTILE, warnings=("exposed",))


def hostile_session() -> AgentSession:
    return AgentSession(id="as_4f1c2a9e7b3d5c80", label="claude" + HOSTILE, context="acme/dev",
                        created_at=NOW - 60, expires_at=NOW + 3600, root_pid=4121, root_started=1)


def drawn_text(modal: ApprovalModal) -> str:
    """Every string the dialog's widgets will hand to the terminal."""
    parts = []
    for widget in modal.query("*"):
        rendered = widget.render()
        parts.append(getattr(rendered, "plain", None) or str(rendered))
    return "\n".join(parts)


async def showing(pilot, request: PendingRequest) -> ApprovalModal:  # type: ignore[no-untyped-def]
    app = pilot.app
    await wait_until(pilot, lambda: app.broker_service is not None, what="the broker to start")
    asyncio.ensure_future(app.broker_service.approvals.ask(request))
    await wait_until(pilot, lambda: isinstance(app.screen, ApprovalModal), what="the pop-up")
    await settle(pilot, 1)
    return app.screen


async def test_no_agent_supplied_text_reaches_the_terminal_as_a_control_bidi_or_zero_width_character(
        make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        credential = Credentials(built.vault).find(CREDENTIAL)
        modal = await showing(pilot, hostile_request(credential, hostile_session()))
        for text in (drawn_text(modal), screen_text(built.app)):
            found = sorted({f"U+{ord(ch):04X}" for ch in text if ch in INVISIBLE})
            assert not found, f"the pop-up drew {found} as they are"
        drawn = drawn_text(modal)
        # Each field the agent controls shows its tricks as visible symbols.
        for shown in ("please", "via", "repo:push", "/home/dev/src", "/usr/bin/node", "/usr/bin/git", "push",
                      "claude", "zsh", "agent", "github", "acme/dev"):
            assert f"{shown}␛[2J" in drawn, f"{shown}: its escape sequence is not shown as ␛"
        assert "U+202E" in drawn and "U+200B" in drawn and "U+FEFF" in drawn
        assert "⟨agent says⟩" in drawn and "⟨verified⟩" in drawn
        # Answering says which credential: the toast draws its name literally too.
        await until_armed(pilot, modal)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(built.app.screen, ApprovalModal), what="the pop-up to close")
        await wait_until(pilot, lambda: toasts(built.app), what="the toast")
        told = "\n".join(toasts(built.app))
        assert "Denied github␛[2J" in told
        found = sorted({f"U+{ord(ch):04X}" for ch in told + screen_text(built.app) if ch in INVISIBLE})
        assert not found, f"the toast drew {found} as they are"


async def test_what_the_broker_verified_is_shown_apart_and_a_reveal_in_the_danger_colour(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        credential = Credentials(built.vault).find(CREDENTIAL)
        plain = hostile_request(credential, None)._replace(
            reason="deploy", via="aegis-vault get", scopes=(), right="reveal", command=(), program="",
            bound=False, outside_project="", warnings=("exposed", "open incident"),
            peer=PeerInfo(4121, 1000, "/usr/bin/python3.11", "/home/dev/src",
                          (ProcessInfo(4121, "aegis-vault", "/usr/bin/python3.11"),
                           ProcessInfo(4080, "zsh", "/usr/bin/zsh")), (), ()))
        modal = await showing(pilot, plain)
        drawn = drawn_text(modal)
        assert "/usr/bin/python3.11" in drawn and "/usr/bin/zsh" in drawn  # executables, not comm names
        assert "REVEAL" in drawn and "exposed" in drawn and "open incident" in drawn
        right = modal.query_one("#approval-row-right")
        assert "error" in str(right.render().spans), "a reveal is not drawn in the danger colour"


async def test_digits_typed_into_the_filter_as_a_request_pops_up_never_approve_it(
        make_app, broker_runtime, monkeypatch):
    # A key a fifth of a second after the last is typing. The quiet time is doubled here so
    # a loaded test machine that stalls the pilot half a second between two keys (seen
    # with -n 2) does not turn this typist into someone who stopped, read and chose.
    monkeypatch.setattr(ApprovalModal, "QUIET_SECONDS", 1.0)
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        app = built.app
        await wait_until(pilot, lambda: app.broker_service is not None, what="the broker to start")
        await pilot.press("slash")
        credential = Credentials(built.vault).find(CREDENTIAL)
        request = hostile_request(credential, None)._replace(reason="", right="inject")
        asked = asyncio.ensure_future(app.broker_service.approvals.ask(request))
        typing_until = time.monotonic() + 2.0
        while time.monotonic() < typing_until:  # someone typing "1 1 1" in the filter, 5 keys a second
            await pilot.press("1")
            await pilot.pause(0.2)
        assert isinstance(app.screen, ApprovalModal), "the pop-up did not stay up"
        assert not asked.done(), "a digit typed for the filter approved the request"
        assert app.screen.query_one("#approval-scope").value == ""  # nor landed in the pop-up
        await pilot.pause(1.6)  # a human who stopped typing, read the dialog, and chose
        await pilot.press("escape")
        decision = await asyncio.wait_for(asked, 5)
        assert decision is not None and not decision.allow


async def test_a_key_pressed_right_as_the_pop_up_appears_does_nothing_and_works_once_it_has_been_read(
        make_app, broker_runtime, monkeypatch):
    monkeypatch.setattr(ApprovalModal, "ARM_SECONDS", 3.0)  # "right as it appears" even on a loaded machine
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        app = built.app
        await wait_until(pilot, lambda: app.broker_service is not None, what="the broker to start")
        credential = Credentials(built.vault).find(CREDENTIAL)
        asked = asyncio.ensure_future(app.broker_service.approvals.ask(hostile_request(credential, None)))
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalModal), what="the pop-up")
        await pilot.press("1")
        await pilot.pause(0.2)
        assert not asked.done(), "a key pressed as the pop-up appeared approved it"
        await until_armed(pilot, app.screen)
        await pilot.press("1")
        decision = await asyncio.wait_for(asked, 5)
        assert decision is not None and decision.allow and decision.uses == 1


async def test_keys_that_change_the_answer_do_nothing_either_before_the_pop_up_has_been_read(
        make_app, broker_runtime, monkeypatch):
    # "b" would widen what the grant is bound to, "e" would open the scope field and take
    # the typing that follows: someone typing "rebase" into the filter must do neither.
    monkeypatch.setattr(ApprovalModal, "ARM_SECONDS", 3.0)  # the keys come in time even on a loaded machine
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        app = built.app
        await wait_until(pilot, lambda: app.broker_service is not None, what="the broker to start")
        credential = Credentials(built.vault).find(CREDENTIAL)
        asked = asyncio.ensure_future(app.broker_service.approvals.ask(hostile_request(credential, None)))
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalModal), what="the pop-up")
        modal = app.screen
        bound_to = str(modal.query_one("#approval-row-bind").render())
        await pilot.press("b", "e", "a", "s", "e")
        await pilot.pause(0.2)
        assert str(modal.query_one("#approval-row-bind").render()) == bound_to
        assert not modal.query_one("#approval-scope").display and app.focused.id == "approval-deny"
        await until_armed(pilot, modal)
        await pilot.press("b")  # read and chosen: now it counts
        assert str(modal.query_one("#approval-row-bind").render()) != bound_to
        await until_armed(pilot, modal)
        await pilot.press("1")
        decision = await asyncio.wait_for(asked, 5)
        assert decision is not None and decision.allow and decision.bind == "program"


async def test_a_pop_up_shown_again_after_another_screen_covered_it_must_be_read_again(make_app, broker_runtime):
    built = make_app(host_broker=True)
    async with unlocked(built.app) as pilot:
        app = built.app
        credential = Credentials(built.vault).find(CREDENTIAL)
        modal = await showing(pilot, hostile_request(credential, None))
        await until_armed(pilot, modal)
        await app.push_screen(ConfirmModal(Content("Something else?"), Content(""), "Yes"))  # over it, then gone
        await pilot.pause(1.2)
        app.pop_screen()
        await pilot.pause()
        assert app.screen is modal and not modal.armed
        await until_armed(pilot, modal)


def test_an_attached_app_gets_what_the_broker_verified_and_cleans_every_text_again() -> None:
    # The broker sends pending requests to an attached app; that app must see the same
    # executables and command line, and must not trust the sender to have cleaned them.
    from aegis_tui.core.models import Credential, Kind, Status

    credential = Credential(id="c1", name="github" + HOSTILE, kind=Kind("access_token"), service="git" + HOSTILE,
                            context="acme/dev" + HOSTILE, status=Status("active"))
    sent = hostile_request(credential, hostile_session())
    received = PendingRequest.from_wire(sent.to_wire())
    assert [p.pid for p in received.peer.chain] == [4121, 4080]
    assert received.peer.chain[0].exe.startswith("/usr/bin/node␛[2J") and received.peer.chain[1].exe == "?"
    assert received.peer.cmdline[0] == "node" and received.peer.cmdline[1].startswith("agent␛[2J")
    assert received.command[1].startswith("push␛[2J") and received.program.startswith("/usr/bin/git␛[2J")
    assert received.right == "inject" and received.bound and received.warnings == ("exposed",)
    texts = [received.reason, received.via, received.program, received.outside_project, *received.scopes,
             *received.command, *received.warnings, received.peer.exe, received.peer.cwd, *received.peer.cmdline,
             *(p.name for p in received.peer.chain), *(p.exe for p in received.peer.chain),
             received.session.label, received.session.context, received.credential.name,
             received.credential.service, received.credential.context]
    found = sorted({f"U+{ord(ch):04X}" for text in texts for ch in text if ch in INVISIBLE})
    assert not found, f"from_wire kept {found} as they are"


def test_literal_draws_every_invisible_format_character_as_a_visible_symbol() -> None:
    from aegis_tui.core.approvals import literal

    shown = literal(HOSTILE + "\u2066\u2069\u061c\u00ad")
    assert not {ch for ch in shown if ch in INVISIBLE or unicodedata.category(ch) in ("Cc", "Cf")}
    assert "␛" in shown and "U+202E" in shown and "U+2066" in shown and "U+00AD" in shown
    # Letters and marks that draw nothing: Hangul fillers, the blank braille pattern, the
    # combining grapheme joiner, variation selectors; and a lone surrogate from a cmdline.
    blank = "\u115f\u1160\u3164\uffa0\u2800\u034f\ufe0f\U000e0100\udc80"
    shown = literal(f"a{blank}b")
    assert shown.startswith("a") and shown.endswith("b") and not set(blank) & set(shown)
    assert all(f"U+{ord(ch):04X}" in shown for ch in blank)
