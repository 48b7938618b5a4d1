"""A finished review: what each decision did, and the signed report saved as Markdown or JSON.

The report is evidence for someone else (an auditor, the next reviewer), so saving it
is offered right here, to a dated file in the home folder by default. A file is never
overwritten (an earlier report stays what it was) and is readable by its owner only:
it lists every credential's name, context and grants, though never a value.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from aegis_tui.core.lifecycle.review import ReviewReport
from aegis_tui.tui.screens.agent_table_screen import Part
from aegis_tui.tui.screens.review_cells import count_parts

FORMATS = {"md": ReviewReport.to_markdown, "json": ReviewReport.to_json}
_SHOWN_OUTCOMES = 200  # keeps are counted, not listed; a 10k-row review lists at most this many


def default_path(moment: float, suffix: str) -> str:
    return f"~/aegis-review-{datetime.fromtimestamp(moment):%Y-%m-%d}.{suffix}"


def save_report(text: str, path: str) -> str:
    """Write ``text`` to a new file (owner-only); the full path. Raises ``OSError``."""
    full = os.path.abspath(os.path.expanduser(path))
    descriptor = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text if text.endswith("\n") else text + "\n")
    return full


def outcome_parts(report: ReviewReport) -> list[Part]:
    """Counts per decision, then every decision other than keep with what it did."""
    counts = report.counts()
    parts = count_parts(counts)
    if counts["failed"]:
        parts.append((f"✖ {counts['failed']} failed", "bold $error"))
    changed = [entry for entry in report.decisions if entry["action"] != "keep" or entry["result"] == "failed"]
    for entry in changed[:_SHOWN_OUTCOMES]:
        failed = entry["result"] == "failed"
        parts += [("\n✖ " if failed else "\n  ", "$error"), (entry["name"], "bold"),
                  (f"  {entry['action']}: ", "$text-muted"), (entry["outcome"], "$error" if failed else "")]
    if len(changed) > _SHOWN_OUTCOMES:
        parts.append((f"\n  … {len(changed) - _SHOWN_OUTCOMES} more in the report", "$text-muted"))
    return parts


class ReviewResultModal(ModalScreen[None]):
    BINDINGS = [Binding("escape", "close", "Close", id="review-result.close")]

    def __init__(self, report: ReviewReport, clock: Callable[[], float]) -> None:
        super().__init__()
        self._report = report
        self._clock = clock

    def compose(self) -> ComposeResult:
        report = self._report
        with Vertical(id="review-result-dialog", classes="dialog"):
            yield Static(Content.assemble(("Review finished ", "bold"), (f"· {report.id} · signed", "$text-muted")),
                         classes="dialog-title")
            with VerticalScroll(id="review-outcomes"):
                yield Static(Content.assemble(*outcome_parts(report)))
            for suffix, title in (("md", "Markdown"), ("json", "JSON")):
                with Horizontal(classes="row review-export"):
                    yield Static(title, classes="form-label")
                    yield Input(default_path(self._clock(), suffix), id=f"export-{suffix}-path", compact=True)
                    yield Button("Save", id=f"export-{suffix}", compact=True)
            yield Static(id="review-export-status")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", variant="primary", id="review-close", compact=True)

    def on_mount(self) -> None:
        self.query_one("#review-close", Button).focus()

    def export(self, suffix: str) -> None:
        """Save the report in one format to the path in its field; say where, or why not."""
        path = self.query_one(f"#export-{suffix}-path", Input).value.strip()
        status = self.query_one("#review-export-status", Static)
        try:
            written = save_report(FORMATS[suffix](self._report), path)
        except FileExistsError:
            status.update(Content.assemble(("✖ ", "$error"), (path, "bold"), (" exists; choose another name", "$error")))
            return
        except OSError as error:
            status.update(Content.assemble(("✖ ", "$error"), (f"{error.strerror or error}: ", "$error"), path))
            return
        status.update(Content.assemble(("✓ saved ", "$success"), written))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "review-close":
            self.dismiss(None)
        elif event.button.id is not None:
            self.export(event.button.id.removeprefix("export-"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id is not None:
            self.export(event.input.id.removeprefix("export-").removesuffix("-path"))

    def action_close(self) -> None:
        self.dismiss(None)
