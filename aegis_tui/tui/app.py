"""The Textual app: wiring only. Screens do the work; the core holds the data.

Owns the vault (locked until the unlock screen opens it), the settings, the clock
(injectable, so tests and screenshots can freeze time) and the idle lock. Locking drops
the vault's keys and the vault screen with every decrypted name and value in it.

While the vault is unlocked the app also hosts the broker agents ask for credentials,
and is the only place their requests get approved: each one pops up over whatever is
open, one at a time, oldest first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.widgets import Input

from aegis_tui.core.approvals import DEFAULT_APPROVAL_TIMEOUT, PendingRequest
from aegis_tui.core.broker.service import BrokerService
from aegis_tui.core.config import Settings, config_path, save_settings
from aegis_tui.core.vault import Vault
from aegis_tui.tui.broker_host import BrokerHost, BrokerState
from aegis_tui.tui.commands import AegisCommands
from aegis_tui.tui.screens.agent_table_screen import AgentTableScreen
from aegis_tui.tui.screens.approval_modal import ApprovalModal
from aegis_tui.tui.screens.help_screen import HelpScreen
from aegis_tui.tui.screens.review_screen import ReviewScreen
from aegis_tui.tui.screens.settings_screen import SettingsScreen
from aegis_tui.tui.screens.unlock_screen import UnlockScreen
from aegis_tui.tui.screens.vault_screen import VaultScreen
from aegis_tui.tui.themes import AEGIS

_ACTIVITY = (events.Key, events.MouseDown, events.MouseScrollDown, events.MouseScrollUp)
_NOT_OVER_APPROVALS = {"command_palette", "help", "settings"}  # an approval has the person's whole attention


class AegisApp(App[None]):
    CSS_PATH = "aegis.tcss"
    TITLE = "aegis-vault"
    COMMANDS = App.COMMANDS | {AegisCommands}
    BINDINGS = [
        Binding("ctrl+l", "lock", "Lock", id="app.lock", tooltip="Lock the vault now",
                priority=True),  # priority: also from inside a dialog
        Binding("f1,question_mark", "help", "Help", id="app.help", tooltip="Every key"),
        Binding("f2", "settings", "Settings", id="app.settings", tooltip="Timeouts and theme"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, show=False),
    ]

    def __init__(
        self,
        vault: Vault,
        *,
        settings: Settings | None = None,
        settings_path: str | None = None,
        clock: Callable[[], float] = time.time,
        demo_passphrase: str | None = None,
        live: bool = True,
        host_broker: bool = True,
        approval_timeout: float = DEFAULT_APPROVAL_TIMEOUT,
    ) -> None:
        super().__init__()
        self.vault = vault
        self.settings = settings or Settings()
        self.settings_path = settings_path or config_path()
        self.clock = clock
        self.live = live  # False in snapshot tests: no timers, nothing moves
        self._demo_passphrase = demo_passphrase
        self._last_activity = clock()
        self.host_broker = host_broker
        self._broker = BrokerHost(vault, approval_timeout=approval_timeout, on_change=self._broker_changed)
        self._answered: set[int] = set()  # decided here, still leaving the queue
        self._locking = False

    @property
    def broker_service(self) -> BrokerService | None:
        return self._broker.service

    @property
    def broker_status(self) -> tuple[str, str] | None:
        """The header's word on the broker (``None`` when this app does not host one)."""
        if not self.host_broker:
            return None
        state = self._broker.state
        if state is BrokerState.ELSEWHERE:
            return "broker ◌ served elsewhere", "$text-muted"
        if state is BrokerState.OFF:
            return "broker ○ off", "$text-muted"
        waiting = len(self._waiting())
        peer = self._broker.peer  # verified: the lock file's broker, this aegis-vault, this vault's key
        verified = "" if peer is None else f" to pid {peer.pid}" + (
            f" ({os.path.basename(peer.exe)})" if peer.exe != "?" else "")
        return (f"broker ● {state}{verified}" + (f" · {waiting} pending" if waiting else ""),
                "bold $warning" if waiting else "$success")

    @property
    def vault_label(self) -> str:
        """The vault's path, with the home folder shown as ``~``."""
        path = str(getattr(self.vault.store, "path", "vault"))
        home = os.path.expanduser("~")
        return "~" + path[len(home):] if home != "/" and path.startswith(home + os.sep) else path

    @property
    def vault_screen(self) -> VaultScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, VaultScreen)), None)

    def vault_changed(self) -> None:
        """A view over the vault changed credentials: the list behind it reloads. (The
        list's live tick skips this process's own audit entries, so it must be told.)"""
        screen = self.vault_screen
        if screen is not None:
            screen.reload()

    def on_mount(self) -> None:
        self.register_theme(AEGIS)
        self.theme = self.settings.theme if self.settings.theme in self.available_themes else AEGIS.name
        self.set_keymap(self.settings.keymap)
        self.push_screen(UnlockScreen(demo_passphrase=self._demo_passphrase))
        if self.live:
            self.set_interval(5.0, self.lock_if_idle)

    def on_unlocked(self) -> None:
        self._last_activity = self.clock()
        self.switch_screen(VaultScreen())
        if self.host_broker:
            self.run_worker(self._start_broker(), group="broker")

    async def _start_broker(self) -> None:
        await self._broker.start()
        if self._broker.problem:
            self.notify(self._broker.problem, title="Broker", severity="warning", timeout=10, markup=False)

    async def on_unmount(self) -> None:
        await self._broker.stop()

    # -- approvals ------------------------------------------------------------------------------
    def _broker_changed(self) -> None:
        """Called by the broker (on the event loop) when its state or its queue changes."""
        self.call_later(self._show_requests)

    def _waiting(self) -> list[PendingRequest]:
        approvals = self._broker.approvals
        pending = approvals.pending() if approvals is not None else []
        self._answered &= {request.id for request in pending}
        return [request for request in pending if request.id not in self._answered]

    def _show_requests(self) -> None:
        """Refresh the header; show the oldest waiting request unless one is showing."""
        if self.vault_screen is not None:
            self.vault_screen.broker_changed()
        approvals = self._broker.approvals
        if approvals is None or not self.vault.is_unlocked or self._locking:
            return
        waiting = self._waiting()
        showing = next((s for s in self.screen_stack if isinstance(s, ApprovalModal)), None)
        if showing is not None:
            showing.queue_changed(waiting)
        elif waiting:
            self.push_screen(ApprovalModal(approvals, waiting[0], len(waiting)), self._approval_closed)

    def _approval_closed(self, answered: int | None) -> None:
        if answered is not None:
            self._answered.add(answered)
        self._show_requests()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """Still life for snapshots: a blinking cursor would make screenshots differ."""
        if not self.live and isinstance(event.widget, Input):
            event.widget.cursor_blink = False

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, _ACTIVITY):
            self._last_activity = self.clock()
        await super().on_event(event)

    def lock_if_idle(self) -> None:
        minutes = self.settings.idle_lock_minutes
        if minutes and self.vault.is_unlocked and self.clock() - self._last_activity >= minutes * 60:
            self.lock(f"Locked after {minutes} min without a key press.")

    def lock(self, message: str = "Locked.") -> None:
        """Stop the broker first when it runs (what waits is denied, and audited while the
        keys can still seal the entries), then drop the keys and every screen with data."""
        if self._locking:
            return
        if not self.host_broker:
            self._drop_keys_and_screens(message)
            return
        self._locking = True  # also waits for a broker still starting, so none outlives the lock
        self.run_worker(self._lock_after_broker(message), group="lock")

    async def _lock_after_broker(self, message: str) -> None:
        try:
            await self._broker.stop()
        finally:
            self._locking = False
            self._drop_keys_and_screens(message)

    def _drop_keys_and_screens(self, message: str) -> None:
        self.vault.lock()
        self._answered.clear()
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.switch_screen(UnlockScreen(demo_passphrase=self._demo_passphrase, message=message))
        self.copy_to_clipboard("")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "lock":
            return self.vault.is_unlocked  # no "Lock" in the footer of the unlock screen
        if action in _NOT_OVER_APPROVALS and isinstance(self.screen, ApprovalModal):
            return False
        return True

    def action_lock(self) -> None:
        if self.vault.is_unlocked:
            self.lock()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        sections = [("App", list(self.BINDINGS))]  # type: ignore[arg-type]
        if self.vault_screen is not None:
            sections.insert(0, ("Vault", list(VaultScreen.BINDINGS)))  # type: ignore[arg-type]
        if isinstance(self.screen, (AgentTableScreen, ReviewScreen)):
            sections.insert(0, (self.screen.HEADING, list(self.screen.BINDINGS)))  # type: ignore[arg-type]
        sections.append(("Access request", list(ApprovalModal.BINDINGS)))  # type: ignore[arg-type]
        sections.append(("Palette", [Binding("ctrl+p", "command_palette", "Every action by name")]))
        self.push_screen(HelpScreen(sections))

    def action_settings(self) -> None:
        if not isinstance(self.screen, SettingsScreen):
            self.push_screen(SettingsScreen())

    def save_settings(self, settings: Settings) -> None:
        save_settings(settings, self.settings_path)
        self.settings = settings
        self.theme = settings.theme
        self.set_keymap(settings.keymap)

    def action_verify_audit(self) -> None:
        if self.vault_screen is not None:
            self.vault_screen.verify_audit()
