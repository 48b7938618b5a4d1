"""The live audit tail: new entries (also from other processes) appear within a second.

A filter narrows by actor, operation, credential or risk (plain words, all must match),
and a status line shows the result of verifying the whole chain in a worker thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Input, Static

from aegis_tui.core.audit import AuditEntry

MAX_ENTRIES = 500


def _matches(entry: AuditEntry, terms: list[str]) -> bool:
    hay = " ".join(
        str(part) for part in (entry.operation, entry.outcome, entry.risk, entry.target or "", entry.context or "",
                               entry.actor.get("program", ""), entry.actor.get("user", ""), entry.session_id or "")
    ).lower()
    return all(term in hay for term in terms)


def entry_line(entry: AuditEntry) -> Content:
    actor = str(entry.actor.get("program", "?"))
    if entry.session_id:
        actor += f" #{entry.session_id}"
    outcome_style = {"ok": "$success", "failed": "$error", "denied": "$error"}.get(entry.outcome, "")
    return Content.assemble(
        (datetime.fromtimestamp(entry.timestamp).strftime("%H:%M:%S "), "$text-muted"),
        (f"{entry.operation[:13]:<13} ", "bold" if entry.risk == "high" else ""),
        (f"{actor[:14]:<14} ", "$text-muted"),
        f"{(entry.target or ('(sealed)' if entry.sealed else '—'))[:24]:<24}",
        (f"  {entry.outcome}", outcome_style),
        (" ⚑" if entry.flagged else "", "$warning"),
    )


class AuditPanel(Vertical):
    DEFAULT_CSS = """
    AuditPanel { border: round $panel-lighten-2; background: $surface; height: 1fr; }
    AuditPanel #audit-bar { height: 1; }
    AuditPanel #audit-status { width: 1fr; color: $text-muted; }
    AuditPanel #audit-filter { width: 24; height: 1; border: none; padding: 0 1; background: $panel; }
    AuditPanel #audit-scroll { scrollbar-size-vertical: 1; }
    AuditPanel #audit-lines { width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._entries: deque[AuditEntry] = deque(maxlen=MAX_ENTRIES)
        self._terms: list[str] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="audit-bar"):
            yield Static("verifying chain…", id="audit-status")
            yield Input(placeholder="filter audit", id="audit-filter")
        with VerticalScroll(id="audit-scroll"):
            yield Static(id="audit-lines", shrink=False)

    def on_mount(self) -> None:
        self.border_title = "Audit ● live"

    @property
    def entries(self) -> list[AuditEntry]:
        return list(self._entries)

    @property
    def last_seq(self) -> int:
        return self._entries[-1].seq if self._entries else 0

    def add_entries(self, entries: Iterable[AuditEntry]) -> None:
        added = False
        for entry in entries:
            self._entries.append(entry)
            added = True
        if added:
            self._redraw()

    def _redraw(self) -> None:
        shown = [entry_line(entry) for entry in reversed(self._entries) if _matches(entry, self._terms)]
        body = Content("\n").join(shown) if shown else Content.styled("no matching entries", "$text-muted")
        self.query_one("#audit-lines", Static).update(body)

    def set_status(self, text: Content) -> None:
        self.query_one("#audit-status", Static).update(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "audit-filter":
            return
        event.stop()
        self._terms = event.value.lower().split()
        self._redraw()
