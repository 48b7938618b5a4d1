"""A secret-value input: masked by default, a reveal toggle, and a generator.

Used by the add form and the rotate dialog. The generated value goes straight into the
masked input; the preview line says what was generated without showing it unless the
person toggles reveal.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Checkbox, Input, Select, Static

from aegis_tui.core.errors import AegisError
from aegis_tui.core.generate import CHARSETS, generate_value
from aegis_tui.core.secret import Secret
from aegis_tui.tui.widgets.secret_input import SecretInput


class ValueField(Vertical):
    DEFAULT_CSS = """
    ValueField { height: auto; }
    ValueField .row { height: 1; margin-bottom: 1; }
    ValueField Input, ValueField Select { margin-right: 1; }
    ValueField #value-input { width: 1fr; }
    ValueField #value-reveal { width: 12; }
    ValueField #gen-length { width: 9; }
    ValueField #gen-charset { width: 16; }
    ValueField #gen-prefix { width: 12; }
    ValueField .gen-label { width: 10; }
    ValueField #value-preview { height: 1; color: $text-muted; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static("value", classes="form-label")
        with Horizontal(classes="row"):
            yield SecretInput(placeholder="secret value: type, paste (keys and certificates too) or generate",
                              id="value-input")
            yield Checkbox("reveal", id="value-reveal", compact=True)
        with Horizontal(classes="row"):
            yield Static("generate", classes="form-label gen-label")
            yield Input("32", placeholder="length", id="gen-length", type="integer", compact=True)
            yield Select([(name, name) for name in CHARSETS], value="alnum", allow_blank=False, id="gen-charset",
                         compact=True)
            yield Input(placeholder="prefix", id="gen-prefix", compact=True)
            yield Button("Generate", id="gen-button", compact=True)
        yield Static(id="value-preview")

    @property
    def value(self) -> Secret | None:
        text = self.query_one("#value-input", Input).value
        return Secret(text) if text else None

    def preview(self, text: str, style: str = "$text-muted") -> None:
        self.query_one("#value-preview", Static).update(Content.styled(text, style))

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox.id == "value-reveal":
            event.stop()
            self.query_one("#value-input", Input).password = not event.value

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id != "gen-button":
            return
        event.stop()
        try:
            length = int(self.query_one("#gen-length", Input).value or "0")
            charset = str(self.query_one("#gen-charset", Select).value)
            prefix = self.query_one("#gen-prefix", Input).value
            generated = generate_value(length, charset, prefix)
        except (AegisError, ValueError) as error:
            self.preview(f"✖ {error}", "$error")
            return
        self.query_one("#value-input", Input).value = generated.reveal_text()
        self.preview(f"generated {len(generated)} characters ({charset}{', prefix ' + prefix if prefix else ''})")
