"""Rotate: a new value (typed or generated), the overlap window, and when the old one retires."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Select, Static

from aegis_tui.core.errors import AegisError
from aegis_tui.core.models import Credential, Kind, validate_value
from aegis_tui.core.secret import Secret
from aegis_tui.core.totp import validate_totp
from aegis_tui.tui.widgets.value_field import ValueField

OVERLAPS = (("none: retire at once", 0), ("1 hour", 3600), ("24 hours", 86400), ("7 days", 7 * 86400),
            ("30 days", 30 * 86400))


class Rotation(NamedTuple):
    value: Secret
    overlap_seconds: int


class RotateModal(ModalScreen[Rotation | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="rotate.cancel")]

    def __init__(self, credential: Credential, clock: Callable[[], float]) -> None:
        super().__init__()
        self._credential = credential
        self._clock = clock

    def compose(self) -> ComposeResult:
        c = self._credential
        overlaps = list(OVERLAPS)
        if c.overlap_seconds not in {seconds for _, seconds in overlaps}:
            overlaps.append((f"{c.overlap_seconds // 3600} hours", c.overlap_seconds))
        with Vertical(id="rotate-dialog", classes="dialog"):
            yield Static(Content.assemble(("Rotate ", "bold"), (c.name, "bold"),
                                          (f"  (now v{c.current_version})", "$text-muted")), classes="dialog-title")
            yield ValueField(id="rotate-value")
            with Horizontal(classes="row"):
                yield Static("old version stays valid", classes="form-label wide")
                yield Select(overlaps, value=c.overlap_seconds, allow_blank=False, id="rotate-overlap", compact=True)
            yield Static(id="rotate-summary")
            yield Static(id="rotate-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Rotate", variant="warning", id="rotate-go", compact=True)
                yield Button("Cancel", id="rotate-cancel", compact=True)

    def on_mount(self) -> None:
        self._summarise()
        self.query_one("#value-input").focus()

    def _overlap(self) -> int:
        value = self.query_one("#rotate-overlap", Select).value
        return int(value) if isinstance(value, int) else self._credential.overlap_seconds

    def _summarise(self) -> None:
        c = self._credential
        retires = datetime.fromtimestamp(self._clock() + self._overlap()).strftime("%Y-%m-%d %H:%M")
        text = (f"v{c.current_version + 1} becomes current; v{c.current_version} "
                + ("retires at once" if not self._overlap() else f"stays valid until {retires}"))
        self.query_one("#rotate-summary", Static).update(Content.styled(text, "$text-muted"))

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "rotate-overlap":
            self._summarise()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "rotate-go":
            event.stop()
            value = self.query_one(ValueField).value
            try:
                if value is None:
                    raise AegisError("type a new value or generate one")
                validate_value(value.reveal())
                if self._credential.kind is Kind.TOTP:
                    validate_totp(value)
            except AegisError as error:
                self.query_one("#rotate-error", Static).update(Content.styled(f"✖ {error}", "$error"))
                return
            self.dismiss(Rotation(value, self._overlap()))
        elif event.button.id == "rotate-cancel":
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
