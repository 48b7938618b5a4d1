"""Agent sessions: the context each agent works in, until when, and what it was granted.

Ending a session revokes every grant made for it, at once; a session bound to a
process (``session exec``) also stops covering that process and its children.
"""

from __future__ import annotations

from collections import Counter

from textual.binding import Binding
from textual.content import Content

from aegis_tui.core.agents.grants import Grants
from aegis_tui.core.agents.sessions import AgentSession, Sessions
from aegis_tui.core.vault import Vault
from aegis_tui.tui.screens.agent_table_screen import AgentTableScreen, Column, Part, Row
from aegis_tui.tui.when import clock_time, relative

STATES: dict[str, tuple[str, str]] = {
    "active": ("✓ active", "$success"),
    "ended": ("⊘ ended", "$text-muted"),
    "expired": ("⌛ expired", "$text-muted"),
}


class SessionsScreen(AgentTableScreen):
    HEADING = "Agent sessions"
    NOUN = "sessions"
    COLUMNS = (Column("SESSION", 19), Column("LABEL", 6, 3), Column("CONTEXT", 8, 1), Column("STATE", 9),
               Column("STARTED", 7), Column("ENDS", 7), Column("PID", 6), Column("SANDBOX", 7), Column("GRANTS", 6))
    BINDINGS = [
        Binding("x", "end", "End", id="sessions.end", tooltip="End the highlighted session and revoke its grants"),
        Binding("a", "toggle_all", "Inactive", id="sessions.all", tooltip="Show or hide ended and expired ones"),
        Binding("escape", "back", "Back", id="sessions.back", tooltip="Back to the credentials"),
    ]

    def load_rows(self, vault: Vault, now: float, show_all: bool) -> list[Row]:
        grants = Counter(grant.session_id for grant in Grants(vault).list())
        return [self._row(session, grants[session.id], now) for session in Sessions(vault).list()
                if show_all or session.is_live(now)]

    @staticmethod
    def _row(session: AgentSession, grants: int, now: float) -> Row:
        state = session.state(now)
        ends = session.ended_at if session.ended_at is not None else session.expires_at
        cells: tuple[list[Part], ...] = (
            [(session.id, "bold")],
            [session.label or ("—", "$text-muted")],
            [session.context or ("all", "$text-muted")],
            [STATES[state]],
            [relative(session.created_at, now)],
            [relative(ends, now)],
            [str(session.root_pid) if session.root_pid is not None else ("—", "$text-muted")],
            [("✓ yes", "$success") if session.sandboxed else ("✗ no", "$warning")],
            [str(grants)],
        )
        bound = f"bound to pid {session.root_pid} and its children" if session.root_pid is not None else (
            "not bound to a process (AEGIS_SESSION)")
        contained = ("sandboxed: the vault, keyring and other processes are out of its reach" if session.sandboxed
                     else "not sandboxed: its agent can reach what your user can")
        detail: list[Part] = [(session.id, "bold"), (f" · {bound}", "$text-muted"),
                              (f" · {contained}", "$text-muted" if session.sandboxed else "$warning"),
                              (f"\nstarted {clock_time(session.created_at, now)} by ", "$text-muted"),
                              session.created_by, (f" · ends {clock_time(ends, now)}", "$text-muted")]
        return Row(session.id, cells, state == "active", detail, session.label or session.id)

    def confirmation(self, row: Row) -> tuple[Content, Content, str]:
        title = Content.assemble(("End the agent session ", "bold $warning"), (row.name, "bold"))
        body = Content.assemble("The session ends now and every grant made for it is revoked: its agent needs "
                                "your approval again for anything. The record stays, for access reviews.")
        return title, body, "End session"

    def end_record(self, row: Row) -> str:
        _, revoked = Sessions(self.aegis.vault).end(row.id, reason="ended in the app")
        return f"Ended the session {row.name}; {revoked} grant(s) revoked."
