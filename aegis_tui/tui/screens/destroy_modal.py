"""Destroy: irreversible, so the person types the credential's name to confirm."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class DestroyModal(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="destroy.cancel")]

    def __init__(self, name: str, versions: int) -> None:
        super().__init__()
        self._name = name
        self._versions = versions

    def compose(self) -> ComposeResult:
        with Vertical(id="destroy-dialog", classes="dialog"):
            yield Static(Content.assemble(("Destroy ", "bold $error"), (self._name, "bold")), classes="dialog-title")
            yield Static(Content.assemble(
                f"This deletes the credential and all {self._versions} version(s) for good; the audit log keeps "
                "a record that it existed.\nType its name to confirm:"))
            yield Input(placeholder="type the name", id="destroy-name", compact=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="destroy-cancel", compact=True)
                yield Button("Destroy", variant="error", id="destroy-ok", disabled=True, compact=True)

    def on_mount(self) -> None:
        self.query_one("#destroy-name", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one("#destroy-ok", Button).disabled = event.value != self._name

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value == self._name:
            self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "destroy-ok" and self.query_one("#destroy-name", Input).value == self._name)

    def action_cancel(self) -> None:
        self.dismiss(False)
