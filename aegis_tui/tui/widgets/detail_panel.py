"""Everything about the highlighted credential except its value, which shows only on request.

Text is assembled from literal pieces (``Content.assemble``): names, notes and audit
details are drawn as they are, never parsed as markup. Colours are theme variables.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from aegis_tui.core.audit import AuditEntry
from aegis_tui.core.models import Credential, RotationState, VersionInfo, VersionState
from aegis_tui.tui.styles import health_label
from aegis_tui.tui.widgets.credential_list import ago

Part = str | tuple[str, str]


def _when(seconds: float | None) -> str:
    if not seconds:
        return "—"
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M")


def _rotation(credential: Credential, now: float) -> tuple[str, str]:
    state, days = credential.rotation(now)
    if state is RotationState.NONE or days is None:
        return "no period set", "$text-muted"
    if state is RotationState.OVERDUE:
        return f"every {credential.rotation_days}d, overdue by {-days}d", "$warning"
    return f"every {credential.rotation_days}d, due in {days}d", "$accent" if state is RotationState.DUE else ""


class DetailPanel(VerticalScroll):
    DEFAULT_CSS = """
    DetailPanel { width: 42; border: round $panel-lighten-2; background: $surface; padding: 0 1; }
    DetailPanel #detail-value { margin: 1 0; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="detail-meta")
        yield Static(id="detail-value")
        yield Static(id="detail-history")

    def clear(self) -> None:
        self.border_title = "details"
        self.query_one("#detail-meta", Static).update(Content.styled("Nothing selected.", "$text-muted"))
        self.query_one("#detail-value", Static).update("")
        self.query_one("#detail-history", Static).update("")

    def show(self, credential: Credential, versions: Sequence[VersionInfo], audit: Sequence[AuditEntry],
             last_used: float | None, now: float) -> None:
        self.border_title = Content(credential.name)  # a str here would be parsed as markup
        health = credential.health(now)
        rows: list[tuple[str, Part]] = [
            ("status", health_label(health)),
            ("context", credential.context or "—"),
            ("reference", credential.reference),
            ("rotation", _rotation(credential, now)),
            ("expires", credential.expires or "—"),
            ("last used", ago(last_used, now)),
            ("tags", ", ".join(credential.tags) or "—"),
            ("url", credential.url or "—"),
            *credential.fields.items(),
        ]
        parts: list[Part] = [(f"{credential.service or '—'} · {credential.kind}\n", "bold")]
        for key, value in rows:
            parts += [(f"{key[:11]:<11} ", "$text-muted"), value, "\n"]
        if credential.notes:
            parts += ["\n", credential.notes]
        self.query_one("#detail-meta", Static).update(Content.assemble(*parts))
        self.show_masked()
        history: list[Part] = [("versions\n", "bold")]
        for version in reversed(versions[-5:]):
            label = {VersionState.CURRENT: "current", VersionState.PREVIOUS: f"valid until {_when(version.retires_at)}",
                     VersionState.RETIRED: "retired"}[version.state]
            style = "" if version.state is VersionState.CURRENT else "$text-muted"
            history += [(f"  v{version.version:<3} {_when(version.created_at)}  {label}\n", style)]
        history.append(("\nrecent activity\n", "bold"))
        if not audit:
            history.append(("  none in the recent log\n", "$text-muted"))
        for entry in list(audit)[-6:][::-1]:
            history += [(f"  {ago(entry.timestamp, now):>8}  ", "$text-muted"), f"{entry.operation} ",
                        (str(entry.actor.get("program", "?")), "$text-muted")]
            if entry.outcome != "ok":
                history.append((f" {entry.outcome}", "$error"))
            history.append("\n")
        self.query_one("#detail-history", Static).update(Content.assemble(*history))

    def show_masked(self) -> None:
        self.query_one("#detail-value", Static).update(
            Content.assemble(("value      ", "$text-muted"), "••••••••", ("  r reveal  c copy", "$text-muted"))
        )

    def show_revealed(self, value: str, seconds_left: int) -> None:
        self.query_one("#detail-value", Static).update(
            Content.assemble(("value      ", "$text-muted"), (value, "bold reverse"),
                             (f"\n           hides in {seconds_left}s · r to hide now", "$text-muted"))
        )
