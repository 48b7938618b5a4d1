"""Command palette entries: every action of the app, searchable by name."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from aegis_tui.tui.app import AegisApp

# (title, help, action on the vault screen or the app)
_VAULT_ACTIONS = (
    ("Add credential", "Add a credential (any kind, typed or generated value)", "add"),
    ("Edit credential", "Edit the selected credential's details", "edit"),
    ("Reveal value", "Show the selected value until it hides itself", "reveal"),
    ("Copy value", "Copy the selected value; the clipboard is cleared later", "copy"),
    ("Copy TOTP code", "Copy the current code of the selected TOTP entry", "copy_totp"),
    ("Rotate credential", "Give the selected credential a new value", "rotate"),
    ("Revoke credential", "Stop handing the selected credential out", "revoke"),
    ("Destroy credential", "Delete the selected credential and its history", "destroy"),
    ("Filter credentials", "Filter the list as you type", "focus_filter"),
    ("Sort by next column", "Cycle the sort column", "sort"),
    ("Agent grants", "What agents may use, for how long; revoke a grant", "grants"),
    ("Agent sessions", "Agent sessions and their grants; end a session", "sessions"),
    ("Leaks", "Where the vault's own values were found or masked; rotate them", "leaks"),
    ("Incidents", "Compromise incidents: timeline, root cause, prevention; close, export", "incidents"),
    ("Access review", "Quarterly review: keep, rotate, revoke or narrow each credential; signed report", "review"),
    ("Verify audit chain", "Check the audit log's hash chain and signed head", "verify_audit"),
)
_APP_ACTIONS = (
    ("Lock vault", "Lock now: every decrypted name and value is dropped", "lock"),
    ("Settings", "Idle lock, reveal and clipboard timeouts, theme", "settings"),
    ("Help", "Every key and how to remap it", "help"),
)


class AegisCommands(Provider):
    def _entries(self) -> list[tuple[str, str, object]]:
        app = cast("AegisApp", self.app)
        entries: list[tuple[str, str, object]] = []
        screen = app.vault_screen
        if screen is not None:
            for title, help_text, action in _VAULT_ACTIONS:
                if screen.check_action(action, ()) is True:
                    entries.append((title, help_text, partial(screen.run_action, action)))
        for title, help_text, action in _APP_ACTIONS:
            if app.vault.is_unlocked or action != "lock":
                entries.append((title, help_text, partial(app.run_action, action)))
        return entries

    async def discover(self) -> Hits:
        for title, help_text, command in self._entries():
            yield DiscoveryHit(title, command, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, command in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), command, help=help_text)  # type: ignore[arg-type]
