"""The whole app in a real terminal: unlock, add, rotate, revoke, quit; then the CLI checks.

A vault is created with the real CLI, ``aegis-vault`` runs inside a private tmux server
(120x40), and every step is done with keystrokes, as a person would: the passphrase is
typed (``AEGIS_VAULT_KEY`` is removed from the app's environment so it cannot
auto-unlock), the add form is filled field by field with Tab, buttons are reached with
Tab/Shift+Tab and pressed with Enter. Between steps the test waits for the screen to
show the result. Afterwards, separate CLI processes read the vault file back.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PASSPHRASE = "tmux e2e passphrase 42"
ENV_KEY = "a7" * 32  # an env slot too, so the CLI checks need no passphrase
NAME = "e2e-deploy-token"
FIRST_VALUE = "first-value-Zq81x"  # test values, not secrets
SECOND_VALUE = "second-value-Mw42k"
VALUE_PLACEHOLDER = "secret value: type, paste"
EXIT_MARKER = "__AEGIS_APP_EXITED__"


def _row_of(screen: str, text: str) -> int:
    for number, line in enumerate(screen.splitlines()):
        if text in line:
            return number
    raise AssertionError(f"{text!r} is not on screen:\n{screen}")


def _bullets(count: int) -> re.Pattern[str]:
    """Exactly ``count`` mask characters: the masked input holds exactly what was typed."""
    return re.compile(rf"(?<!•)•{{{count}}}(?!•)")


def _get_matches(cli: Any, expected: str) -> bool:
    """``aegis-vault get`` in another process returns ``expected`` (compared, never printed)."""
    result = cli("get", NAME)
    assert result.returncode == 0, f"get exited {result.returncode}: {result.err}"
    return result.stdout.rstrip(b"\n") == expected.encode()


@pytest.fixture
def private_runtime() -> Iterator[Path]:
    """A short private folder for the app's broker socket (socket paths are limited to 108 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="aeg-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_add_rotate_revoke_by_keystrokes(tmux: Any, cli: Any, app_argv: list[str], private_runtime: Path) -> None:
    created = cli("init", "--passphrase-stdin", input=PASSPHRASE + "\n", env={"AEGIS_VAULT_KEY": ENV_KEY})
    assert created.returncode == 0, created.err
    app_env = {key: value for key, value in cli.env.items() if key != "AEGIS_VAULT_KEY"}
    # The app hosts a broker; its socket goes elsewhere, so the CLI checks below unlock the
    # vault themselves instead of asking the app (which would pop an approval).
    app_env["XDG_RUNTIME_DIR"] = str(private_runtime)
    tmux.start(["env", "-u", "AEGIS_VAULT_KEY", *app_argv], app_env)
    cli.env["AEGIS_VAULT_KEY"] = ENV_KEY  # for the CLI checks only

    # -- unlock: type the passphrase -------------------------------------------------------------
    tmux.wait_for(lambda s: "◆ aegis-vault" in s and "passphrase" in s and "Help" in s, "the unlock screen",
                  timeout=60)
    tmux.type(PASSPHRASE)
    tmux.wait_for(lambda s: bool(_bullets(len(PASSPHRASE)).search(s)), "the masked passphrase")
    assert PASSPHRASE not in tmux.screen()
    tmux.press("Enter")
    tmux.wait_for(lambda s: "unlocked" in s and "0 of 0" in s, "the vault screen", timeout=60)

    # -- add: name, Tab to the value field, value, ctrl+s ---------------------------------------
    tmux.press("a")
    screen = tmux.wait_for(VALUE_PLACEHOLDER, "the add form")
    assert "Add a credential" in screen
    tmux.type(NAME)
    screen = tmux.wait_for(lambda s: NAME in s, "the typed name")
    value_row = _row_of(screen, VALUE_PLACEHOLDER)
    name_row = _row_of(screen, NAME)
    tmux.wait_for(lambda s: tmux.cursor()[1] == name_row, "the cursor in the name field")
    position = tmux.cursor()
    for _ in range(12):  # name → service → … → notes → value: one Input per row
        if position[1] == value_row:
            break
        tmux.press("Tab")
        position = tmux.wait_for_cursor_move(position)
    assert position[1] == value_row, f"Tab never reached the value field; screen:\n{tmux.screen()}"
    tmux.type(FIRST_VALUE)
    tmux.wait_for(lambda s: bool(_bullets(len(FIRST_VALUE)).search(s)), "the masked value")
    assert FIRST_VALUE not in tmux.screen()
    tmux.press("C-s")
    screen = tmux.wait_for(lambda s: "Add a credential" not in s and "1 of 1" in s,
                           "the form to close and the list to show the new credential")
    assert f"▸{NAME}" in screen
    assert _get_matches(cli, FIRST_VALUE), "the stored value is not the one typed into the value field"

    # -- rotate: a new value, then Shift+Tab to the Rotate button and Enter -----------------------
    tmux.press("o")
    tmux.wait_for(f"Rotate {NAME}", "the rotate dialog")
    tmux.wait_for(VALUE_PLACEHOLDER, "the rotate dialog's value field")
    tmux.type(SECOND_VALUE)
    tmux.wait_for(lambda s: bool(_bullets(len(SECOND_VALUE)).search(s)), "the masked new value")
    tmux.press("BTab")  # wraps round from the value field to Cancel …
    tmux.wait_for_focused_button("Cancel")
    tmux.press("BTab")  # … and back once more to Rotate
    tmux.wait_for_focused_button("Rotate")
    tmux.press("Enter")
    current_v2 = re.compile(r"v2\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+current")
    tmux.wait_for(lambda s: f"Rotate {NAME}" not in s and bool(current_v2.search(s)),
                  "the dialog to close and v2 to be current")
    assert _get_matches(cli, SECOND_VALUE), "the rotated value is not the one typed"

    # -- revoke: Cancel has focus; Tab to Revoke, Enter ---------------------------------------------
    tmux.press("x")
    tmux.wait_for(f"Revoke {NAME}", "the revoke confirmation")
    tmux.wait_for_focused_button("Cancel")  # "no" is the default
    tmux.press("Tab")
    tmux.wait_for_focused_button("Revoke")
    tmux.press("Enter")
    tmux.wait_for(lambda s: f"Revoke {NAME}" not in s and "status      ⊘ revoked" in s,
                  "the credential to show as revoked")

    # -- quit ---------------------------------------------------------------------------------------
    tmux.press("C-q")
    screen = tmux.wait_for(EXIT_MARKER, "the app to exit")
    assert f"{EXIT_MARKER} 0" in screen, screen
    for secret in (PASSPHRASE, FIRST_VALUE, SECOND_VALUE):
        assert secret not in screen, "a secret was left on the terminal after exit"

    # -- read the vault back with the CLI -----------------------------------------------------------
    listed = cli("list", "--json")
    assert listed.returncode == 0, listed.err
    [entry] = json.loads(listed.out)
    assert (entry["name"], entry["status"], entry["version"]) == (NAME, "revoked", 2)

    history = cli("history", NAME, "--json")
    assert history.returncode == 0, history.err
    versions = json.loads(history.out)
    assert [v["version"] for v in versions] == [1, 2]
    assert {v["state"] for v in versions} == {"retired"}

    got = cli("get", NAME)
    assert got.returncode == 8, f"get of a revoked credential exited {got.returncode}"
    assert got.stdout == b""

    # The app unlocked with the typed passphrase, and did the three changes itself.
    exported = cli("audit", "export", "--jsonl")
    assert exported.returncode == 0, exported.err
    entries = [json.loads(line) for line in exported.out.splitlines() if line.strip()]
    unlocks = [e for e in entries if e["operation"] == "unlock" and e["detail"].get("slot") == "passphrase"]
    assert len(unlocks) == 1, "the app should have unlocked once, with the typed passphrase"
    app_pid = unlocks[0]["actor"]["pid"]
    by_app = [e["operation"] for e in entries if e["actor"]["pid"] == app_pid and e["target"] == NAME]
    assert [op for op in by_app if op in ("add", "rotate", "revoke")] == ["add", "rotate", "revoke"]
    verified = cli("audit", "verify")
    assert verified.returncode == 0, verified.err
