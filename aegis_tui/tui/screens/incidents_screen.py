"""Every compromise incident: open ones first, the highlighted one's assessment and
response timeline below.

``e`` edits the assessment (severity, impact, root cause, prevention), ``c`` closes an
incident (the core refuses until the root cause and prevention are written; the view
shows why), ``r`` reopens one, ``w`` exports them all as JSON in the team's template.
Closing is not confirmed: reopening undoes it. Every text is drawn literally.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.binding import Binding

from aegis_tui.core.errors import AegisError, UsageError
from aegis_tui.core.lifecycle.incidents import Incident, Incidents, export_incidents, write_export
from aegis_tui.core.vault import Vault
from aegis_tui.tui.screens.agent_table_screen import AgentTableScreen, Column, Part, Row
from aegis_tui.tui.screens.incident_modals import IncidentEditModal, IncidentExportModal
from aegis_tui.tui.when import clock_time

SEVERITY: dict[str, tuple[str, str]] = {
    "critical": ("✖ critical", "bold $error"),
    "high": ("▲ high", "$error"),
    "medium": ("◆ medium", "$warning"),
    "low": ("▽ low", "$text-muted"),
}
STATUS: dict[str, tuple[str, str]] = {
    "open": ("● open", "$warning"),
    "closed": ("✓ closed", "$success"),
}
OUTCOME: dict[str, tuple[str, str]] = {
    "ok": ("✓ ok", "$success"),
    "failed": ("✖ failed", "$error"),
    "pending": ("◌ pending", "$warning"),
}


def incident_detail(incident: Incident, now: float) -> list[Part]:
    """The highlighted incident: who, what was assessed, and the timeline step by step."""
    parts: list[Part] = [
        (incident.short_id, "bold"), " · ", (incident.credential, "bold"),
        (f" ({incident.credential_type})", "$text-muted"), (f" · {incident.context or 'no context'}", "$text-muted"),
        (f" · opened {clock_time(incident.opened_at, now)} by {incident.source}", "$text-muted"),
    ]
    if incident.closed_at is not None:
        parts.append((f" · closed {clock_time(incident.closed_at, now)}", "$text-muted"))
    parts += ["\n", ("severity   ", "$text-muted"), SEVERITY[incident.severity],
              ("    status ", "$text-muted"), STATUS[incident.status]]
    for label, text in (("impact", incident.impact), ("root cause", incident.root_cause),
                        ("prevention", incident.prevention)):
        parts += [(f"\n{label:<11}", "$text-muted"), text or ("— not written yet", "$text-muted italic")]
    parts.append((f"\ntimeline   {len(incident.timeline)} step(s)", "$text-muted"))
    for step in incident.timeline:
        word, style = OUTCOME[step.outcome]
        parts += [(f"\n  {clock_time(step.at, now)}  ", "$text-muted"), (f"{word:<10}", style), step.step]
        if step.detail:
            parts.append((f" · {step.detail}", "$text-muted"))
    return parts


class IncidentsScreen(AgentTableScreen):
    HEADING = "Incidents"
    NOUN = "incidents"
    ACTIVE = "open"
    COLUMNS = (Column("OPENED", 16), Column("SEVERITY", 10), Column("CREDENTIAL", 16, 2), Column("CONTEXT", 10, 1),
               Column("STATUS", 8), Column("STEPS", 5), Column("SOURCE", 8, 1))
    BINDINGS = [
        Binding("e", "edit", "Edit", id="incidents.edit", tooltip="Severity, impact, root cause, prevention"),
        Binding("c", "close", "Close", id="incidents.close", tooltip="Close: needs a root cause and a prevention"),
        Binding("r", "reopen", "Reopen", id="incidents.reopen", tooltip="Open a closed incident again"),
        Binding("w", "export", "Export", id="incidents.export", tooltip="Write every incident as JSON to a file"),
        Binding("escape", "back", "Back", id="incidents.back", tooltip="Back to the credentials"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.show_all = True  # closed incidents stay listed, after the open ones

    @property
    def incidents(self) -> Incidents:
        return Incidents(self.aegis.vault)

    def load_rows(self, vault: Vault, now: float, show_all: bool) -> list[Row]:
        newest_first = Incidents(vault).list()
        return [self._row(incident, now) for incident in sorted(newest_first, key=lambda i: not i.is_open)]

    @staticmethod
    def _row(incident: Incident, now: float) -> Row:
        cells: tuple[list[Part], ...] = (
            [clock_time(incident.opened_at, now)],
            [SEVERITY[incident.severity]],
            [(incident.credential, "bold")],
            [incident.context or ("none", "$text-muted")],
            [STATUS[incident.status]],
            [str(len(incident.timeline))],
            [incident.source],
        )
        return Row(incident.id, cells, incident.is_open, incident_detail(incident, now),
                   f"incident {incident.short_id}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        row = self.current
        if action in ("edit", "close"):
            return row is not None and row.active
        if action == "reopen":
            return row is not None and not row.active
        if action == "export":
            return bool(self.rows)
        return super().check_action(action, parameters)

    # -- actions -----------------------------------------------------------------------------------
    def _done(self, said: str) -> None:
        self.notify(said, timeout=4, markup=False)
        self.reload()

    def _act(self, act: Callable[[str], Incident], said: str) -> None:
        """Close or reopen the highlighted incident; the core's refusal becomes an error toast."""
        row = self.current
        if row is None:
            return
        try:
            act(row.id)
        except AegisError as error:
            self.notify(str(error), title="Not done", severity="error", timeout=8, markup=False)
            return
        self._done(f"{said} {row.name}.")

    def action_close(self) -> None:
        self._act(self.incidents.close, "Closed")

    def action_reopen(self) -> None:
        self._act(self.incidents.reopen, "Reopened")

    def action_edit(self) -> None:
        row = self.current
        if row is None:
            return
        incident = self.incidents.get(row.id)

        def edited(changed: Incident | None) -> None:
            if changed is not None:
                self._done(f"Saved incident {changed.short_id}.")

        def save(**fields: str) -> Incident:
            changed = {name: value for name, value in fields.items() if value != getattr(incident, name)}
            return self.incidents.edit(incident.id, **changed) if changed else incident

        self.app.push_screen(IncidentEditModal(incident, save), edited)

    def action_export(self) -> None:
        def exported(said: str | None) -> None:
            if said is not None:
                self.notify(said, timeout=6, markup=False)

        self.app.push_screen(IncidentExportModal(len(self.rows), self._export), exported)

    def _export(self, path: str) -> str:
        if not path:
            raise UsageError("give a file path to write the incidents to")
        incidents = self.incidents.list()
        written = write_export(path, export_incidents(incidents))
        return f"Exported {len(incidents)} incident(s) to {written}."
