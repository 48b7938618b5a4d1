"""The access review screen: open it with ``V``, decide every row by key, finish, export.

The vault is small and built for the purpose (not the demo): one credential for each
decision, with standing grants to narrow, a ``generate`` rotation policy to rotate, and
one fresh, unflagged credential for ``K``. Everything is checked through the core
afterwards: the exported reports verify, a changed character does not, and the vault
holds what was decided.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, DataTable, Input

from aegis_tui.core.agents.grants import Grants
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.demo import DEMO_PASSPHRASE, SettableClock
from aegis_tui.core.errors import IntegrityError
from aegis_tui.core.lifecycle.review import verify_report
from aegis_tui.core.models import Status
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault
from aegis_tui.tui.app import AegisApp
from aegis_tui.tui.screens.confirm_modal import ConfirmModal
from aegis_tui.tui.screens.help_screen import HelpScreen
from aegis_tui.tui.screens.narrow_modal import NarrowModal
from aegis_tui.tui.screens.review_cells import COLUMNS
from aegis_tui.tui.screens.review_result_modal import ReviewResultModal
from aegis_tui.tui.screens.review_screen import ReviewScreen
from aegis_tui.tui.screens.vault_screen import VaultScreen
from aegis_tui.tui.widgets.credential_list import CredentialList

from .conftest import KDF, NOW, SIZE, paste, plain, run, screen_text, settle, toasts, unlock, wait_until

DAY = 86400
REMINDER = "access review due — press V"
NAMES = ("ci-token", "deploy-key", "old-heroku", "stripe-live", "keep-me", "fresh-one")


class Fixture:
    """A vault with one credential per decision, and the app over it."""

    def __init__(self, folder: Path) -> None:
        self.clock = SettableClock(NOW - 200 * DAY)
        self.vault, _ = Vault.create(str(folder / "vault.db"), passphrase=Secret(DEMO_PASSPHRASE), kdf=KDF,
                                     clock=self.clock)
        credentials, grants = Credentials(self.vault), Grants(self.vault)
        added = {name: credentials.add(name, Secret(f"value-of-{name}-0123456789"), context="acme/prod")
                 for name in NAMES[:-1]}
        credentials.edit("stripe-live", rotation_policy={"method": "generate", "length": 40})
        self.narrowed = [grants.create(credential=added["ci-token"], reason=f"nightly job {n}") for n in (1, 2)]
        self.revoked_grant = grants.create(credential=added["deploy-key"], reason="deploys")
        self.clock.pinned = NOW - 10 * DAY  # new enough not to be "unused": nothing flags it
        credentials.add("fresh-one", Secret("value-of-fresh-one-0123456789"), context="acme/dev")
        self.clock.pinned = NOW
        self.vault.lock()
        self.app = AegisApp(self.vault, settings_path=str(folder / "config.toml"), clock=self.clock, live=False,
                            host_broker=False)


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fixture]:
    monkeypatch.setenv("HOME", str(tmp_path))  # the exports' default folder
    fixture = Fixture(tmp_path)
    yield fixture  # type: ignore[misc]
    fixture.vault.close()


@asynccontextmanager
async def reviewing(app: AegisApp) -> AsyncIterator[Pilot]:
    """Unlocked, on the vault screen, then ``V``: the pilot starts on a loaded review."""
    async with run(app, SIZE) as pilot:
        await unlock(pilot)
        await settle(pilot)
        await pilot.press("V")
        await wait_until(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.review is not None,
                         what="the review to load")
        await settle(pilot)
        yield pilot


def reminder(app: AegisApp) -> str:
    """The notice on the vault screen's list frame ("" when none)."""
    screen = app.vault_screen
    assert screen is not None
    return str(screen.query_one(CredentialList).border_subtitle)


def review(app: AegisApp) -> ReviewScreen:
    screen = app.screen
    assert isinstance(screen, ReviewScreen), type(screen).__name__
    return screen


def cell(app: AegisApp, name: str, column: str) -> str:
    """What the table draws in one column (by title, any case) of ``name``'s line."""
    screen = review(app)
    table = screen.query_one(DataTable)
    index = [row.name for row in screen.rows].index(name)
    line = "".join(segment.text for segment in table.render_line(1 + index - int(table.scroll_y)))
    start = 0
    for position, width in screen.columns_shown:
        if COLUMNS[position].title == column.upper():
            return line[start:start + width].strip()
        start += width + 1
    raise AssertionError(f"no column {column!r} on screen")


async def highlight(pilot: Pilot, name: str) -> None:
    """Move the cursor to ``name`` with the keys a person would use."""
    names = [row.name for row in review(pilot.app).rows]  # type: ignore[arg-type]
    await pilot.press("ctrl+home", *["down"] * names.index(name))
    assert review(pilot.app).current.name == name  # type: ignore[arg-type, union-attr]


async def decide(pilot: Pilot, name: str, key: str) -> None:
    await highlight(pilot, name)
    await pilot.press(key)
    await settle(pilot)


async def narrow(pilot: Pilot, name: str, *, untick: tuple[str, ...] = (), shorten: str = "") -> None:
    """``n`` on ``name``, untick some grants (by id), shorten the rest (or revoke them), confirm."""
    await highlight(pilot, name)
    await pilot.press("n")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, NarrowModal), what="the narrow dialog")
    await settle(pilot)
    assert pilot.app.focused.id == "narrow-cancel"  # the safe answer is the default
    for box in pilot.app.screen.query(Checkbox):
        if any(grant_id in str(box.label) for grant_id in untick):
            await pilot.click(f"#{box.id}")
            assert not box.value
    if shorten:
        await pilot.click("#narrow-duration")
        await paste(pilot, shorten)
    await pilot.click("#narrow-ok")
    await settle(pilot)
    assert isinstance(pilot.app.screen, ReviewScreen)


async def test_a_review_decided_by_keys_finishes_exports_verifiable_reports_and_changes_the_vault(built, tmp_path):
    app = built.app
    async with reviewing(app) as pilot:
        screen = review(app)
        names = [row.name for row in screen.rows]
        assert sorted(names) == sorted(NAMES) and names[-1] == "fresh-one"  # flagged rows first
        assert "standing" in cell(app, "ci-token", "flags") and "unused" in cell(app, "ci-token", "flags")
        assert cell(app, "ci-token", "grants") == "2" and cell(app, "fresh-one", "flags") == "—"
        assert cell(app, "fresh-one", "used") == "never" and cell(app, "fresh-one", "decision") == "—"

        await decide(pilot, "keep-me", "k")
        await decide(pilot, "old-heroku", "x")
        await decide(pilot, "stripe-live", "o")
        assert (cell(app, "keep-me", "decision"), cell(app, "old-heroku", "decision"),
                cell(app, "stripe-live", "decision")) == ("✓ keep", "⊘ revoke", "↻ rotate")
        await narrow(pilot, "deploy-key")  # blank duration: its grant is revoked
        assert cell(app, "deploy-key", "decision") == "▾ narrow"
        await highlight(pilot, "deploy-key")  # deciding moved the cursor on
        detail = plain(screen.query_one("#review-detail"))
        assert "1 grant(s): revoke them" in detail and built.revoked_grant.id in detail

        await pilot.press("F")  # ci-token and fresh-one are undecided: refused
        await settle(pilot)
        assert isinstance(app.screen, ReviewScreen)
        assert any("2 credential(s) still have no decision" in toast for toast in toasts(app))

        await narrow(pilot, "ci-token", untick=(built.narrowed[1].id,), shorten="7d")  # the other ends in 7 days
        await pilot.press("K")  # keeps fresh-one, the only undecided row without a flag
        await settle(pilot)
        assert cell(app, "fresh-one", "decision") == "✓ keep"
        assert "kept 1 unflagged credential(s)" in toasts(app)

        await highlight(pilot, "keep-me")
        await pilot.press("u")
        assert cell(app, "keep-me", "decision") == "—" and "keep-me" in screen.review.undecided
        await pilot.press("k")
        await settle(pilot)

        await pilot.press("F")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        counts = plain(app.screen.query_one("#confirm-body"))
        assert "✓ keep 2" in counts and "↻ rotate 1" in counts and "⊘ revoke 1" in counts and "▾ narrow 2" in counts
        assert app.focused.id == "confirm-cancel"
        await pilot.click("#confirm-ok")
        await wait_until(pilot, lambda: isinstance(app.screen, ReviewResultModal), timeout=10, what="the result")
        await settle(pilot)
        outcomes = plain(app.screen.query_one("#review-outcomes Static"))
        assert "rotated to version 2 (generated)" in outcomes and "old-heroku  revoke: revoked" in outcomes

        for suffix in ("md", "json"):
            assert app.screen.query_one(f"#export-{suffix}-path", Input).value == f"~/aegis-review-2026-11-18.{suffix}"
            await pilot.click(f"#export-{suffix}")
            await settle(pilot)
            assert "✓ saved" in plain(app.screen.query_one("#review-export-status"))
        await pilot.click("#export-md")  # never over an earlier report
        await settle(pilot)
        assert "exists" in plain(app.screen.query_one("#review-export-status"))
        await pilot.click("#review-close")
        await wait_until(pilot, lambda: isinstance(app.screen, VaultScreen), what="the vault screen")
        await settle(pilot)

    markdown = (tmp_path / "aegis-review-2026-11-18.md").read_text()
    exported = (tmp_path / "aegis-review-2026-11-18.json").read_text()
    assert os.stat(tmp_path / "aegis-review-2026-11-18.json").st_mode & 0o777 == 0o600
    public_key = bytes.fromhex(json.loads(exported)["public_key"])
    for text in (markdown, exported):
        report = verify_report(text, expected_public_key=public_key)
        assert {entry["name"]: entry["action"] for entry in report.decisions} == {
            "ci-token": "narrow", "deploy-key": "narrow", "old-heroku": "revoke", "stripe-live": "rotate",
            "keep-me": "keep", "fresh-one": "keep"}
    tampered = exported.replace('"action": "revoke"', '"action": "revokf"', 1)
    assert tampered != exported
    with pytest.raises(IntegrityError):
        verify_report(tampered)

    vault = built.vault
    credentials, grants = Credentials(vault), Grants(vault)
    assert credentials.find("old-heroku").status is Status.REVOKED
    assert credentials.find("stripe-live").current_version == 2
    assert credentials.find("keep-me").current_version == 1
    assert grants.get(built.revoked_grant.id).state(NOW) == "revoked"
    shortened, untouched = (grants.get(grant.id) for grant in built.narrowed)
    assert shortened.expires_at == NOW + 7 * DAY and shortened.state(NOW) == "active"
    assert untouched == built.narrowed[1]
    decided = {entry.target for entry in vault.audit.entries() if entry.operation == "review.decision"}
    assert decided == set(NAMES)


async def test_the_vault_screen_asks_for_a_review_until_one_is_finished_and_again_after_90_days(built):
    app = built.app
    async with reviewing(app) as pilot:
        assert REMINDER in reminder(app)
        assert "never reviewed before" in plain(review(app).query_one("#review-top"))
        for name in NAMES[:-1]:
            await decide(pilot, name, "k")
        await pilot.press("K")
        await pilot.press("F")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        await pilot.click("#confirm-ok")
        await wait_until(pilot, lambda: isinstance(app.screen, ReviewResultModal), timeout=10, what="the result")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, VaultScreen), what="the vault screen")
        await wait_until(pilot, lambda: REMINDER not in reminder(app), what="the reminder to go")

        built.clock.pinned = NOW + 91 * DAY
        app.screen.check_review()  # as on the next unlock
        await wait_until(pilot, lambda: REMINDER in reminder(app), what="the reminder to come back")


async def test_leaving_the_review_applies_nothing_and_names_are_drawn_literally(tmp_path):
    fixture = Fixture(tmp_path)
    try:
        fixture.vault.unlock_with_passphrase(Secret(DEMO_PASSPHRASE))
        Credentials(fixture.vault).add("evil[/]name", Secret("value-of-evil-0123456789"), context="acme/dev")
        fixture.vault.lock()
        app = fixture.app
        async with reviewing(app) as pilot:
            assert cell(app, "evil[/]name", "name") == "evil[/]name"
            await highlight(pilot, "evil[/]name")
            assert plain(review(app).query_one("#review-detail")).startswith("evil[/]name · secret · acme/dev")
            await pilot.press("x")
            await settle(pilot)
            assert cell(app, "evil[/]name", "decision") == "⊘ revoke"
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(app.screen, VaultScreen)
            assert Credentials(fixture.vault).find("evil[/]name").status is Status.ACTIVE
            assert not [e for e in fixture.vault.audit.entries() if e.operation.startswith("review.")]
    finally:
        fixture.vault.close()


async def test_help_on_the_review_lists_its_keys_first(built):
    app = built.app
    async with reviewing(app) as pilot:
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        assert text.index("Access review") < text.index("Vault") and "review.keep_unflagged" in text
