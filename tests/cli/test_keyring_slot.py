"""The OS keyring slot against a real Secret Service (gnome-keyring on a private D-Bus).

The ``secret_service`` fixture yields the environment that points at that bus; every
CLI call and every ``keyring`` probe here runs as a subprocess with it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.keyring


def keyring_call(cli, secret_service, code: str) -> str:  # type: ignore[no-untyped-def]
    """Run ``code`` (with ``keyring`` imported) against the test Secret Service; its stdout."""
    proc = subprocess.run([sys.executable, "-c", "import keyring\n" + code], capture_output=True, text=True,
                          env={**cli.env, **secret_service}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def has_entry(cli, secret_service, vault_id: str, slot_id: str) -> bool:  # type: ignore[no-untyped-def]
    answer = keyring_call(cli, secret_service,
                          f"print(keyring.get_password('aegis-vault', '{vault_id}/{slot_id}') is not None)")
    assert answer in ("True", "False"), answer
    return answer == "True"


def slot_ids(cli, secret_service) -> dict[str, str]:  # type: ignore[no-untyped-def]
    result = cli("slots", "list", env=secret_service)
    assert result.returncode == 0, result.err
    return {line.split()[1]: line.split()[0] for line in result.out.splitlines()[1:]}


@pytest.fixture
def keyring_vault(cli, secret_service):  # type: ignore[no-untyped-def]
    """``init --no-passphrase --keyring``: only the keyring (and recovery) open it."""
    created = cli("init", "--no-passphrase", "--keyring", env=secret_service)
    assert created.returncode == 0, created.err
    status = json.loads(cli("status", "--json", env=secret_service).out)
    return cli, status["vault_id"]


def test_init_no_passphrase_keyring_then_add_and_get_need_no_key_or_passphrase(keyring_vault, secret_service):
    cli, _ = keyring_vault
    assert "AEGIS_VAULT_KEY" not in cli.env
    added = cli("add", "api", input="keyring-held-value", env=secret_service)
    assert added.returncode == 0, added.err
    got = cli("get", "api", env=secret_service)
    assert got.returncode == 0, got.err
    assert got.stdout == b"keyring-held-value"
    status = json.loads(cli("status", "--json", env=secret_service).out)
    assert status["unlocked"] is True and status["credentials"] == 1


def test_slots_list_shows_a_keyring_slot(keyring_vault, secret_service):
    cli, _ = keyring_vault
    result = cli("slots", "list", env=secret_service)
    kinds = sorted(line.split()[1] for line in result.out.splitlines()[1:])
    assert kinds == ["keyring", "recovery"]
    assert "aegis-vault" in result.out  # the detail names the keyring service


def test_the_slot_key_is_really_stored_in_the_secret_service(keyring_vault, secret_service):
    cli, vault_id = keyring_vault
    slot = slot_ids(cli, secret_service)["keyring"]
    assert has_entry(cli, secret_service, vault_id, slot)
    assert not has_entry(cli, secret_service, vault_id, "00000000")
    stored = keyring_call(cli, secret_service, f"print(len(keyring.get_password('aegis-vault', '{vault_id}/{slot}')))")
    assert stored == "64"  # a 256-bit key, hex


def test_get_fails_with_exit_3_naming_the_other_slots_once_the_keyring_entry_is_gone(
        cli, secret_service, expect_error):
    created = cli("init", "--passphrase-stdin", "--keyring", input="a passphrase", env=secret_service)
    assert created.returncode == 0, created.err
    assert cli("add", "api", input="value", env=secret_service).returncode == 0
    vault_id = json.loads(cli("status", "--json", env=secret_service).out)["vault_id"]
    slot = slot_ids(cli, secret_service)["keyring"]
    keyring_call(cli, secret_service, f"keyring.delete_password('aegis-vault', '{vault_id}/{slot}')")
    assert not has_entry(cli, secret_service, vault_id, slot)
    result = cli("get", "api", env=secret_service)
    line = expect_error(result, 3, mentions=("keyring",))
    assert "passphrase" in line and "recovery" in line
    assert result.stdout == b""


def test_keyring_only_vault_without_its_keyring_entry_names_recovery_as_the_way_back(
        keyring_vault, secret_service, expect_error):
    cli, vault_id = keyring_vault
    assert cli("add", "api", input="value", env=secret_service).returncode == 0
    slot = slot_ids(cli, secret_service)["keyring"]
    keyring_call(cli, secret_service, f"keyring.delete_password('aegis-vault', '{vault_id}/{slot}')")
    expect_error(cli("get", "api", env=secret_service), 3, mentions=("recovery",))


def test_slots_remove_of_the_keyring_slot_deletes_its_keyring_entry(cli, secret_service, with_fd):
    created = cli("init", "--passphrase-stdin", "--keyring", input="a passphrase", env=secret_service)
    assert created.returncode == 0, created.err
    vault_id = json.loads(cli("status", "--json", env=secret_service).out)["vault_id"]
    slot = slot_ids(cli, secret_service)["keyring"]
    assert has_entry(cli, secret_service, vault_id, slot)
    removed = cli("slots", "remove", slot, env=secret_service)  # unlocks through the keyring slot itself
    assert removed.returncode == 0, removed.err
    assert not has_entry(cli, secret_service, vault_id, slot)
    assert "keyring" not in slot_ids(cli, secret_service)
    assert with_fd(cli, "a passphrase", "list", env=secret_service).returncode == 0


def test_slots_add_keyring_to_a_passphrase_vault_then_unlocks_without_the_passphrase(
        pass_vault, secret_service):
    added = pass_vault.run("slots", "add", "keyring", env=secret_service)
    assert added.returncode == 0, added.err
    assert pass_vault.run("add", "api", input="value", env=secret_service).returncode == 0
    got = pass_vault.cli("get", "api", env=secret_service)
    assert got.returncode == 0, got.err
    assert got.stdout == b"value"
