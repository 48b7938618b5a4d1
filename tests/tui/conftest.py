"""Fixtures for the Textual app: a real demo vault (SQLite file) and the real app.

- ``make_app``: a factory for ``AegisApp`` over a fresh demo vault in ``tmp_path``: frozen
  clock, fast KDF, ``live=False`` unless asked (no timers, no cursor blink). Extra
  credentials can be added through the core before the app starts. The app hosts no
  broker (opens no socket) unless asked with ``host_broker=True``.
- ``unlock`` / ``settle`` / ``wait_until``: pilot helpers; ``unlocked(app)`` runs the
  app and unlocks it.
- ``snapshot_app``: a deterministic app for screenshots (fixed actor, relative paths,
  UTC), so the pictures do not depend on the temp folder, the process or the time zone.
- ``broker_runtime`` / ``broker_get``: a private socket folder for an app that hosts its
  broker, and a real client asking that broker from a thread.

Secret values never reach an assertion message: helpers compare and return a bool.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, Select

from aegis_tui.core.actor import Actor
from aegis_tui.core.approvals import DEFAULT_APPROVAL_TIMEOUT
from aegis_tui.core.broker.client import BrokerClient
from aegis_tui.core.config import Settings
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.crypto import new_kdf_params
from aegis_tui.core.demo import DEMO_PASSPHRASE, SettableClock, create_demo_vault, seed_demo_vault
from aegis_tui.core.models import Kind
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault
from aegis_tui.tui.app import AegisApp
from aegis_tui.tui.screens.unlock_screen import UnlockScreen
from aegis_tui.tui.screens.vault_screen import VaultScreen
from aegis_tui.tui.widgets.credential_list import CredentialList

NOW = 1795000000.0  # 2026-11-18, a frozen "now" for every test
KDF = new_kdf_params(memory_kib=8, iterations=1, lanes=1)
SIZE = (120, 40)
DEMO_COUNT = 40  # 36 catalogue entries + 4 TOTP seeds
# The actor recorded by snapshot vaults: the audit panel shows the program name, which
# otherwise depends on how pytest was started (pytest, xdist worker, ...).
SNAPSHOT_ACTOR = Actor(user="tester", uid=1000, pid=4242, program="aegis-vault", parent_pid=1, parent="init")


# -- building apps ---------------------------------------------------------------------------
@dataclass
class Extra:
    """A credential to add through the core before the app starts."""

    name: str
    value: str
    kind: Kind = Kind.SECRET
    context: str = ""
    service: str = ""
    notes: str = ""


@dataclass
class Built:
    app: AegisApp
    vault: Vault
    clock: SettableClock
    folder: Path
    settings_path: Path

    def credentials(self) -> Credentials:
        """Core access; the vault must be unlocked (it is, once the app unlocked it)."""
        return Credentials(self.vault)


def add_through_core(vault: Vault, extras: Iterable[Extra]) -> None:
    """Unlock, add, lock: the vault is locked again for the unlock screen."""
    extras = list(extras)
    if not extras:
        return
    vault.unlock_with_passphrase(Secret(DEMO_PASSPHRASE))
    try:
        credentials = Credentials(vault)
        for extra in extras:
            credentials.add(extra.name, Secret(extra.value), kind=extra.kind, context=extra.context,
                            service=extra.service, notes=extra.notes)
    finally:
        vault.lock()


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., Built]:
    built: list[Built] = []

    def factory(settings: Settings | None = None, *, live: bool = False, extras: Iterable[Extra] = (),
                host_broker: bool = False, approval_timeout: float = DEFAULT_APPROVAL_TIMEOUT) -> Built:
        folder = tmp_path / f"app{len(built)}"
        folder.mkdir(mode=0o700)
        clock = SettableClock(NOW)
        vault = create_demo_vault(str(folder), KDF, clock)
        extras = list(extras)
        add_through_core(vault, extras)
        settings_path = folder / "config.toml"
        app = AegisApp(vault, settings=settings or Settings(), settings_path=str(settings_path), clock=clock,
                       live=live, host_broker=host_broker, approval_timeout=approval_timeout)
        result = Built(app, vault, clock, folder, settings_path)
        built.append(result)
        return result

    yield factory  # type: ignore[misc]
    for result in built:
        result.vault.close()


# -- pilot helpers ---------------------------------------------------------------------------
async def settle(pilot: Pilot, rounds: int = 4) -> None:
    """Let workers (unlock, reload, verify) finish and their results reach the widgets.

    A worker hands its result over with ``call_from_thread``, which returns only once the
    callback ran; that callback may start the next worker (reload starts verify). So:
    wait, let the app run, and stop as soon as no worker is left.
    """
    for _ in range(rounds):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not pilot.app.workers:
            return


async def wait_until(pilot: Pilot, predicate: Callable[[], object], timeout: float = 3.0,
                     what: str = "condition") -> None:
    """Poll ``predicate`` while the app runs; fail after a generous ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)


async def until_armed(pilot: Pilot, modal: object) -> None:
    """Wait, as a person reading it would, until the approval pop-up takes answers (it
    ignores keys for its first second, and a key right after another)."""
    await wait_until(pilot, lambda: modal.armed, timeout=5, what="the pop-up to take answers")  # type: ignore[attr-defined]


async def unlock(pilot: Pilot, passphrase: str = DEMO_PASSPHRASE, *, type_it: bool = False) -> None:
    """Submit the passphrase on the unlock screen and wait until the vault screen is filled.

    ``type_it`` presses every key; otherwise the text is put in the (focused) field and
    Enter is pressed, which is the same submit path, only faster.
    """
    app = pilot.app
    await pilot.pause()
    assert isinstance(app.screen, UnlockScreen), type(app.screen).__name__
    if type_it:
        await pilot.press(*passphrase)
    else:
        field = app.screen.query_one("#passphrase")
        assert field.has_focus
        field.value = passphrase  # type: ignore[attr-defined]
    await pilot.press("enter")
    await settle(pilot)
    if isinstance(app.screen, VaultScreen):
        await wait_until(pilot, lambda: len(app.screen.query_one(CredentialList).rows) > 0, what="the list to fill")
        await settle(pilot, 1)


def run(app: AegisApp, size: tuple[int, int] = SIZE):  # type: ignore[no-untyped-def]
    """``app.run_test`` with toasts on (``run_test`` turns them off by default)."""
    return app.run_test(size=size, notifications=True)


@asynccontextmanager
async def unlocked(app: AegisApp, size: tuple[int, int] = SIZE) -> AsyncIterator[Pilot]:
    """Run the app and unlock it: the pilot starts on a filled vault screen."""
    async with run(app, size) as pilot:
        await unlock(pilot)
        assert isinstance(app.screen, VaultScreen)
        yield pilot


def vault_screen(app: AegisApp) -> VaultScreen:
    screen = app.screen
    assert isinstance(screen, VaultScreen), type(screen).__name__
    return screen


def listing(app: AegisApp) -> CredentialList:
    return vault_screen(app).query_one(CredentialList)


def row_names(app: AegisApp) -> list[str]:
    return [c.name for c in listing(app).rows]


async def select(pilot: Pilot, name: str) -> None:
    """Put the list cursor on ``name`` as a person would: Home or End to scroll, then a click."""
    widget = listing(pilot.app)  # type: ignore[arg-type]
    names = [c.name for c in widget.rows]
    assert name in names, f"{name!r} is not in the list"
    index = names.index(name)
    assert widget.has_focus, "the list needs the focus for Home/End"
    visible = widget.size.height - 1  # the first line is the header
    await pilot.press("home" if index < visible else "end")  # press and click wait until idle
    row = index - int(widget.scroll_y)
    assert 0 <= row < visible
    await pilot.click(widget, offset=(4, 2 + row))  # +1 border, +1 header
    assert widget.current is not None and widget.current.name == name
    assert widget.has_focus


async def paste(pilot: Pilot, text: str) -> None:
    """Paste into the focused widget: the event a terminal sends for a bracketed paste."""
    pilot.app.post_message(events.Paste(text))
    await pilot.pause()


async def type_into(pilot: Pilot, selector: str, text: str, *, keys: bool = False) -> None:
    """Click a field, empty it, then paste ``text`` (or type it key by key with ``keys``)."""
    await pilot.click(selector)
    field = pilot.app.screen.query_one(selector, Input)
    assert field.has_focus
    if field.value:
        await pilot.press("end", *["backspace"] * len(field.value))
    if text:
        if keys:
            await pilot.press(*text)
        else:
            await paste(pilot, text)
    assert field.value == text


async def choose(pilot: Pilot, selector: str, label: str, among: list[str], value: object = None) -> None:
    """Open a Select with a click, type the shortest start of ``label`` that no other option
    in ``among`` shares (type-to-search), press Enter."""
    prefix = next(label[:n] for n in range(1, len(label) + 1)
                  if sum(other.startswith(label[:n]) for other in among) == 1 or n == len(label))
    await pilot.click(selector)
    await pilot.press(*prefix, "enter")
    chosen = pilot.app.screen.query_one(selector, Select).value
    assert chosen == (label if value is None else value), chosen


def list_lines(widget: CredentialList) -> list[str]:
    """What the list draws, line by line (header first), as plain text."""
    return ["".join(segment.text for segment in widget.render_line(y)) for y in range(widget.size.height)]


def plain(widget: Widget) -> str:
    """The text a Static (or similar) currently shows."""
    rendered = widget.render()
    return getattr(rendered, "plain", None) or str(rendered)


def screen_text(app: AegisApp) -> str:
    """Every character on the terminal, from an SVG screenshot (spaces normalised)."""
    svg = app.export_screenshot()
    lines = re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    return html.unescape("".join(lines)).replace("\xa0", " ")


def toasts(app: AegisApp) -> list[str]:
    return [plain(toast) for toast in app.screen.query("Toast")]


def digest(value: str | bytes) -> str:
    """Compare secrets by digest, so a failing assertion never prints one."""
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()[:16]


# -- snapshots ------------------------------------------------------------------------------
@pytest.fixture
def snapshot_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., AegisApp]:
    """An app whose screenshot is the same on every run and machine setup.

    The vault path and settings path are relative (the test runs in ``tmp_path``), the
    actor is fixed, and times are shown in UTC.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.delenv("AEGIS_SESSION", raising=False)
    monkeypatch.delenv("AEGIS_VAULT_KEY", raising=False)
    time.tzset()
    vaults: list[Vault] = []

    def factory(settings: Settings | None = None, *, host_broker: bool = False) -> AegisApp:
        clock = SettableClock(NOW)
        os.makedirs("demo", mode=0o700, exist_ok=True)
        vault, _recovery = Vault.create("demo/vault.db", passphrase=Secret(DEMO_PASSPHRASE), kdf=KDF, clock=clock,
                                        actor=SNAPSHOT_ACTOR)

        def set_clock(moment: float) -> None:
            clock.pinned = moment

        seed_demo_vault(vault, set_clock, NOW)
        clock.pinned = NOW
        vault.lock()
        vaults.append(vault)
        return AegisApp(vault, settings=settings or Settings(), settings_path="demo/config.toml", clock=clock,
                        live=False, host_broker=host_broker)

    yield factory  # type: ignore[misc]
    for vault in vaults:
        vault.close()
    monkeypatch.undo()
    time.tzset()


# -- the app's broker ---------------------------------------------------------------------------
@pytest.fixture
def broker_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private ``XDG_RUNTIME_DIR`` for this test's broker sockets, and no ``AEGIS_SESSION``:
    brokers of parallel tests never meet, and no client names a session by accident."""
    folder = tempfile.mkdtemp(prefix="aegis-rt-", dir="/tmp")  # short: a socket path has 107 bytes at most
    os.chmod(folder, 0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", folder)
    monkeypatch.delenv("AEGIS_SESSION", raising=False)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def broker_get(vault: Vault, ref: str, *, reason: str = "", session: str | None = None,
               scopes: Iterable[str] = ()) -> asyncio.Future[dict[str, object]]:
    """``get`` through the broker serving ``vault``, from a real blocking client in a thread,
    as an agent's ``aegis-vault get`` would; the future holds the reply or the error."""
    def call() -> dict[str, object]:
        client = BrokerClient.connect(str(vault.store.path), session=session)  # type: ignore[attr-defined]
        if client is None:
            raise AssertionError("no broker serves the vault")
        with client:
            return client.call("get", {"ref": ref, "reason": reason, "scopes": list(scopes)}, timeout=60)

    return asyncio.ensure_future(asyncio.to_thread(call))
