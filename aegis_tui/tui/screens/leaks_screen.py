"""Every leak of the vault's own values: what a scan found where, and what ``run`` masked.

One row per credential (newest leak first); the highlighted one's locations and
encodings below. ``o`` rotates it (which clears "exposed"), ``f`` calls it a false
positive (its status goes back to active, after a confirmation). Locations and names
come from the audit log and are drawn literally.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.content import Content

from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import AegisError
from aegis_tui.core.models import Credential, Status
from aegis_tui.core.scan.leaks import Leak, load_leaks
from aegis_tui.core.vault import Vault
from aegis_tui.tui.screens.agent_table_screen import AgentTableScreen, Column, Part, Row
from aegis_tui.tui.screens.rotate_modal import Rotation, RotateModal
from aegis_tui.tui.when import clock_time, relative

STATES: dict[str, tuple[str, str]] = {
    "exposed": ("✖ exposed", "$error"),
    "masked": ("◌ masked", "$warning"),
    "cleared": ("✓ cleared", "$text-muted"),
    "revoked": ("⊘ revoked", "strike $text-muted"),
    "gone": ("⊘ destroyed", "strike $text-muted"),
}
_SHOWN_LOCATIONS = 8


def leak_state(leak: Leak, credential: Credential | None) -> str:
    if credential is None:
        return "gone"
    if credential.status is Status.REVOKED:
        return "revoked"
    if leak.exposed:
        return "exposed"
    return "cleared" if "scan" in leak.via else "masked"


class LeaksScreen(AgentTableScreen):
    HEADING = "Leaks"
    NOUN = "leaks"
    COLUMNS = (Column("CREDENTIAL", 16, 2), Column("CONTEXT", 10, 1), Column("FOUND", 5),
               Column("LAST SEEN", 9), Column("VIA", 9, 1), Column("STATE", 11))
    BINDINGS = [
        Binding("o", "rotate", "Rotate now", id="leaks.rotate", tooltip="Give the leaked credential a new value"),
        Binding("f", "end", "False positive", id="leaks.false_positive",
                tooltip="Not a real leak: mark the credential active again"),
        Binding("escape", "back", "Back", id="leaks.back", tooltip="Back to the credentials"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.show_all = True  # cleared leaks stay listed: the top line counts the exposed ones
        self.credentials: dict[str, Credential] = {}  # by casefolded name, as the rows were loaded

    def load_rows(self, vault: Vault, now: float, show_all: bool) -> list[Row]:
        credentials = {c.name.casefold(): c for c in Credentials(vault).list()}
        exposed = [c.name for c in credentials.values() if c.status is Status.EXPOSED]
        self.credentials = credentials
        return [self._row(leak, credentials.get(leak.name.casefold()), now)
                for leak in load_leaks(vault.audit, exposed)]

    @staticmethod
    def _row(leak: Leak, credential: Credential | None, now: float) -> Row:
        state = leak_state(leak, credential)
        context = leak.context or (credential.context if credential is not None else "")
        cells: tuple[list[Part], ...] = (
            [(leak.name, "bold")],
            [context or ("none", "$text-muted")],
            [str(leak.count)],
            [relative(leak.last_seen, now)],
            [", ".join(leak.via)],
            [STATES[state]],
        )
        detail: list[Part] = [(leak.name, "bold"), (f" · {leak.count} found · first {clock_time(leak.first_seen, now)}"
                                                    f" · last {clock_time(leak.last_seen, now)}", "$text-muted")]
        if leak.encodings:
            detail += [("\nencodings ", "$text-muted"), ", ".join(leak.encodings)]
        for location in leak.locations[:_SHOWN_LOCATIONS]:
            detail += [("\n  at ", "$text-muted"), location]
        hidden = len(leak.locations) - _SHOWN_LOCATIONS
        if hidden > 0:
            detail.append((f"\n  … {hidden} more", "$text-muted"))
        return Row(leak.name.casefold(), cells, state == "exposed", detail, leak.name)

    def confirmation(self, row: Row) -> tuple[Content, Content, str]:
        title = Content.assemble(("Not a leak: ", "bold $warning"), (row.name, "bold"))
        body = Content.assemble("Marks ", (row.name, "bold"), " active again, as if it had not been found. Rotating "
                                "is the safe answer to a real leak. The findings stay in the audit log.")
        return title, body, "False positive"

    def end_record(self, row: Row) -> str:
        Credentials(self.aegis.vault).set_status(row.name, Status.ACTIVE, reason="false positive (leaks view)")
        self.aegis.vault_changed()
        return f"Marked {row.name} active again (false positive)."

    # -- rotation --------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "rotate":
            row = self.current
            credential = self.credentials.get(row.id) if row is not None else None
            return credential is not None and credential.status is not Status.REVOKED
        return super().check_action(action, parameters)

    def action_rotate(self) -> None:
        row = self.current
        if row is None:
            return
        try:
            credential = Credentials(self.aegis.vault).find(row.name)
        except AegisError as error:
            self.notify(str(error), title="Not done", severity="error", timeout=6, markup=False)
            return

        def rotated(rotation: Rotation | None) -> None:
            if rotation is None:
                return
            try:
                changed = Credentials(self.aegis.vault).rotate(credential.name, rotation.value,
                                                               rotation.overlap_seconds)
            except AegisError as error:
                self.notify(str(error), title="Not done", severity="error", timeout=6, markup=False)
                return
            self.notify(f"rotated {changed.name} to v{changed.current_version}", timeout=4, markup=False)
            self.aegis.vault_changed()
            self.reload()

        self.app.push_screen(RotateModal(credential, self.aegis.clock), rotated)
