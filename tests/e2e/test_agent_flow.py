"""The whole agent flow, end to end, with real processes.

The app (driven by Textual's pilot) hosts the broker on a real socket. An agent shell
(a real ``sh`` subprocess, without the vault key) starts a session and asks
``aegis-vault run`` to inject a credential into a child; the human approves or denies
in the pop-up. The child proves it received the value by writing its SHA-256 to a file,
and prints the value raw, base64'd, hex'd and URL-encoded: the agent must see only
``[aegis:NAME]``. The vault's clock is pinned so a grant can expire mid-session.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from aegis_tui.core.config import Settings
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.demo import SettableClock
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault
from aegis_tui.tui.app import AegisApp
from aegis_tui.tui.screens.approval_modal import ApprovalModal
from aegis_tui.tui.screens.vault_screen import VaultScreen

KEY = "6e" * 32
VALUE = "ghp_E2eAgentCanary9876543210abcdefQRS"
NOW = 1_795_000_000.0
TIMEOUT = float(os.environ.get("E2E_TIMEOUT", "60"))

CHILD = r"""
import base64, hashlib, os, sys, urllib.parse
value = os.environ["GITHUB_TOKEN"]
open(sys.argv[1], "w").write(hashlib.sha256(value.encode()).hexdigest())
print("raw", value)
print("b64", base64.b64encode(value.encode()).decode())
print("hex", value.encode().hex())
print("url", urllib.parse.quote(value, safe=""))
print("done", file=sys.stderr)
"""


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.runtime = Path(tempfile.mkdtemp(prefix="aeg-", dir="/tmp"))  # socket paths must stay short
        os.chmod(self.runtime, 0o700)
        self.child = root / "child.py"
        self.child.write_text(CHILD)
        self.clock = SettableClock(NOW)

    def agent_env(self, **extra: str) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "TMPDIR")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.update({"AEGIS_VAULT_HOME": str(self.home), "HOME": str(self.root), "XDG_RUNTIME_DIR": str(self.runtime),
                    "PYTHONDONTWRITEBYTECODE": "1"})
        env.update(extra)
        return env  # no AEGIS_VAULT_KEY: the agent cannot unlock the vault

    async def agent(self, script: str, **extra: str) -> tuple[int, bytes, bytes]:
        """Run ``script`` in a real agent shell; ``aegis-vault`` is this interpreter's module."""
        shell = f'aegis() {{ "{sys.executable}" -m aegis_tui "$@"; }}\n{script}'
        proc = await asyncio.create_subprocess_exec("sh", "-c", shell, env=self.agent_env(**extra),
                                                    stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        assert proc.returncode is not None
        return proc.returncode, out, err

    def run_script(self, proof: Path) -> str:
        return (f'aegis run --need github=GITHUB_TOKEN --reason "push the fix" -- '
                f'"{sys.executable}" "{self.child}" "{proof}"')


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    w = World(tmp_path)
    monkeypatch.setenv("AEGIS_VAULT_KEY", KEY)  # the app (this process) unlocks with it
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(w.runtime))
    monkeypatch.setenv("AEGIS_VAULT_INSECURE_FAST_KDF", "1")
    w.home.mkdir(mode=0o700)
    vault, _ = Vault.create(w.home / "vault.db", passphrase=None, kdf=None, env_key=KEY, clock=w.clock)
    Credentials(vault).add("github", Secret(VALUE), service="github", context="acme/dev")
    Credentials(vault).add("personal-mail", Secret("mail-password-not-for-agents"), context="personal")
    vault.close()
    return w


@asynccontextmanager
async def app_running(world: World, approval_timeout: float = 120.0) -> AsyncIterator[tuple[AegisApp, object]]:
    vault = Vault.open(world.home / "vault.db", clock=world.clock)
    app = AegisApp(vault, settings=Settings(), settings_path=str(world.root / "settings.toml"), clock=world.clock,
                   host_broker=True, approval_timeout=approval_timeout)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, VaultScreen) and app.broker_service is not None,
                    "the app unlocked and serving")
        yield app, pilot
    vault.close()


async def until(pilot: object, condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)  # type: ignore[attr-defined]


async def approve(app: AegisApp, pilot: object, key: str) -> ApprovalModal:
    await until(pilot, lambda: isinstance(app.screen, ApprovalModal), "the approval pop-up")
    modal = app.screen
    await until(pilot, lambda: modal.armed, "the pop-up to take answers (after its first second)")  # type: ignore[attr-defined]
    await pilot.press(key)  # type: ignore[attr-defined]
    return modal  # type: ignore[return-value]


def masked(output: bytes) -> bool:
    """Every line shows the marker, and the value appears in no encoding."""
    import base64
    import urllib.parse

    forms = [VALUE.encode(), base64.b64encode(VALUE.encode()), VALUE.encode().hex().encode(),
             urllib.parse.quote(VALUE, safe="").encode()]
    lines = dict(line.split(b" ", 1) for line in output.splitlines() if b" " in line)
    return all(lines.get(k) == b"[aegis:github]" for k in (b"raw", b"b64", b"hex", b"url")) and not any(
        form in output for form in forms)


async def start_session(world: World) -> str:
    code, out, err = await world.agent("aegis session start --context acme/dev --ttl 2h --label e2e-agent")
    assert code == 0, err.decode()
    return out.decode().strip().removeprefix("export AEGIS_SESSION=")


async def test_an_approved_run_injects_the_value_and_the_agent_sees_it_masked_in_every_encoding(world: World):
    proof = world.root / "proof"
    async with app_running(world) as (app, pilot):
        session = await start_session(world)
        agent = asyncio.ensure_future(world.agent(world.run_script(proof), AEGIS_SESSION=session))
        modal = await approve(app, pilot, "1")  # Once
        assert modal.request.credential.name == "github" and modal.request.session is not None
        code, out, err = await agent
    assert code == 0, err.decode()
    received = proof.read_text() == hashlib.sha256(VALUE.encode()).hexdigest()
    assert received  # the child had the real value in its environment
    assert masked(out + err)
    assert b"done" in err


async def test_a_denied_run_never_starts_the_child_and_says_so(world: World):
    proof = world.root / "proof"
    async with app_running(world) as (app, pilot):
        session = await start_session(world)
        agent = asyncio.ensure_future(world.agent(world.run_script(proof), AEGIS_SESSION=session))
        await approve(app, pilot, "escape")
        code, out, err = await agent
    assert code == 9
    assert b"denied" in err and err.count(b"\n") == 1
    assert not proof.exists()
    assert VALUE.encode() not in out + err


async def test_an_unanswered_request_times_out_and_tells_the_agent_to_ask_its_human(world: World):
    proof = world.root / "proof"
    async with app_running(world, approval_timeout=2) as (app, pilot):
        session = await start_session(world)
        code, out, err = await world.agent(world.run_script(proof), AEGIS_SESSION=session)
        await until(pilot, lambda: not isinstance(app.screen, ApprovalModal), "the pop-up to go away")
    assert code == 9
    assert b"ask the human" in err
    assert not proof.exists()


async def test_a_grant_expiring_mid_session_needs_a_new_approval(world: World):
    proof = world.root / "proof"
    async with app_running(world) as (app, pilot):
        session = await start_session(world)
        first = asyncio.ensure_future(world.agent(world.run_script(proof), AEGIS_SESSION=session))
        await approve(app, pilot, "2")  # 15 minutes
        assert (await first)[0] == 0
        again = await world.agent(world.run_script(proof), AEGIS_SESSION=session)  # inside the 15 minutes
        assert again[0] == 0 and masked(again[1])
        world.clock.pinned = NOW + 16 * 60  # the grant has expired; the session (2 h) has not
        late = asyncio.ensure_future(world.agent(world.run_script(proof), AEGIS_SESSION=session))
        modal = await approve(app, pilot, "d")
        assert modal.request.session is not None and modal.request.session.label == "e2e-agent"
        assert session not in repr(modal.request)  # the agent's token never reaches the app
        code, _, err = await late
    assert code == 9 and b"denied" in err


async def test_a_session_does_not_see_credentials_outside_its_context(world: World):
    async with app_running(world) as (app, pilot):
        session = await start_session(world)
        code, out, err = await world.agent("aegis list --json && aegis get personal-mail", AEGIS_SESSION=session)
        assert not isinstance(app.screen, ApprovalModal)  # nothing to approve: it does not exist for the agent
    assert code == 4
    assert b'"name": "github"' in out and b"personal-mail" not in out
    assert b"no credential matches 'personal-mail'" in err
