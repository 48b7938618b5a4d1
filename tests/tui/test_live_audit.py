"""The live audit tail: entries written by another process show up within about a second."""

from __future__ import annotations

import asyncio
import sys

from aegis_tui.core.demo import DEMO_PASSPHRASE
from aegis_tui.core.models import Status
from aegis_tui.tui.widgets.audit_panel import AuditPanel

from .conftest import paste, plain, row_names, select, settle, unlocked, vault_screen, wait_until

# Another process, using only the core API, as an agent or the command line would.
WRITER = """
import sys
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.models import Status
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault

path, operation, name = sys.argv[1:4]
vault = Vault.open(path)
vault.unlock_with_passphrase(Secret(sys.stdin.readline().rstrip("\\n")))
credentials = Credentials(vault)
if operation == "add":
    credentials.add(name, Secret("value-from-elsewhere"), service="elsewhere")
elif operation == "revoke":
    credentials.set_status(name, Status.REVOKED, reason="revoked elsewhere")
vault.close()
"""


async def other_process(path: str, operation: str, name: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, path, operation, name,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(process.communicate(f"{DEMO_PASSPHRASE}\n".encode()), timeout=60)
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]


async def test_an_add_by_another_process_appears_in_the_audit_panel_and_the_list(make_app):
    built = make_app(live=True)
    app = built.app
    async with unlocked(app) as pilot:
        audit = vault_screen(app).query_one(AuditPanel)
        assert not any(e.target == "from-elsewhere" for e in audit.entries)
        await other_process(built.vault.store.path, "add", "from-elsewhere")
        # Polled once a second by the app: allow a generous margin on a busy machine.
        await wait_until(pilot, lambda: any(e.target == "from-elsewhere" and e.operation == "add"
                                            for e in audit.entries), timeout=3, what="the audit entry")
        foreign = [e for e in audit.entries if e.target == "from-elsewhere"]
        assert all(e.actor.get("pid") != built.vault.actor.pid for e in foreign)
        await wait_until(pilot, lambda: "from-elsewhere" in plain(audit.query_one("#audit-lines")), timeout=3,
                         what="the audit line")
        # An add by someone else also reloads the list.
        await wait_until(pilot, lambda: "from-elsewhere" in row_names(app), timeout=3, what="the list to reload")
        assert built.credentials().find("from-elsewhere").service == "elsewhere"


async def test_a_revoke_by_another_process_updates_the_selected_credential(make_app):
    built = make_app(live=True)
    app = built.app
    async with unlocked(app) as pilot:
        await select(pilot, "slack-bot")
        assert vault_screen(app).check_action("reveal", ()) is True
        await other_process(built.vault.store.path, "revoke", "slack-bot")
        await wait_until(pilot, lambda: vault_screen(app).selected.status is Status.REVOKED, timeout=3,
                         what="the list to reload")
        await settle(pilot, 1)
        assert vault_screen(app).selected.name == "slack-bot"  # the cursor stays put
        assert vault_screen(app).check_action("reveal", ()) is not True


async def test_the_audit_filter_narrows_the_tail_to_matching_entries(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        audit = vault_screen(app).query_one(AuditPanel)
        await pilot.click("#audit-filter")
        await paste(pilot, "status.exposed")
        lines = plain(audit.query_one("#audit-lines")).splitlines()
        assert len(lines) == 1 and "stripe-live" in lines[0]
        await paste(pilot, " nothing-matches-this")
        assert plain(audit.query_one("#audit-lines")) == "no matching entries"
        status = plain(audit.query_one("#audit-status"))
        assert status.startswith("✓ chain verified")
        assert status.endswith(f" · {len(list(built.vault.audit.entries()))} entries")
