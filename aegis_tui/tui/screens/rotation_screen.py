"""The rotation list: every credential with a rotation period or an expiry, most urgent
first, and how its next value is made.

The broker's rotation manager rotates ``generate`` and ``command`` credentials on its
own; what lands here for a person is what it cannot do: manual credentials that are
due, failed hooks (their credential stays overdue) and expiry dates coming up. ``o``
rotates the highlighted one now, by its policy or, for a manual one, with the value
typed in the usual rotate dialog.
"""

from __future__ import annotations

from textual import work
from textual.binding import Binding

from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import AegisError
from aegis_tui.core.lifecycle.rotation import RotationManager, RotationOutcome, RotationStatus
from aegis_tui.core.models import EXPIRY_WARNING_DAYS, RotationState
from aegis_tui.core.vault import Vault
from aegis_tui.tui.screens.agent_table_screen import AgentTableScreen, Column, Part, Row
from aegis_tui.tui.screens.rotate_modal import Rotation, RotateModal

STATES: dict[RotationState, tuple[str, str]] = {
    RotationState.OVERDUE: ("⚠ overdue", "bold $error"),
    RotationState.DUE: ("◷ due", "$warning"),
    RotationState.OK: ("✓ ok", "$success"),
    RotationState.NONE: ("– no period", "$text-muted"),
}


class RotationScreen(AgentTableScreen):
    HEADING = "Rotation"
    NOUN = "credentials"
    ACTIVE = "urgent"
    COLUMNS = (Column("CREDENTIAL", 16, 2), Column("CONTEXT", 10, 1), Column("ROTATION", 11), Column("DAYS", 8),
               Column("NEXT VALUE", 14, 2), Column("EXPIRES", 16, 1))
    BINDINGS = [
        Binding("o", "rotate", "Rotate now", id="rotation.rotate", tooltip="Rotate by its policy, or type the value"),
        Binding("a", "toggle_all", "Only urgent", id="rotation.all", tooltip="Show only what needs attention, or all"),
        Binding("escape", "back", "Back", id="rotation.back", tooltip="Back to the credentials"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.show_all = True  # ``a`` narrows to what needs attention
        self.statuses: dict[str, RotationStatus] = {}

    def load_rows(self, vault: Vault, now: float, show_all: bool) -> list[Row]:
        statuses = RotationManager(vault).status(now)
        self.statuses = {status.name: status for status in statuses}
        return [_row(status) for status in statuses if show_all or status.attention]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "rotate":
            return self.current is not None
        return super().check_action(action, parameters)

    def action_rotate(self) -> None:
        row = self.current
        status = self.statuses.get(row.id) if row is not None else None
        if status is None:
            return
        if status.method == "manual":
            self._rotate_by_hand(status.name)
        else:
            self._rotate_by_policy(status.name)

    def _rotate_by_hand(self, name: str) -> None:
        credentials = Credentials(self.aegis.vault)
        try:
            credential = credentials.find(name)
        except AegisError as error:  # renamed or destroyed since this list was read
            self.notify(str(error), title="Not rotated", severity="error", timeout=6, markup=False)
            self.reload()
            return

        def typed(rotation: Rotation | None) -> None:
            if rotation is None:
                return
            try:
                changed = credentials.rotate(name, rotation.value, rotation.overlap_seconds)
            except AegisError as error:
                self.notify(str(error), title="Not rotated", severity="error", timeout=6, markup=False)
                return
            self.notify(f"Rotated {changed.name} to v{changed.current_version}.", timeout=4, markup=False)
            self.aegis.vault_changed()
            self.reload()

        self.app.push_screen(RotateModal(credential, self.aegis.clock), typed)

    @work(thread=True, exclusive=True, group="rotate-now")
    def _rotate_by_policy(self, name: str) -> None:
        """In a thread: a provider hook may take up to its timeout."""
        try:
            outcome = RotationManager(self.aegis.vault).rotate_now(name, reason="requested in the app")
        except AegisError as error:
            outcome = RotationOutcome(name, False, None, str(error))
        self.app.call_from_thread(self._rotated, outcome)

    def _rotated(self, outcome: RotationOutcome) -> None:
        self.notify(f"{outcome.name}: {outcome.detail}", title=None if outcome.ok else "Not rotated",
                    severity="information" if outcome.ok else "error", timeout=6, markup=False)
        if outcome.ok:
            self.aegis.vault_changed()
        self.reload()


def _row(status: RotationStatus) -> Row:
    cells: tuple[list[Part], ...] = (
        [(status.name, "bold")],
        [status.context or ("-", "$text-muted")],
        [STATES[status.state]],
        [_days(status.days_left)],
        [status.policy if status.method != "manual" else ("manual: you type it", "$text-muted")],
        [_expiry(status)],
    )
    detail: list[Part] = [(status.name, "bold")]
    if status.period_days:
        detail += [("  every ", "$text-muted"), f"{status.period_days} days", ("  · next value: ", "$text-muted"),
                   status.policy]
    if status.needs_human:
        detail += [("\nNo policy can make this value: press o and type the new one.", "$warning")]
    elif status.state is RotationState.OVERDUE:
        detail += [("\nOverdue although a policy can rotate it: the last attempt failed (see the audit log), "
                    "or no broker has run since. Press o to try now.", "$warning")]
    return Row(status.name, cells, status.attention, detail, status.name)


def _days(days: int | None) -> Part:
    if days is None:
        return ("-", "$text-muted")
    return f"{days} left" if days >= 0 else (f"{-days} late", "$error")


def _expiry(status: RotationStatus) -> Part:
    if status.expires is None or status.expiry_days is None:
        return ("-", "$text-muted")
    if status.expiry_days < 0:
        return (f"⌛ {status.expires} expired", "bold $error")
    if status.expiry_days <= EXPIRY_WARNING_DAYS:
        return (f"⌛ {status.expires} ({status.expiry_days}d)", "$warning")
    return status.expires

