"""SVG screenshots of every screen of the app, from the demo vault, with time frozen.

    .venv/bin/python scripts/screenshots.py              # writes screenshots/*.svg
    .venv/bin/python scripts/screenshots.py --out DIR    # somewhere else
    .venv/bin/python scripts/screenshots.py --check-only [--out DIR]   # only the leak check

The app runs headless (Textual's ``run_test``) on a fresh demo vault with a pinned clock,
no timers (``live=False``), UTC and a fixed vault label, so the same code gives the same
files byte for byte: running it twice changes nothing. A screen is captured only once
the worker threads (decrypting, verifying the audit chain) are done.

Afterwards every SVG is scanned for every value of every version of every demo
credential (and for the values typed into the forms, which must show masked). The
demo passphrase may appear: the demo's unlock screen shows it on purpose. Any hit is
reported by file and credential name (never the value) and the exit code is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

os.environ["TZ"] = "UTC"  # the audit panel prints local times
time.tzset()
sys.argv[0] = "aegis-vault"  # the audit log names the program: show what a user would see

from aegis_tui.core.agents.sessions import AgentSession  # noqa: E402
from aegis_tui.core.approvals import PendingRequest, literal  # noqa: E402
from aegis_tui.core.config import Settings  # noqa: E402
from aegis_tui.core.credentials import Credentials  # noqa: E402
from aegis_tui.core.crypto import new_kdf_params  # noqa: E402
from aegis_tui.core.demo import DEMO_PASSPHRASE, SettableClock, create_demo_vault  # noqa: E402
from aegis_tui.core.models import Kind  # noqa: E402
from aegis_tui.core.secret import Secret  # noqa: E402
from aegis_tui.core.vault import Vault  # noqa: E402

NOW = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC: every screenshot sees this moment
SIZE = (120, 40)
SMALL = (80, 24)
VAULT_LABEL = "~/.local/share/aegis-vault/vault.db"
SETTINGS_LABEL = "~/.config/aegis-vault/config.toml"  # shown only; see ScreenshotApp.save_settings
# Typed into the forms in the screenshots: fake, and they must show masked.
TYPED_VALUE = "lin_api_Demo7fQ2mZx9KpL4wR8sT1vY"
TYPED_TOTP_SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
EXPECTED = ("unlock", "vault", "vault-80x24", "filter", "add", "totp-form", "rotate", "revoke", "destroy",
            "help", "settings", "palette", "grants", "rotation", "review", "approval")
WINDOW = 16  # a leaked value is found by any 16-character piece of it
AGENT_REASON = "push the fix for CI failure #812 (the release workflow tags v2.3.1 and pushes to main)"


# -- an agent at work ------------------------------------------------------------------------------
def seed_agents(vault: Vault) -> AgentSession:
    """An agent session and its grants, with fixed ids (real ones are random), stored the
    way the core stores them; returns the session."""
    from aegis_tui.core.agents.grants import GRANT_KIND, Grant
    from aegis_tui.core.store.records import SealedRecords
    from aegis_tui.core.agents.sessions import SESSION_KIND

    session = AgentSession(id="as_4f1c2a9e7b3d5c80", label="claude · CI fix", context="acme/dev",
                           created_at=NOW - 3600, expires_at=NOW + 3600, root_pid=4121, root_started=98765,
                           created_by="you via aegis-vault (pid 4100) ← zsh", sandboxed=True)
    ids = {c.name: c.id for c in Credentials(vault).list()}
    by = "approved in the app (request 2)"
    grants = [
        Grant("gr_00000000000000a1", "github-pat-ci", ids["github-pat-ci"], context="acme/dev", session_id=session.id,
              scopes=("repo:push",), expires_at=NOW + 3000, created_at=NOW - 600, created_by=by,
              reason="push the fix for CI failure #812"),
        Grant("gr_00000000000000a2", "service:aws", selector="service:aws", context="acme/prod", uses_left=8,
              expires_at=NOW + 30 * 86400, created_at=NOW - 7200, created_by="you via aegis-vault (pid 4000)",
              reason="nightly backup job"),
        Grant("gr_00000000000000a3", "slack-bot", ids["slack-bot"], context="acme/dev", session_id=session.id,
              uses_left=1, expires_at=NOW + 900, created_at=NOW - 120, created_by=by, reason="post the release note"),
    ]
    with vault.store.transaction():
        SealedRecords(vault, SESSION_KIND).insert(session.to_dict())
        for grant in grants:
            SealedRecords(vault, GRANT_KIND).insert(grant.to_dict())
    return session


def agent_request(vault: Vault, session: AgentSession) -> PendingRequest:
    """What the broker records about an agent's request; the process is fixed (real pids vary)."""
    from aegis_tui.core.processes import PeerInfo, ProcessInfo

    peer = PeerInfo(pid=4130, uid=1000, exe="/usr/bin/python3.11", cwd="/home/you/src/acme-api",
                    chain=(ProcessInfo(4130, "aegis-vault", "/usr/bin/python3.11"),
                           ProcessInfo(4121, "claude", "/usr/bin/claude"), ProcessInfo(4080, "zsh", "/usr/bin/zsh")),
                    ancestry=())
    credential = next(c for c in Credentials(vault).list() if c.name == "github-pat-ci")
    return PendingRequest(id=3, created_at=NOW - 17, deadline=NOW + 103, peer=peer, session=session,
                          credential=credential, scopes=("repo:push",), reason=literal(AGENT_REASON), duration=None,
                          via="aegis-vault run -- git", right="inject", command=("git", "push", "origin", "main"),
                          program="/usr/bin/git", bound=True, sandboxed=True)


# -- taking the screenshots ------------------------------------------------------------------
async def take(out: Path, workdir: Path) -> Vault:
    from textual.widgets import Input, Select  # imported here: --check-only needs no Textual

    from aegis_tui.tui import app as app_module

    class ScreenshotApp(app_module.AegisApp):
        CSS_PATH = str(Path(app_module.__file__).with_name("aegis.tcss"))  # relative paths follow the subclass

        @property
        def vault_label(self) -> str:  # the temp folder's name would change on every run
            return VAULT_LABEL

        def save_settings(self, settings: Settings) -> None:  # never the real file, whatever is shown
            self.settings_path = str(workdir / "config.toml")
            super().save_settings(settings)

    clock = SettableClock(NOW)
    vault = create_demo_vault(str(workdir), new_kdf_params(memory_kib=8, iterations=1, lanes=1), clock)
    app = ScreenshotApp(vault, settings=Settings(), settings_path=SETTINGS_LABEL,
                        clock=clock, demo_passphrase=DEMO_PASSPHRASE, live=False)
    async with app.run_test(size=SIZE) as pilot:

        async def settle() -> None:
            for _ in range(3):
                await app.workers.wait_for_complete()
                await pilot.pause()

        def shot(name: str, title: str) -> None:
            if os.environ.get("SCREENSHOTS_TIMING"):
                print(f"{time.perf_counter():.2f} {name}", file=sys.stderr)
            app.title = f"aegis-vault · {title}"
            svg = app.export_screenshot(title=app.title)
            (out / f"{name}.svg").write_text(svg, encoding="utf-8")

        def fill(selector: str, text: str) -> None:
            """What typing does (the field gets focus, the value, the cursor at the end), at once."""
            field = app.screen.query_one(selector, Input)
            field.focus()
            field.value = text
            field.cursor_position = len(text)

        await settle()
        shot("unlock", "unlock")

        await pilot.press(*DEMO_PASSPHRASE, "enter")
        await settle()
        assert vault.is_unlocked, "the demo passphrase did not unlock the demo vault"
        await pilot.press("down", "down", "down")  # github-pat-ci: rotated, the old version still valid
        await settle()
        shot("vault", "credentials")

        await pilot.resize_terminal(*SMALL)
        await settle()
        shot("vault-80x24", "credentials (80×24)")
        await pilot.resize_terminal(*SIZE)
        await settle()

        await pilot.press("slash", *"stripe")
        await settle()
        shot("filter", "filter")
        await pilot.press("escape", "home", "down", "down", "down")  # back to github-pat-ci for the dialogs
        await settle()

        await pilot.press("a")
        await settle()
        for field, text in (("name", "linear-api"), ("service", "linear"), ("context", "acme/dev"),
                            ("tags", "pm, api")):
            fill(f"#field-{field}", text)
        fill("#value-input", TYPED_VALUE)
        await settle()
        shot("add", "add a credential")
        await pilot.press("escape")
        await settle()

        await pilot.press("a")
        await settle()
        app.screen.query_one("#field-kind", Select).value = Kind.TOTP
        fill("#field-name", "gitlab-2fa")
        fill("#field-service", "gitlab")
        fill("#field-context", "personal")
        fill("#value-input", TYPED_TOTP_SEED)
        await settle()
        shot("totp-form", "add a TOTP seed")
        await pilot.press("escape")
        await settle()

        await pilot.press("o")
        await settle()
        await pilot.click("#gen-button")  # a generated value: masked, only its length is told
        await settle()
        shot("rotate", "rotate")
        await pilot.press("escape")
        await settle()

        await pilot.press("x")
        await settle()
        shot("revoke", "revoke")
        await pilot.press("escape")
        await settle()

        await pilot.press("D")
        await settle()
        fill("#destroy-name", "github-pat")
        await settle()
        shot("destroy", "destroy")
        await pilot.press("escape")
        await settle()

        await pilot.press("f1")
        await settle()
        shot("help", "keys")
        await pilot.press("escape")
        await settle()

        await pilot.press("f2")
        await settle()
        shot("settings", "settings")
        await pilot.press("escape")
        await settle()

        await pilot.press("ctrl+p")
        await settle()
        await pilot.press(*"cred")
        await settle()
        await pilot.pause(0.3)  # the palette searches in a task of its own
        await settle()
        shot("palette", "command palette")
        await pilot.press("escape")
        await settle()

        session = seed_agents(vault)
        await pilot.press("A")
        await settle()
        await pilot.pause(0.2)  # the grants load in a worker, then draw
        await settle()
        shot("grants", "agent grants")
        await pilot.press("escape")
        await settle()

        await pilot.press("R")
        await settle()
        await pilot.pause(0.2)  # the schedule loads in a worker, then draws
        await settle()
        shot("rotation", "rotation: what is due")
        await pilot.press("escape")
        await settle()

        await pilot.press("V")
        await settle()
        await pilot.pause(0.5)  # the review's rows are computed in a worker
        await settle()
        shot("review", "the quarterly access review")
        await pilot.press("escape")
        await settle()

        assert app.broker_service is not None, "the app did not start its broker"
        asking = asyncio.ensure_future(app.broker_service.approvals.ask(agent_request(vault, session)))
        await settle()
        await pilot.pause(0.2)
        await settle()
        shot("approval", "an agent asks for a credential")
        await pilot.press("escape")  # Deny
        await asking
    return vault


# -- the leak check ----------------------------------------------------------------------------------
def every_value(vault: Vault) -> Iterator[tuple[str, str]]:
    """(name, value) for every version of every credential, revoked ones included.

    Read straight from the sealed store, like ``Credentials.reveal`` does, but without its
    refusal of revoked credentials: a revoked value must not be on a screenshot either.
    """
    credentials = Credentials(vault)
    for credential in credentials.list():
        record, _ = credentials._locate(credential.name)
        for version in vault.store.list_versions(record.id):
            raw = vault.keys.sealer.open(version.sealed, credentials._value_aad(record.id, version.version),
                                         "a secret value")
            yield f"{credential.name} v{version.version}", bytes(raw).decode("utf-8")


def pieces(value: str) -> set[str]:
    """Every WINDOW-character piece of every line of ``value`` (the whole line if shorter)."""
    found: set[str] = set()
    for line in value.splitlines():
        line = line.strip()
        if len(line) <= WINDOW:
            if len(line) >= 6:
                found.add(line)
            continue
        found.update(line[i:i + WINDOW] for i in range(len(line) - WINDOW + 1))
    return found


def svg_text(svg: str) -> str:
    """The text drawn by an SVG screenshot, one line per text row, entities decoded."""
    rows: dict[str, list[str]] = {}
    for y, body in re.findall(r'<text[^>]*\by="([0-9.]+)"[^>]*>(.*?)</text>', svg, flags=re.S):
        rows.setdefault(y, []).append(html.unescape(re.sub(r"<[^>]+>", "", body)))
    lines = ("".join(parts) for _, parts in sorted(rows.items(), key=lambda item: float(item[0])))
    return "\n".join(lines).replace("\xa0", " ")


def find_leaks(folder: Path, secrets: Iterable[tuple[str, str]]) -> list[str]:
    """``file: name`` for every secret (by any piece of it) found in any SVG in ``folder``."""
    needles = [(name, pieces(value)) for name, value in secrets]
    problems = []
    for path in sorted(folder.glob("*.svg")):
        raw = path.read_text(encoding="utf-8")
        haystacks = (raw, html.unescape(raw).replace("\xa0", " "), svg_text(raw))
        for name, parts in needles:
            if any(part in haystack for haystack in haystacks for part in parts):
                problems.append(f"{path.name}: {name}")
    return problems


def check(out: Path, vault: Vault) -> int:
    missing = [name for name in EXPECTED if not (out / f"{name}.svg").is_file()]
    secrets = [*every_value(vault), ("value typed into the add form", TYPED_VALUE),
               ("TOTP seed typed into the add form", TYPED_TOTP_SEED)]
    leaks = find_leaks(out, secrets)
    for name in missing:
        print(f"missing: {name}.svg", file=sys.stderr)
    for leak in leaks:
        print(f"LEAK: a secret value is visible in {leak}", file=sys.stderr)
    if missing or leaks:
        return 1
    print(f"checked {len(EXPECTED)} screenshots against {len(secrets)} secret values: none visible")
    return 0


def demo_vault_for_check(workdir: Path) -> Vault:
    """The same demo vault the screenshots show (it is deterministic), unlocked."""
    vault = create_demo_vault(str(workdir), new_kdf_params(memory_kib=8, iterations=1, lanes=1), SettableClock(NOW))
    vault.unlock_with_passphrase(Secret(DEMO_PASSPHRASE))
    return vault


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots", help="folder for the SVGs")
    parser.add_argument("--check-only", action="store_true", help="only scan --out for visible secret values")
    args = parser.parse_args(argv)
    out: Path = args.out
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aegis-screenshots-") as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o700)
        if args.check_only:
            vault = demo_vault_for_check(workdir)
        else:
            out.mkdir(parents=True, exist_ok=True)
            vault = asyncio.run(take(out, workdir))
            if not vault.is_unlocked:
                vault.unlock_with_passphrase(Secret(DEMO_PASSPHRASE))
            print(f"wrote {len(EXPECTED)} screenshots to {out} in {time.perf_counter() - started:.1f}s")
        try:
            return check(out, vault)
        finally:
            vault.close()


if __name__ == "__main__":
    sys.exit(main())
