"""Add or edit a credential: every field of the model, validated inline.

The core validators are the single source of truth: the form calls them and shows
their one-line message under the form, naming the field. A TOTP entry shows its live
code before it is saved, so a mistyped seed is caught at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static

from aegis_tui.core.errors import AegisError, UsageError
from aegis_tui.core.models import (
    Credential,
    Kind,
    parse_expiry,
    validate_context,
    validate_free_text,
    validate_name,
    validate_tags,
    validate_value,
)
from aegis_tui.core.secret import Secret
from aegis_tui.core.totp import totp_code, validate_totp
from aegis_tui.tui.widgets.value_field import ValueField


class CredentialDraft(NamedTuple):
    name: str
    kind: Kind
    service: str
    context: str
    tags: tuple[str, ...]
    url: str
    expires: str | None
    rotation_days: int | None
    notes: str
    value: Secret | None  # None when editing: the value changes only by rotation

    def metadata(self) -> dict[str, Any]:
        data = self._asdict()
        del data["value"]
        return data


_FIELDS = (("name", "name"), ("service", "service"), ("context", "context (e.g. acme/prod)"),
           ("tags", "tags, comma separated"), ("url", "url or host"), ("expires", "expires YYYY-MM-DD"),
           ("rotation", "rotate every N days"), ("notes", "notes"))


class CredentialFormModal(ModalScreen[CredentialDraft | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="form.cancel"),
                Binding("ctrl+s", "save", "Save", id="form.save")]

    def __init__(self, clock: Callable[[], float], existing: Credential | None = None) -> None:
        super().__init__()
        self._existing = existing
        self._clock = clock

    def compose(self) -> ComposeResult:
        editing = self._existing is not None
        with Vertical(id="form-dialog", classes="dialog"):
            yield Static(Content.styled(f"Edit {self._existing.name}" if editing and self._existing else
                                        "Add a credential", "bold"), classes="dialog-title")
            with Grid(id="form-grid"):
                yield Static("kind", classes="form-label")
                yield Select([(kind.value, kind) for kind in Kind], value=Kind.SECRET, allow_blank=False,
                             id="field-kind", compact=True)
                for field, placeholder in _FIELDS:
                    yield Static(field if field != "rotation" else "rotate", classes="form-label")
                    yield Input(placeholder=placeholder, id=f"field-{field}", compact=True, valid_empty=True,
                                type="integer" if field == "rotation" else "text")  # save checks; empty is not red
            if not editing:
                yield ValueField(id="form-value")
                yield Static(id="form-totp")
            yield Static(id="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", variant="primary", id="form-save", compact=True)
                yield Button("Cancel", id="form-cancel", compact=True)

    def on_mount(self) -> None:
        existing = self._existing
        if existing is not None:
            self.query_one("#field-kind", Select).value = existing.kind
            values = {"name": existing.name, "service": existing.service, "context": existing.context,
                      "tags": ", ".join(existing.tags), "url": existing.url, "expires": existing.expires or "",
                      "rotation": str(existing.rotation_days or ""), "notes": existing.notes}
            for field, text in values.items():
                self.query_one(f"#field-{field}", Input).value = text
        self.query_one("#field-name", Input).focus()
        if existing is None:
            self.set_interval(1.0, self._show_totp)

    def _text(self, field: str) -> str:
        return self.query_one(f"#field-{field}", Input).value.strip()

    def _error(self, message: str) -> None:
        self.query_one("#form-error", Static).update(Content.styled(f"✖ {message}", "$error") if message else "")

    def _show_totp(self) -> None:
        target = self.query_one("#form-totp", Static)
        value = self.query_one(ValueField).value
        if self.query_one("#field-kind", Select).value is not Kind.TOTP or value is None:
            target.update("")
            return
        try:
            code = totp_code(value, self._clock())
        except UsageError as error:
            target.update(Content.styled(f"✖ {error}", "$error"))
            return
        target.update(Content.assemble(("current code  ", "$text-muted"), (code.code, "bold $success"),
                                       (f"  ({code.seconds_left}s left)", "$text-muted")))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "value-input":
            self._show_totp()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "field-kind" and self._existing is None:
            self._show_totp()

    def draft(self) -> CredentialDraft:
        """The form as a validated draft; raises ``UsageError`` naming the field."""
        def check(field: str, validate: Any) -> Any:
            try:
                return validate()
            except (UsageError, ValueError) as error:
                raise UsageError(f"{field}: {error}") from None

        kind = self.query_one("#field-kind", Select).value
        assert isinstance(kind, Kind)
        rotation_text = self._text("rotation")
        rotation = check("rotate", lambda: int(rotation_text) if rotation_text else None)
        if rotation is not None and rotation <= 0:
            raise UsageError("rotate: a rotation period is a positive number of days")
        value = None
        if self._existing is None:
            value = self.query_one(ValueField).value
            if value is None:
                raise UsageError("value: type a value or generate one")
            check("value", lambda: validate_value(value.reveal()))
            if kind is Kind.TOTP:
                check("value", lambda: validate_totp(value))
        return CredentialDraft(
            name=check("name", lambda: validate_name(self.query_one("#field-name", Input).value)),
            kind=kind,
            service=check("service", lambda: validate_free_text(self._text("service"), "service", 128)),
            context=check("context", lambda: validate_context(self._text("context"))),
            tags=check("tags", lambda: validate_tags(self._text("tags").split(","))),
            url=check("url", lambda: validate_free_text(self._text("url"), "url", 2048)),
            expires=check("expires", lambda: parse_expiry(self._text("expires"))),
            rotation_days=rotation,
            notes=check("notes", lambda: validate_free_text(self.query_one("#field-notes", Input).value, "notes")),
            value=value,
        )

    def action_save(self) -> None:
        try:
            draft = self.draft()
        except AegisError as error:
            self._error(str(error))
            return
        self.dismiss(draft)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "form-save":
            self.action_save()
        elif event.button.id == "form-cancel":
            self.action_cancel()
