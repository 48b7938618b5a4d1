"""Settings: idle lock, reveal and clipboard timeouts, theme. Saved with tomli-w."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static

from aegis_tui.core.config import Settings
from aegis_tui.core.errors import AegisError

if TYPE_CHECKING:
    from aegis_tui.tui.app import AegisApp

_NUMBERS = (("idle_lock_minutes", "lock after idle (minutes, 0 = never)"),
            ("reveal_seconds", "hide a revealed value after (s)"),
            ("clipboard_clear_seconds", "clear the clipboard after (s)"))


class SettingsScreen(ModalScreen[Settings | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="settings.cancel"),
                Binding("ctrl+s", "save", "Save", id="settings.save")]

    @property
    def aegis(self) -> AegisApp:
        return cast("AegisApp", self.app)

    def compose(self) -> ComposeResult:
        settings = self.aegis.settings
        themes = sorted(self.app.available_themes)
        with Vertical(id="settings-dialog", classes="dialog"):
            yield Static(Content.styled("Settings", "bold"), classes="dialog-title")
            with Grid(id="settings-grid"):
                for key, label in _NUMBERS:
                    yield Static(label, classes="form-label")
                    yield Input(str(getattr(settings, key)), type="integer", id=f"setting-{key}", compact=True)
                yield Static("theme", classes="form-label")
                yield Select([(name, name) for name in themes], value=settings.theme if settings.theme in themes
                             else "aegis", allow_blank=False, id="setting-theme", compact=True)
            yield Static(Content.styled(f"saved to {self.aegis.settings_path}", "$text-muted"))
            yield Static(id="settings-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", variant="primary", id="settings-save", compact=True)
                yield Button("Cancel", id="settings-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#setting-idle_lock_minutes", Input).focus()

    def action_save(self) -> None:
        try:
            numbers = {key: int(self.query_one(f"#setting-{key}", Input).value or "-1") for key, _ in _NUMBERS}
            theme = str(self.query_one("#setting-theme", Select).value)
            settings = self.aegis.settings._replace(**numbers, theme=theme)
            self.aegis.save_settings(settings)
        except (AegisError, ValueError, OSError) as error:
            self.query_one("#settings-error", Static).update(Content.styled(f"✖ {error}", "$error"))
            return
        self.dismiss(settings)

    def action_cancel(self) -> None:
        self.app.theme = self.aegis.settings.theme
        self.dismiss(None)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "setting-theme" and isinstance(event.value, str):
            self.app.theme = event.value  # preview; Cancel restores the saved theme

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "settings-save":
            self.action_save()
        else:
            self.action_cancel()
