"""An agent's access request, answered by the person at the keyboard.

This dialog is the only place a request is approved: the requesting side never gets a
prompt. Everything the agent controls (its reason, its process names, the command it
runs, credential names) is drawn literally, and the reason is marked as the agent's
words. Deny has the focus and Escape denies; unanswered, the request denies itself when
the countdown runs out, and the dialog goes away as soon as the request does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from aegis_tui.core.agents.grants import validate_scopes
from aegis_tui.core.broker.approvals import Decision, PendingRequest
from aegis_tui.core.broker.peer import PeerInfo
from aegis_tui.core.errors import UsageError
from aegis_tui.tui.broker_host import Approvals
from aegis_tui.tui.when import clock_time, countdown

if TYPE_CHECKING:
    from aegis_tui.tui.app import AegisApp

Part = str | tuple[str, str]
_ANCESTORS_SHOWN = 3
_SHORT_SCREEN = 40  # rows: below this the details scroll sooner, so the buttons always show


class Choice(NamedTuple):
    decision: Decision
    said: str  # the end of "allowed NAME ..."


CHOICES = {
    "once": Choice(Decision(True, uses=1), "once"),
    "15min": Choice(Decision(True, ttl_seconds=900), "for 15 min"),
    "hour": Choice(Decision(True, ttl_seconds=3600), "for 1 hour"),
    "session": Choice(Decision(True, for_session=True), "for this agent session"),
}


def home_relative(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if home != "/" and path.startswith(home + os.sep) else path


def duration_words(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("s" if count > 1 and unit != "min" else "")
    return f"{seconds} s"


def process_parts(peer: PeerInfo) -> list[Part]:
    """``claude (pid 4121) ← node ← zsh   in ~/src/app``: the asker, then who started it."""
    if not peer.chain:
        parts: list[Part] = [(f"pid {peer.pid}", "bold")]
    else:
        first, *parents = peer.chain
        parts = [(first.name, "bold"), (f" (pid {first.pid})", "$text-muted")]
        for process in parents[:_ANCESTORS_SHOWN]:
            parts += [(" ← ", "$text-muted"), process.name]
        if len(parents) > _ANCESTORS_SHOWN:
            parts.append((" ← …", "$text-muted"))
    if peer.cwd:
        parts += [("   in ", "$text-muted"), home_relative(peer.cwd)]
    return parts


class ApprovalModal(ModalScreen[int | None]):
    """Dismissed with the request's id once answered, or ``None`` when it went away unanswered."""

    BINDINGS = [
        Binding("escape,d", "deny", "Deny", id="approval.deny", tooltip="Refuse this request"),
        Binding("1", "allow('once')", "Once", id="approval.once", tooltip="Allow this one use"),
        Binding("2", "allow('15min')", "15 min", id="approval.15min", tooltip="Allow for 15 minutes"),
        Binding("3", "allow('hour')", "1 hour", id="approval.hour", tooltip="Allow for an hour"),
        Binding("4", "allow('session')", "Session", id="approval.session",
                tooltip="Allow until the agent's session ends"),
        Binding("e", "edit_scope", "Edit scope", id="approval.scope", tooltip="Change the scopes granted"),
    ]

    def __init__(self, approvals: Approvals, request: PendingRequest, waiting: int) -> None:
        super().__init__()
        self.approvals = approvals
        self.request = request
        self._waiting = waiting
        self._finished = False

    @property
    def aegis(self) -> AegisApp:
        return cast("AegisApp", self.app)

    # -- layout ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Vertical(id="approval-dialog", classes="dialog"):
            with VerticalScroll(id="approval-details"):
                for label, parts in self._rows():
                    with Horizontal(classes="approval-row"):
                        yield Static(label, classes="approval-label")
                        yield Static(Content.assemble(*parts), classes="approval-value", id=f"approval-row-{label}")
            yield Input(placeholder="scopes, space or comma separated (empty: as asked)", id="approval-scope",
                        compact=True)
            yield Static(id="approval-error")
            with Horizontal(id="approval-buttons", classes="dialog-buttons"):
                yield Button("Deny", variant="error", id="approval-deny", compact=True)
                yield Button("1 Once", id="approval-once", compact=True)
                yield Button("2 15 min", id="approval-15min", compact=True)
                yield Button("3 1 hour", id="approval-hour", compact=True)
                yield Button("4 Session", id="approval-session", compact=True,
                             disabled=self.request.session is None)
            yield Static(Content.styled("d or esc deny · e edit scope · tab next", "$text-muted"),
                         id="approval-keys")

    def _rows(self) -> list[tuple[str, list[Part]]]:
        r = self.request
        now = self.aegis.clock()
        c = r.credential
        if r.session is None:
            session: list[Part] = [("none: this applies to every request made outside a session", "$warning")]
        else:
            s = r.session
            session = [(s.label, "bold")] if s.label else []
            session += [(" · " if s.label else "", "$text-muted"), s.context or "all contexts",
                        (" · ", "$text-muted"), s.id,
                        (f" · started {clock_time(s.created_at, now)} · ends {clock_time(s.expires_at, now)}",
                         "$text-muted")]
        rows: list[tuple[str, list[Part]]] = [
            ("from", process_parts(r.peer)),
            ("session", session),
            ("wants", [(c.name, "bold"), ("  (", "$text-muted"), c.service or "no service",
                       (" · ", "$text-muted"), str(c.kind), (" · ", "$text-muted"), c.context or "no context",
                       (")", "$text-muted")]),
            ("scope", [" ".join(r.scopes)] if r.scopes else [("any (none named)", "$text-muted")]),
            ("reason", [("⟨agent⟩ ", "italic $text-muted"),
                        r.reason if r.reason else ("(no reason given)", "$text-muted")]),
            ("via", [r.via]),
        ]
        if r.duration:
            rows.append(("asks", [f"for {duration_words(r.duration)}"]))
        return rows

    def on_mount(self) -> None:
        self.query_one("#approval-scope", Input).display = False
        self.query_one("#approval-error", Static).display = False
        self._show_title()
        self.query_one("#approval-deny", Button).focus()
        if self.aegis.live:
            self.set_interval(1.0, self._show_title)

    def on_resize(self) -> None:
        self.set_class(self.size.height < _SHORT_SCREEN, "-short")

    def _show_title(self) -> None:
        left = countdown(self.request.deadline - self.aegis.clock())
        self.query_one("#approval-dialog").border_title = Content.assemble(
            ("Access request", "bold"), f" · 1 of {self._waiting} · denies itself in {left}")

    # -- the queue moves ----------------------------------------------------------------------
    def queue_changed(self, waiting: Sequence[PendingRequest]) -> None:
        """Called by the app: count what waits behind, or leave if this request went away."""
        if self._finished:
            return
        if any(request.id == self.request.id for request in waiting):
            self._waiting = len(waiting)
            self._show_title()
            return
        self.notify(f"The request for {self.request.credential.name} ended unanswered: it timed out "
                    "or the agent stopped waiting.", title="Access request withdrawn", severity="warning",
                    timeout=6, markup=False)
        self._close(None)

    def _close(self, answered: int | None) -> None:
        self._finished = True
        self.dismiss(answered)

    # -- answers ------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "allow" and parameters == ("session",):
            return self.request.session is not None
        return True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        choice = (event.button.id or "").removeprefix("approval-")
        if choice == "deny":
            self.action_deny()
        else:
            self.action_allow(choice)

    def action_deny(self) -> None:
        self._answer(Decision.deny(), f"Denied {self.request.credential.name}.")

    def action_allow(self, choice: str) -> None:
        if choice == "session" and self.request.session is None:
            return
        try:
            scopes = self._edited_scopes()
        except UsageError as error:
            self._say_error(str(error))
            return
        decision, said = CHOICES[choice]
        self._answer(decision._replace(scopes=scopes), f"Allowed {self.request.credential.name} {said}.")

    def _answer(self, decision: Decision, said: str) -> None:
        if self._finished:
            return
        if self.approvals.decide(self.request.id, decision):
            self.notify(said, timeout=4, markup=False)
        else:
            self.notify(f"The request for {self.request.credential.name} is gone: it timed out or the agent "
                        "stopped waiting.", severity="warning", timeout=6, markup=False)
        self._close(self.request.id)

    # -- scopes --------------------------------------------------------------------------------
    def action_edit_scope(self) -> None:
        field = self.query_one("#approval-scope", Input)
        field.display = not field.display
        self._say_error("")
        if field.display:
            field.value = " ".join(self.request.scopes)
            field.focus()
        else:
            self.query_one("#approval-deny", Button).focus()

    def _edited_scopes(self) -> tuple[str, ...]:
        """The scopes typed in the open scope field; ``()`` (as asked) when it is closed."""
        field = self.query_one("#approval-scope", Input)
        return validate_scopes(re.split(r"[\s,]+", field.value)) if field.display else ()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter leaves the field with its scopes kept; choosing is still a separate step."""
        event.stop()
        try:
            self._edited_scopes()
        except UsageError as error:
            self._say_error(str(error))
            return
        self._say_error("")
        self.query_one("#approval-deny", Button).focus()

    def _say_error(self, text: str) -> None:
        error = self.query_one("#approval-error", Static)
        error.display = bool(text)
        error.update(Content.styled(f"✖ {text}", "$error") if text else "")
