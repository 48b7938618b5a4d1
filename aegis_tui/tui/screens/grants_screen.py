"""Every access grant: which credential (or selector), where, for whom, what it allows
(inject into a command, or reveal the value: the danger colour), how long, how often.

Revoking one takes effect at once: the next request it covered needs a new approval.
Revoked, expired and used-up grants stay on record (``a`` shows them) for access reviews.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.content import Content

from aegis_tui.core.agents.grants import REVEAL, Grant, Grants
from aegis_tui.core.agents.sessions import Sessions
from aegis_tui.core.vault import Vault
from aegis_tui.tui.screens.agent_table_screen import AgentTableScreen, Column, Part, Row
from aegis_tui.tui.when import clock_time, relative

STATES: dict[str, tuple[str, str]] = {
    "active": ("✓ active", "$success"),
    "revoked": ("⊘ revoked", "strike $text-muted"),
    "expired": ("⌛ expired", "$text-muted"),
    "used": ("● used", "$text-muted"),
}


class GrantsScreen(AgentTableScreen):
    HEADING = "Agent grants"
    NOUN = "grants"
    COLUMNS = (Column("CREDENTIAL", 16, 2), Column("CONTEXT", 10, 1), Column("SESSION", 12, 1),
               Column("RIGHTS", 6), Column("SCOPES", 8, 2), Column("USES", 4), Column("EXPIRES", 8),
               Column("STATE", 9))
    BINDINGS = [
        Binding("x", "end", "Revoke", id="grants.revoke", tooltip="Revoke the highlighted grant"),
        Binding("a", "toggle_all", "Inactive", id="grants.all", tooltip="Show or hide revoked, expired, used"),
        Binding("escape", "back", "Back", id="grants.back", tooltip="Back to the credentials"),
    ]

    def load_rows(self, vault: Vault, now: float, show_all: bool) -> list[Row]:
        names = {s.id: s.label or s.id for s in Sessions(vault).list()}
        return [self._row(grant, names, now) for grant in Grants(vault).list(include_inactive=show_all)]

    @staticmethod
    def _row(grant: Grant, sessions: dict[str, str], now: float) -> Row:
        state = grant.state(now)
        session: Part = (grant.audience, "$text-muted") if grant.session_id is None else sessions.get(
            grant.session_id, grant.session_id)
        cells: tuple[list[Part], ...] = (
            [(grant.label, "bold")],
            [grant.context or ("all", "$text-muted")],
            [session],
            [("reveal", "bold $error") if REVEAL in grant.rights else "inject"],
            [" ".join(grant.scopes) or ("any", "$text-muted")],
            ["∞" if grant.uses_left is None else str(grant.uses_left)],
            [relative(grant.expires_at, now)],
            [STATES[state]],
        )
        detail: list[Part] = [(grant.id, "bold"), (f" · made {clock_time(grant.created_at, now)} by ", "$text-muted"),
                              grant.created_by]
        detail += [("\nfor ", "$text-muted"), grant.binding]
        if grant.cwd:
            detail += [("  in ", "$text-muted"), grant.cwd]
        if grant.reason:
            detail += [("\nreason ", "$text-muted"), grant.reason]
        if grant.revoked_at is not None:
            detail += [(f"\nrevoked {clock_time(grant.revoked_at, now)} ", "$text-muted"), grant.revoked_reason]
        return Row(grant.id, cells, state == "active", detail, grant.label)

    def confirmation(self, row: Row) -> tuple[Content, Content, str]:
        title = Content.assemble(("Revoke the grant for ", "bold $warning"), (row.name, "bold"))
        body = Content.assemble("Whatever this grant lets an agent use needs your approval again from now on. "
                                "The record stays, for access reviews.")
        return title, body, "Revoke"

    def end_record(self, row: Row) -> str:
        Grants(self.aegis.vault).revoke(row.id, reason="revoked in the app")
        return f"Revoked the grant for {row.name}."
