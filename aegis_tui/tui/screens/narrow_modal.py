"""Narrow a credential's standing grants: tick the ones to change, optionally shorten them.

With no duration the ticked grants are revoked; with one (``7d``) they end that long
from now instead. Grants naming the credential itself start ticked; a ``service:`` or
``tag:`` grant covers other credentials too, so it is changed only when ticked by hand.
Nothing happens here: the answer is a ``Decision`` the review applies when it finishes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Static

from aegis_tui.core.agents.grants import Grant
from aegis_tui.core.errors import UsageError
from aegis_tui.core.lifecycle.review import Decision
from aegis_tui.core.models import parse_duration
from aegis_tui.tui.when import relative


class NarrowModal(ModalScreen[Decision | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="narrow.cancel")]

    def __init__(self, name: str, grants: list[Grant], clock: Callable[[], float]) -> None:
        super().__init__()
        self._name = name
        self._grants = grants
        self._clock = clock

    def compose(self) -> ComposeResult:
        now = self._clock()
        with Vertical(id="narrow-dialog", classes="dialog"):
            yield Static(Content.assemble(("Narrow the standing grants of ", "bold"), (self._name, "bold")),
                         classes="dialog-title")
            with VerticalScroll(id="narrow-grants"):
                for index, grant in enumerate(self._grants):
                    label = Content.assemble(
                        (grant.label, "bold"), (" · ", "$text-muted"), grant.context or ("every context", "$text-muted"),
                        (" · scopes ", "$text-muted"), " ".join(grant.scopes) or ("any", "$text-muted"),
                        (f" · ends {relative(grant.expires_at, now)} · {grant.id}", "$text-muted"))
                    yield Checkbox(label, value=grant.credential_id is not None, id=f"narrow-{index}", compact=True)
            with Horizontal(classes="row"):
                yield Static("shorten to (blank: revoke)", classes="form-label wide")
                yield Input(placeholder="e.g. 7d", id="narrow-duration", compact=True)
            yield Static(id="narrow-summary")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="narrow-cancel", compact=True)
                yield Button("Narrow", variant="warning", id="narrow-ok", compact=True)

    def on_mount(self) -> None:
        self._summarise()
        self.query_one("#narrow-cancel", Button).focus()

    def _chosen(self) -> tuple[str, ...]:
        return tuple(grant.id for index, grant in enumerate(self._grants)
                     if self.query_one(f"#narrow-{index}", Checkbox).value)

    def _expires_at(self) -> float | None:
        """``now + duration``; None for a blank field (revoke). Raises on a bad duration."""
        raw = self.query_one("#narrow-duration", Input).value.strip()
        if not raw:
            return None
        seconds = parse_duration(raw)
        if seconds <= 0:
            raise UsageError("a shorter grant must still last a moment: give a duration like 7d, or leave it blank")
        return self._clock() + seconds

    def _decision(self) -> Decision:
        chosen = self._chosen()
        if not chosen:
            raise UsageError("tick at least one grant to narrow")
        return Decision("narrow", grant_ids=chosen, expires_at=self._expires_at())

    def _summarise(self) -> Decision | None:
        """Say what the answer would do, or why there is none yet; the decision, if any."""
        summary = self.query_one("#narrow-summary", Static)
        try:
            decision = self._decision()
        except UsageError as error:
            summary.update(Content.styled(f"✖ {error}", "$error"))
            return None
        count = len(decision.grant_ids)
        if decision.expires_at is None:
            summary.update(Content.styled(f"revokes {count} grant(s) when the review finishes", "$text-muted"))
        else:
            ends = datetime.fromtimestamp(decision.expires_at).strftime("%Y-%m-%d %H:%M")
            summary.update(Content.styled(f"{count} grant(s) end {ends} instead", "$text-muted"))
        return decision

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self._summarise()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._summarise()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._answer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "narrow-ok":
            self._answer()
        else:
            self.dismiss(None)

    def _answer(self) -> None:
        decision = self._summarise()
        if decision is not None:
            self.dismiss(decision)

    def action_cancel(self) -> None:
        self.dismiss(None)
