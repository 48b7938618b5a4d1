"""The incidents view's two dialogs: editing an incident's assessment, and exporting.

Both do their work before they close: the dialog calls the core through ``apply`` and
stays open with the core's one-line error when it refuses, so what the person typed is
never lost to a validation message. Escape (or Cancel) always backs out unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static

from aegis_tui.core.errors import AegisError
from aegis_tui.core.lifecycle.incidents import SEVERITIES, Incident

DEFAULT_EXPORT_PATH = "~/aegis-incidents.json"
_TEXT_FIELDS = (("impact", "impact", "what the exposure put at risk"),
                ("root_cause", "root cause", "how it leaked: accidental commit, log exposure, ..."),
                ("prevention", "prevention", "what stops it happening again"))
Result = TypeVar("Result")


class _ApplyingModal(ModalScreen[Result | None], Generic[Result]):
    """A dialog whose Save calls ``apply`` and closes with its result, or shows its error."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="incident_dialog.cancel")]
    ERROR_ID = ""

    def __init__(self, apply: Callable[..., Result]) -> None:
        super().__init__()
        self._apply = apply

    def submit(self, *args: object, **kwargs: object) -> None:
        try:
            result = self._apply(*args, **kwargs)
        except (AegisError, OSError) as error:
            message = str(error) if isinstance(error, AegisError) else f"{error.strerror}: {error.filename}"
            self.query_one(f"#{self.ERROR_ID}", Static).update(Content.styled(f"✖ {message}", "$error"))
            return
        self.dismiss(result)

    def action_cancel(self) -> None:
        self.dismiss(None)


class IncidentEditModal(_ApplyingModal[Incident]):
    """Severity, impact, root cause and prevention; ``apply(**fields)`` saves them."""

    ERROR_ID = "incident-error"

    def __init__(self, incident: Incident, apply: Callable[..., Incident]) -> None:
        super().__init__(apply)
        self._incident = incident

    def compose(self) -> ComposeResult:
        incident = self._incident
        with Vertical(id="incident-dialog", classes="dialog"):
            yield Static(Content.assemble(("Incident ", "bold"), (incident.short_id, "bold"), " · ",
                                          (incident.credential, "bold")), classes="dialog-title")
            with Grid(id="incident-grid"):
                yield Static("severity", classes="form-label")
                yield Select([(severity, severity) for severity in SEVERITIES], value=incident.severity,
                             allow_blank=False, id="incident-severity", compact=True)
                for field, label, placeholder in _TEXT_FIELDS:
                    yield Static(label, classes="form-label")
                    yield Input(getattr(incident, field), placeholder=placeholder, id=f"incident-{field}",
                                compact=True)
            yield Static(Content.styled("Closing needs a root cause and a prevention.", "$text-muted"))
            yield Static(id=self.ERROR_ID)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", variant="primary", id="incident-save", compact=True)
                yield Button("Cancel", id="incident-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#incident-root_cause", Input).focus()

    def fields(self) -> dict[str, str]:
        """What the form says now, for every editable field."""
        values = {field: self.query_one(f"#incident-{field}", Input).value for field, _, _ in _TEXT_FIELDS}
        return {"severity": str(self.query_one("#incident-severity", Select).value), **values}

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit(**self.fields())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "incident-save":
            self.submit(**self.fields())
        else:
            self.dismiss(None)


class IncidentExportModal(_ApplyingModal[str]):
    """Where to write the export; ``apply(path)`` writes it and says what it did."""

    ERROR_ID = "export-error"

    def __init__(self, count: int, apply: Callable[[str], str]) -> None:
        super().__init__(apply)
        self._count = count

    def compose(self) -> ComposeResult:
        with Vertical(id="export-dialog", classes="dialog"):
            yield Static(Content.styled(f"Export {self._count} incident(s) as JSON", "bold"), classes="dialog-title")
            yield Input(DEFAULT_EXPORT_PATH, placeholder="a file path", id="export-path", compact=True)
            yield Static(Content.styled("Written readable by you only (0600).", "$text-muted"))
            yield Static(id=self.ERROR_ID)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", variant="primary", id="export-go", compact=True)
                yield Button("Cancel", id="export-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#export-path", Input).focus()

    def _path(self) -> str:
        return self.query_one("#export-path", Input).value.strip()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit(self._path())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "export-go":
            self.submit(self._path())
        else:
            self.dismiss(None)
