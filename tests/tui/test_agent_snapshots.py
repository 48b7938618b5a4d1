"""Screenshots of the agent views: the approval pop-up, the Grants and Sessions views.

Deterministic like ``test_snapshots.py`` (``snapshot_app``: frozen clock, ``live=False``,
UTC, relative vault path). The app hosts its real broker; the request shown is put in
its real approval queue with a fixed process description, and sessions and grants are
stored with fixed ids, so nothing depends on this machine's pids or on chance.
Update after an intended change with: pytest tests/tui/test_agent_snapshots.py --snapshot-update
"""

from __future__ import annotations

import asyncio

from aegis_tui.core.agents.grants import GRANT_KIND, Grant
from aegis_tui.core.store.records import SealedRecords
from aegis_tui.core.agents.sessions import SESSION_KIND, AgentSession
from aegis_tui.core.approvals import PendingRequest, literal
from aegis_tui.core.processes import PeerInfo, ProcessInfo
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.vault import Vault
from aegis_tui.tui.screens.approval_modal import ApprovalModal
from aegis_tui.tui.screens.grants_screen import GrantsScreen
from aegis_tui.tui.screens.sessions_screen import SessionsScreen

from .conftest import NOW, settle, unlock, wait_until

SIZE = (120, 40)
SMALL = (80, 24)
SESSION = AgentSession(id="as_4f1c2a9e7b3d5c80", label="claude · CI fix", context="acme/dev", created_at=NOW - 3600,
                       expires_at=NOW + 3600, root_pid=4121, root_started=98765,
                       created_by="tester via aegis-vault (pid 4100) ← zsh", sandboxed=True)
OTHER_SESSIONS = (
    AgentSession(id="as_0a1b2c3d4e5f6071", label="", context="personal", created_at=NOW - 600,
                 expires_at=NOW + 6600, created_by="tester via aegis-vault (pid 5000) ← bash"),
    AgentSession(id="as_9e8d7c6b5a4f3e21", label="codex · docs", context="acme/prod", created_at=NOW - 86400,
                 expires_at=NOW - 79200, ended_at=NOW - 82800, created_by="tester via aegis-vault (pid 3000) ← zsh"),
)
REASON = ("push the fix for CI failure #812: the release workflow must tag v2.3.1 and push it to main, then "
          "open the changelog PR against acme/api so the deploy can start [b]today[/b] \x1b[31m")
PEER = PeerInfo(pid=4130, uid=1000, exe="/usr/bin/python3.11", cwd="/home/dev/src/acme-api",
                chain=(ProcessInfo(4130, "aegis-vault", "/usr/bin/python3.11"),
                       ProcessInfo(4121, "claude", "/usr/lib/node_modules/claude/bin/claude"),
                       ProcessInfo(4080, "node", "/usr/bin/node"), ProcessInfo(3900, "zsh", "/usr/bin/zsh"),
                       ProcessInfo(3890, "tmux: server", "/usr/bin/tmux"), ProcessInfo(1, "systemd", "/usr/lib/systemd/systemd")),
                ancestry=(), cmdline=("/usr/bin/python3.11", "/usr/local/bin/aegis-vault", "run", "--", "git", "push",
                                      "origin", "main"))


def credential_id(vault: Vault, name: str) -> str:
    return next(c.id for c in Credentials(vault).list() if c.name == name)


def store(vault: Vault, kind: str, records: list[dict[str, object]]) -> None:
    """Sessions and grants with fixed ids, through the vault's sealed records."""
    with vault.store.transaction():
        for record in records:
            SealedRecords(vault, kind).insert(record)


def seed_sessions(vault: Vault) -> None:
    store(vault, SESSION_KIND, [s.to_dict() for s in (SESSION, *OTHER_SESSIONS)])


def seed_grants(vault: Vault) -> None:
    seed_sessions(vault)
    by = "approved in the app (request 3)"
    grants = [
        Grant("gr_00000000000000a1", "github-pat-ci", credential_id(vault, "github-pat-ci"), context="acme/dev",
              session_id=SESSION.id, scopes=("repo:push",), expires_at=NOW + 3000, created_at=NOW - 600,
              created_by=by, reason="push the fix for CI failure #812"),
        Grant("gr_00000000000000a2", "service:aws", selector="service:aws", context="acme/prod", uses_left=8,
              expires_at=NOW + 30 * 86400, created_at=NOW - 7200, created_by="tester via aegis-vault (pid 4000)",
              reason="nightly backup job"),
        Grant("gr_00000000000000a3", "slack-bot", credential_id(vault, "slack-bot"), context="acme/dev",
              session_id=SESSION.id, uses_left=1, expires_at=NOW + 900, created_at=NOW - 120, created_by=by,
              reason="post the release note"),
        Grant("gr_00000000000000a4", "stripe-test", credential_id(vault, "stripe-test"), context="acme/dev",
              session_id=OTHER_SESSIONS[1].id, expires_at=NOW - 79200, created_at=NOW - 86000, created_by=by,
              reason="run the payment tests", revoked_at=NOW - 82800, revoked_reason="session ended"),
        Grant("gr_00000000000000a5", "openai-api", credential_id(vault, "openai-api"), context="personal",
              uses_left=0, expires_at=NOW + 600, created_at=NOW - 300, created_by=by, reason="one summary"),
    ]
    store(vault, GRANT_KIND, [g.to_dict() for g in grants])


async def approval_showing(pilot) -> None:
    """Unlock, then an agent's request reaches the app's real approval queue."""
    app = pilot.app
    await unlock(pilot)
    await wait_until(pilot, lambda: app.broker_service is not None, what="the broker to start")
    vault = app.vault
    seed_sessions(vault)
    credential = next(c for c in Credentials(vault).list() if c.name == "github-pat-ci")
    request = PendingRequest(id=3, created_at=NOW - 17, deadline=NOW + 103, peer=PEER, session=SESSION,
                             credential=credential, scopes=("repo:push",), reason=literal(REASON), duration=900,
                             via="aegis-vault run -- git", right="inject", command=("git", "push", "origin", "main"),
                             program="/usr/bin/git", bound=True, sandboxed=True, warnings=("expires in 9 days",))
    asyncio.ensure_future(app.broker_service.approvals.ask(request))  # denied when the app closes
    await wait_until(pilot, lambda: isinstance(app.screen, ApprovalModal), what="the pop-up")
    await settle(pilot)


async def view_showing(pilot, key: str, screen_type: type, seed) -> None:  # type: ignore[no-untyped-def]
    await unlock(pilot)
    seed(pilot.app.vault)
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, screen_type), what=screen_type.__name__)
    await pilot.press("a")  # inactive ones too: every state on one picture
    await settle(pilot)
    await wait_until(pilot, lambda: len(pilot.app.screen.rows) > 2, what="the rows")
    await settle(pilot)


def test_approval_pop_up(snap_compare, snapshot_app, broker_runtime):
    assert snap_compare(snapshot_app(host_broker=True), terminal_size=SIZE, run_before=approval_showing)


def test_approval_pop_up_80x24(snap_compare, snapshot_app, broker_runtime):
    assert snap_compare(snapshot_app(host_broker=True), terminal_size=SMALL, run_before=approval_showing)


def test_grants_view(snap_compare, snapshot_app):
    async def run_before(pilot) -> None:
        await view_showing(pilot, "A", GrantsScreen, seed_grants)

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_sessions_view(snap_compare, snapshot_app):
    async def run_before(pilot) -> None:
        await view_showing(pilot, "S", SessionsScreen, seed_grants)

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=run_before)
