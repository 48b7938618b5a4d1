"""Everything a browsing surface needs in one load: the credentials and when each was last used.

"Last used" comes from the newest audit entries (reads of a value), not from a field
updated on every read: reading a secret should not rewrite its record. The window is
bounded so that loading stays fast however long the log grows.
"""

from __future__ import annotations

from typing import NamedTuple

from aegis_tui.core.audit import AuditEntry
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.models import Credential
from aegis_tui.core.vault import Vault

AUDIT_WINDOW = 5000


class Inventory(NamedTuple):
    credentials: list[Credential]
    last_used: dict[str, float]  # casefolded name -> timestamp of the latest read
    recent_audit: list[AuditEntry]  # oldest first


def load_inventory(vault: Vault, audit_window: int = AUDIT_WINDOW) -> Inventory:
    credentials = Credentials(vault).list()
    recent = vault.audit.tail(audit_window)
    last_used: dict[str, float] = {}
    for entry in recent:
        if entry.operation == "read" and entry.outcome == "ok" and entry.target:
            last_used[entry.target.casefold()] = entry.timestamp
    return Inventory(credentials, last_used, recent)
