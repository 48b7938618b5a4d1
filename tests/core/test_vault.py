"""Creating, unlocking and locking a vault; its unlock slots; the file-permission rules."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aegis_tui.core import slots as slot_kinds
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import NotFoundError, RefusedError, UnlockError, UsageError, VaultFileError
from aegis_tui.core.secret import Secret
from aegis_tui.core.slots import SlotKind
from aegis_tui.core.vault import Vault

RECOVERY_SHAPE = re.compile(r"^[A-Z2-7]{5}(-[A-Z2-7]{5}){7}$")
CANARY = "vault-test-VALUE-CANARY-71c2"


def reopen(made, kit) -> Vault:  # type: ignore[no-untyped-def]
    """The same file, as a new process would see it: locked."""
    made.vault.close()
    return Vault.open(made.path, clock=made.clock, actor=kit.TEST_ACTOR)


def kinds(vault: Vault) -> list[str]:
    return sorted(str(info.kind) for info in vault.slots())


# -- creating ---------------------------------------------------------------------------------------------
def test_create_makes_passphrase_env_and_recovery_slots_and_stays_unlocked(made, kit) -> None:
    assert kinds(made.vault) == ["env", "passphrase", "recovery"]
    assert made.vault.is_unlocked
    assert RECOVERY_SHAPE.match(made.recovery)
    details = {str(info.kind): info.detail for info in made.vault.slots()}
    assert details["passphrase"].startswith("argon2id") and "t=1 p=1" in details["passphrase"]  # test KDF
    assert details["env"] == "$AEGIS_VAULT_KEY"
    first = next(made.vault.audit.entries())
    assert (first.operation, first.outcome, first.target) == ("init", "ok", "vault")
    assert sorted(first.detail["slots"]) == ["env", "passphrase", "recovery"]


def test_slot_listing_shows_no_key_material(made, kit) -> None:
    text = repr(made.vault.slots())
    with kit.raw_db(made.path) as conn:
        for wrapped, params in conn.execute("SELECT wrapped, params FROM slots"):
            assert wrapped.hex() not in text
            salt = json.loads(params).get("salt")
            assert salt is None or salt not in text


def test_create_accepts_str_and_pathlike_paths(tmp_path: Path, kit) -> None:
    folder = kit.private_dir(tmp_path)
    for path in (str(folder / "a.db"), folder / "b.db"):
        vault, _ = Vault.create(path, passphrase=None, kdf=None, env_key=kit.ENV_KEY)
        vault.close()
        Vault.open(path).close()


def test_create_without_any_unlock_method_is_refused_and_leaves_no_file(vault_path: Path) -> None:
    with pytest.raises(UnlockError, match="at least one unlock method"):
        Vault.create(vault_path, passphrase=None, kdf=None)
    assert list(vault_path.parent.iterdir()) == []


def test_create_with_a_passphrase_but_no_kdf_is_refused_not_silently_slotless(vault_path: Path) -> None:
    with pytest.raises(UsageError, match="key-derivation"):
        Vault.create(vault_path, passphrase=Secret("pw"), kdf=None)
    assert list(vault_path.parent.iterdir()) == []


def test_create_that_fails_half_way_leaves_no_files(vault_path: Path, kit) -> None:
    with pytest.raises(UsageError, match="64 hex"):
        Vault.create(vault_path, passphrase=Secret(kit.PASSPHRASE), kdf=kit.fast_kdf(), env_key="too-short")
    assert list(vault_path.parent.iterdir()) == []


def test_create_never_overwrites_an_existing_vault(made, kit) -> None:
    made.vault.close()
    before = made.path.read_bytes()
    with pytest.raises(VaultFileError, match="already exists"):
        Vault.create(made.path, passphrase=None, kdf=None, env_key=kit.ENV_KEY)
    assert made.path.read_bytes() == before


def test_open_of_a_missing_vault_is_a_vault_file_error(vault_path: Path) -> None:
    with pytest.raises(VaultFileError, match="no vault"):
        Vault.open(vault_path)


# -- unlocking: right and wrong for every slot kind -------------------------------------------------------------
def unlock_right(vault: Vault, kind: str, made, kit) -> None:  # type: ignore[no-untyped-def]
    if kind == "passphrase":
        vault.unlock_with_passphrase(Secret(kit.PASSPHRASE))
    elif kind == "env":
        vault.unlock_with_env_key(kit.ENV_KEY)
    else:
        vault.unlock_with_recovery(Secret(made.recovery))


def unlock_wrong(vault: Vault, kind: str, kit) -> None:  # type: ignore[no-untyped-def]
    if kind == "passphrase":
        vault.unlock_with_passphrase(Secret(kit.OTHER_PASSPHRASE))
    elif kind == "env":
        vault.unlock_with_env_key(kit.WRONG_ENV_KEY)
    else:
        vault.unlock_with_recovery(Secret(slot_kinds.new_recovery_code()))


@pytest.mark.parametrize("kind", ["passphrase", "env", "recovery"])
def test_right_secret_unlocks_and_reads_what_was_stored(kind: str, made, kit) -> None:
    Credentials(made.vault).add("k", Secret(CANARY))
    vault = reopen(made, kit)
    try:
        assert not vault.is_unlocked
        unlock_right(vault, kind, made, kit)
        assert vault.is_unlocked
        assert Credentials(vault).reveal("k").reveal_text() == CANARY
        unlock_entry = list(vault.audit.entries())[-2]
        assert (unlock_entry.operation, unlock_entry.outcome, unlock_entry.detail) == ("unlock", "ok", {"slot": kind})
    finally:
        vault.close()


@pytest.mark.parametrize(
    ("kind", "message"),
    [("passphrase", "wrong passphrase"), ("env", "AEGIS_VAULT_KEY does not open this vault"),
     ("recovery", "wrong recovery key")],
)
def test_wrong_secret_raises_unlock_error_and_stays_locked(kind: str, message: str, made, kit) -> None:
    vault = reopen(made, kit)
    try:
        with pytest.raises(UnlockError, match=message) as caught:
            unlock_wrong(vault, kind, kit)
        assert type(caught.value) is UnlockError
        assert "nothing was changed" in str(caught.value)
        assert not vault.is_unlocked
        with pytest.raises(UnlockError, match="locked"):
            _ = vault.keys
    finally:
        vault.close()


@pytest.mark.parametrize("kind", ["passphrase", "env", "recovery"])
def test_wrong_secret_changes_nothing_but_audits_one_failure(kind: str, made, kit) -> None:
    Credentials(made.vault).add("k", Secret(CANARY))
    vault = reopen(made, kit)
    try:
        before = kit.dump_tables(made.path)
        with pytest.raises(UnlockError):
            unlock_wrong(vault, kind, kit)
        after = kit.dump_tables(made.path)
        for table in ("meta", "slots", "credentials", "versions"):
            assert after[table] == before[table], table
        assert after["audit"][: len(before["audit"])] == before["audit"]
        assert len(after["audit"]) == len(before["audit"]) + 1

        entry = list(vault.audit.entries())[-1]
        assert (entry.operation, entry.outcome, entry.flagged) == ("unlock", "failed", True)
        assert entry.detail == {"slot": kind}
        assert entry.target == "vault" and not entry.sealed

        report = vault.audit.verify()
        assert report.ok, report.problems
        assert report.unsigned_tail == 1

        unlock_right(vault, "env", made, kit)  # the next unlock signs over the failure
        report = vault.audit.verify()
        assert report.ok and report.unsigned_tail == 0
    finally:
        vault.close()


def test_wrong_passphrase_is_not_written_anywhere(made, kit) -> None:
    vault = reopen(made, kit)
    wrong = "WRONG-passphrase-canary-5512"
    with pytest.raises(UnlockError):
        vault.unlock_with_passphrase(Secret(wrong))
    raw = b"".join(kit.file_bytes(made.path).values())
    vault.close()
    raw += b"".join(kit.file_bytes(made.path).values())
    assert wrong.encode() not in raw
    assert wrong.encode("utf-16-le") not in raw


def test_malformed_env_key_is_a_usage_error_and_writes_nothing(made, kit) -> None:
    vault = reopen(made, kit)
    try:
        before = kit.dump_tables(made.path)
        for bad in ("abc", "zz" * 32, kit.ENV_KEY + "00"):
            with pytest.raises(UsageError, match="64 hex characters"):
                vault.unlock_with_env_key(bad)
        assert kit.dump_tables(made.path) == before
    finally:
        vault.close()


@pytest.mark.parametrize("code", ["not a code", "ABCDE-FGHIJ", "11111-11111-11111-11111-11111-11111-11111-11111"])
def test_malformed_recovery_code_is_refused_as_not_a_recovery_key(code: str, made, kit) -> None:
    vault = reopen(made, kit)
    try:
        with pytest.raises(UnlockError, match="not a recovery key"):
            vault.unlock_with_recovery(Secret(code))
        assert not vault.is_unlocked
    finally:
        vault.close()


def test_recovery_code_is_accepted_in_lower_case_and_with_spaces(made, kit) -> None:
    vault = reopen(made, kit)
    try:
        vault.unlock_with_recovery(Secret("  " + made.recovery.lower().replace("-", " ") + "\n"))
        assert vault.is_unlocked
    finally:
        vault.close()


def test_unlocking_with_a_kind_the_vault_lacks_names_the_kinds_it_has(vault_path: Path, kit) -> None:
    made = kit.create_vault(vault_path, env=False)
    vault = reopen(made, kit)
    try:
        before = kit.dump_tables(made.path)
        with pytest.raises(UnlockError, match="no env unlock slot; it has: passphrase, recovery"):
            vault.unlock_with_env_key(kit.ENV_KEY)
        assert kit.dump_tables(made.path) == before
    finally:
        vault.close()


# -- locking --------------------------------------------------------------------------------------------------------
def test_lock_drops_the_keys(made) -> None:
    creds = Credentials(made.vault)
    creds.add("k", Secret(CANARY))
    assert made.vault.keys is not None
    made.vault.lock()
    assert not made.vault.is_unlocked
    with pytest.raises(UnlockError, match="locked"):
        _ = made.vault.keys
    with pytest.raises(UnlockError):
        creds.reveal("k")
    with pytest.raises(UnlockError):
        creds.add("other", Secret("v"))


def test_entries_written_after_lock_are_unsealed_and_unsigned(made, kit) -> None:
    made.vault.lock()
    with pytest.raises(UnlockError):
        made.vault.unlock_with_passphrase(Secret(kit.OTHER_PASSPHRASE))
    with kit.raw_db(made.path) as conn:
        sealed, record = conn.execute("SELECT sealed, record FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    assert sealed is None
    assert json.loads(record)["subject"] == {"target": "vault", "context": None, "detail": {"slot": "passphrase"}}
    assert made.vault.audit.verify().unsigned_tail == 1


def test_a_locked_vault_shows_sealed_audit_entries_without_their_subject(made, kit) -> None:
    Credentials(made.vault).add("secret-name-canary", Secret(CANARY))
    vault = reopen(made, kit)
    try:
        entry = list(vault.audit.entries())[-1]
        assert entry.operation == "add"
        assert entry.sealed and entry.target is None and entry.detail == {}
    finally:
        vault.close()


# -- slot management --------------------------------------------------------------------------------------------------
def test_added_passphrase_slot_unlocks_alongside_the_first(made, kit) -> None:
    slot_id, code = made.vault.add_slot(SlotKind.PASSPHRASE, passphrase=Secret(kit.OTHER_PASSPHRASE),
                                        kdf=kit.fast_kdf())
    assert code is None and slot_id in {info.id for info in made.vault.slots()}
    entry = list(made.vault.audit.entries())[-1]
    assert (entry.operation, entry.detail) == ("slot.add", {"slot": "passphrase", "slot_id": slot_id})
    for passphrase in (kit.PASSPHRASE, kit.OTHER_PASSPHRASE):
        vault = reopen(made, kit)
        vault.unlock_with_passphrase(Secret(passphrase))
        assert vault.is_unlocked
        made = made._replace(vault=vault)
    made.vault.close()


def test_added_env_slot_unlocks(vault_path: Path, kit) -> None:
    made = kit.create_vault(vault_path, env=False)
    made.vault.add_slot(SlotKind.ENV, env_key=kit.ENV_KEY)
    vault = reopen(made, kit)
    try:
        vault.unlock_with_env_key(kit.ENV_KEY)
        assert vault.is_unlocked
    finally:
        vault.close()


def test_added_recovery_slot_returns_a_new_code_that_unlocks(made, kit) -> None:
    _, code = made.vault.add_slot(SlotKind.RECOVERY)
    assert code is not None and RECOVERY_SHAPE.match(code) and code != made.recovery
    for recovery in (made.recovery, code):
        vault = reopen(made, kit)
        vault.unlock_with_recovery(Secret(recovery))
        assert vault.is_unlocked
        made = made._replace(vault=vault)
    made.vault.close()


def test_adding_a_slot_needs_an_unlocked_vault(made, kit) -> None:
    vault = reopen(made, kit)
    try:
        before = kit.dump_tables(made.path)
        with pytest.raises(UnlockError, match="locked"):
            vault.add_slot(SlotKind.ENV, env_key=kit.WRONG_ENV_KEY)
        assert kit.dump_tables(made.path) == before
    finally:
        vault.close()


def test_removed_slot_no_longer_unlocks(made, kit) -> None:
    env_slot = next(info.id for info in made.vault.slots() if info.kind is SlotKind.ENV)
    made.vault.remove_slot(env_slot)
    assert kinds(made.vault) == ["passphrase", "recovery"]
    entry = list(made.vault.audit.entries())[-1]
    assert (entry.operation, entry.detail) == ("slot.remove", {"slot": "env", "slot_id": env_slot})
    vault = reopen(made, kit)
    try:
        with pytest.raises(UnlockError, match="no env unlock slot"):
            vault.unlock_with_env_key(kit.ENV_KEY)
        vault.unlock_with_passphrase(Secret(kit.PASSPHRASE))
        assert vault.audit.verify().ok
    finally:
        vault.close()


def test_removing_an_unknown_slot_is_not_found(made, kit) -> None:
    before = kit.dump_tables(made.path)
    with pytest.raises(NotFoundError, match="no unlock slot"):
        made.vault.remove_slot("deadbeef")
    assert kit.dump_tables(made.path) == before


def test_removing_the_last_slot_is_refused(vault_path: Path, kit) -> None:
    made = kit.create_vault(vault_path, env=False)
    try:
        recovery = next(info.id for info in made.vault.slots() if info.kind is SlotKind.RECOVERY)
        made.vault.remove_slot(recovery)
        (last,) = made.vault.slots()
        before = kit.dump_tables(made.path)
        with pytest.raises(RefusedError, match="last unlock slot"):
            made.vault.remove_slot(last.id)
        assert kit.dump_tables(made.path) == before
        assert [info.id for info in made.vault.slots()] == [last.id]
    finally:
        made.vault.close()


def test_removing_a_slot_needs_an_unlocked_vault(made, kit) -> None:
    vault = reopen(made, kit)
    try:
        env_slot = next(info.id for info in vault.slots() if info.kind is SlotKind.ENV)
        before = kit.dump_tables(made.path)
        with pytest.raises(UnlockError, match="locked"):
            vault.remove_slot(env_slot)
        assert kit.dump_tables(made.path) == before
    finally:
        vault.close()


def test_slot_copied_from_another_vault_does_not_unlock(tmp_path: Path, kit) -> None:
    first = kit.create_vault(kit.private_dir(tmp_path, "a") / "vault.db", env=False)
    second = kit.create_vault(kit.private_dir(tmp_path, "b") / "vault.db", env=False)
    first.vault.close()
    second.vault.close()
    with kit.raw_db(first.path) as conn:
        foreign = conn.execute("SELECT * FROM slots WHERE kind = 'passphrase'").fetchone()
    with kit.raw_db(second.path) as conn:
        conn.execute("DELETE FROM slots WHERE kind = 'passphrase'")
        conn.execute("INSERT INTO slots VALUES (?, ?, ?, ?, ?, ?)", foreign)
    vault = Vault.open(second.path)
    try:
        with pytest.raises(UnlockError, match="wrong passphrase"):
            vault.unlock_with_passphrase(Secret(kit.PASSPHRASE))  # the right passphrase, the wrong vault
    finally:
        vault.close()


# -- changing the passphrase ---------------------------------------------------------------------------------------------
def test_change_passphrase_rewraps_only(made, kit) -> None:
    creds = Credentials(made.vault)
    creds.add("a", Secret(CANARY), notes="n")
    creds.add("b", Secret("second value"))
    creds.rotate("b", Secret("third value"))
    before = kit.dump_tables(made.path)

    made.vault.change_passphrase(Secret(kit.OTHER_PASSPHRASE), kit.fast_kdf())
    after = kit.dump_tables(made.path)
    assert after["credentials"] == before["credentials"]  # sealed bytes unchanged, byte for byte
    assert after["versions"] == before["versions"]
    changed = {row[0]: row for row in after["slots"]}
    unchanged = {row[0]: row for row in before["slots"]}
    assert changed.keys() == unchanged.keys()  # the passphrase slot keeps its id
    for slot_id, row in changed.items():
        if row[1] == "passphrase":
            assert row[4] != unchanged[slot_id][4] and row[3] != unchanged[slot_id][3]  # new wrap, new salt
        else:
            assert row == unchanged[slot_id]
    assert list(made.vault.audit.entries())[-1].operation == "passwd"

    vault = reopen(made, kit)
    try:
        with pytest.raises(UnlockError, match="wrong passphrase"):
            vault.unlock_with_passphrase(Secret(kit.PASSPHRASE))
        vault.unlock_with_passphrase(Secret(kit.OTHER_PASSPHRASE))
        assert Credentials(vault).reveal("a").reveal_text() == CANARY
        assert Credentials(vault).reveal("b", version=1).reveal_text() == "second value"
        vault.lock()
        vault.unlock_with_env_key(kit.ENV_KEY)  # other slots are untouched
        assert vault.audit.verify().ok
    finally:
        vault.close()


def test_change_passphrase_replaces_every_passphrase_slot_with_one(made, kit) -> None:
    made.vault.add_slot(SlotKind.PASSPHRASE, passphrase=Secret("third passphrase"), kdf=kit.fast_kdf())
    made.vault.change_passphrase(Secret(kit.OTHER_PASSPHRASE), kit.fast_kdf())
    assert kinds(made.vault) == ["env", "passphrase", "recovery"]
    vault = reopen(made, kit)
    try:
        for old in (kit.PASSPHRASE, "third passphrase"):
            with pytest.raises(UnlockError):
                vault.unlock_with_passphrase(Secret(old))
        vault.unlock_with_passphrase(Secret(kit.OTHER_PASSPHRASE))
    finally:
        vault.close()


# -- file permissions ------------------------------------------------------------------------------------------------------
def test_vault_file_readable_by_others_is_refused_with_the_fix(made, kit) -> None:
    made.vault.close()
    os.chmod(made.path, 0o644)
    before = made.path.read_bytes()
    with pytest.raises(VaultFileError, match="chmod 600") as caught:
        Vault.open(made.path)
    assert str(made.path) in str(caught.value) and "0644" in str(caught.value)
    assert made.path.read_bytes() == before
    os.chmod(made.path, 0o600)
    Vault.open(made.path).close()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o606])
def test_any_group_or_other_bit_on_the_file_is_refused(mode: int, made) -> None:
    made.vault.close()
    os.chmod(made.path, mode)
    with pytest.raises(VaultFileError, match="chmod 600"):
        Vault.open(made.path)


def test_vault_folder_open_to_others_is_refused_with_the_fix(made) -> None:
    made.vault.close()
    os.chmod(made.path.parent, 0o755)
    try:
        with pytest.raises(VaultFileError, match="chmod 700") as caught:
            Vault.open(made.path)
        assert str(made.path.parent) in str(caught.value)
    finally:
        os.chmod(made.path.parent, 0o700)
    Vault.open(made.path).close()


def test_a_shared_sqlite_companion_file_is_refused(made, kit) -> None:
    Credentials(made.vault).add("k", Secret(CANARY))
    wal = Path(f"{made.path}-wal")
    assert wal.exists()  # the vault is still open: its write-ahead log is live
    os.chmod(wal, 0o644)
    with pytest.raises(VaultFileError, match=f"chmod 600 {re.escape(str(wal))}"):
        Vault.open(made.path)


# -- the OS keyring slot, in a real subprocess on a private Secret Service -------------------------------------------------
_KEYRING_SCRIPT = """
import json, os, sys
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.crypto import new_kdf_params
from aegis_tui.core.errors import AegisError
from aegis_tui.core.secret import Secret
from aegis_tui.core.slots import KEYRING_SERVICE, SlotKind
from aegis_tui.core.vault import Vault

command, path, expected = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}

def keyring_user(vault):
    slot = next(s for s in vault.slots() if s.kind is SlotKind.KEYRING)
    return f"{vault.vault_id}/{slot.id}", slot.id

try:
    if command == "create":
        vault, _ = Vault.create(path, passphrase=Secret("kr-passphrase"),
                                kdf=new_kdf_params(memory_kib=8, iterations=1, lanes=1), use_keyring=True)
        Credentials(vault).add("k", Secret(expected))
        vault.close()
    elif command == "unlock":
        vault = Vault.open(path)
        vault.unlock_with_keyring()
        out["matches"] = Credentials(vault).reveal("k").reveal_text() == expected
        vault.close()
    elif command in ("replace-key", "forget-key", "key-present"):
        import keyring
        vault = Vault.open(path)
        user, _ = keyring_user(vault)
        if command == "replace-key":
            keyring.set_password(KEYRING_SERVICE, user, os.urandom(32).hex())
        elif command == "forget-key":
            keyring.delete_password(KEYRING_SERVICE, user)
        else:
            out["present"] = keyring.get_password(KEYRING_SERVICE, user) is not None
        vault.close()
    elif command == "remove-slot":
        import keyring
        vault = Vault.open(path)
        vault.unlock_with_passphrase(Secret("kr-passphrase"))
        user, slot_id = keyring_user(vault)
        vault.remove_slot(slot_id)
        out["present"] = keyring.get_password(KEYRING_SERVICE, user) is not None
        vault.close()
    out["ok"] = True
except AegisError as err:
    out.update(ok=False, error=type(err).__name__, message=str(err))
print(json.dumps(out))
"""


def run_keyring(command: str, path: Path, env: dict[str, str]) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KEYRING_SCRIPT), command, str(path), CANARY],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert CANARY not in result.stdout and CANARY not in result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def keyring_env(secret_service: dict[str, str], tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON_KEYRING", "AEGIS_"))}
    env.update(secret_service)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # no keyringrc.cfg choosing another backend
    return env


@pytest.fixture
def keyring_vault(keyring_env: dict[str, str], vault_path: Path) -> Path:
    created = run_keyring("create", vault_path, keyring_env)
    assert created == {"ok": True}
    return vault_path


@pytest.mark.keyring
def test_keyring_slot_unlocks_in_a_session_with_the_secret_service(keyring_vault: Path, keyring_env) -> None:
    vault = Vault.open(keyring_vault)
    try:
        assert kinds(vault) == ["keyring", "passphrase", "recovery"]
        assert next(i.detail for i in vault.slots() if i.kind is SlotKind.KEYRING) == "service aegis-vault"
        vault.unlock_with_passphrase(Secret("kr-passphrase"))  # the same data key behind both slots
        assert Credentials(vault).reveal("k").reveal_text() == CANARY
    finally:
        vault.close()
    assert run_keyring("unlock", keyring_vault, keyring_env) == {"ok": True, "matches": True}
    vault = Vault.open(keyring_vault)
    try:
        vault.unlock_with_passphrase(Secret("kr-passphrase"))
        unlocks = [(e.outcome, e.detail) for e in vault.audit.entries() if e.operation == "unlock"]
        assert unlocks[-3:] == [("ok", {"slot": "passphrase"}), ("ok", {"slot": "keyring"}),
                                ("ok", {"slot": "passphrase"})]
        assert vault.audit.verify().ok
    finally:
        vault.close()


@pytest.mark.keyring
def test_wrong_key_in_the_keyring_is_an_unlock_failure_audited_once(keyring_vault: Path, keyring_env,
                                                                    kit) -> None:
    assert run_keyring("replace-key", keyring_vault, keyring_env)["ok"]
    before = kit.dump_tables(keyring_vault)
    result = run_keyring("unlock", keyring_vault, keyring_env)
    assert result["ok"] is False and result["error"] == "UnlockError"
    assert "does not open this vault" in str(result["message"])
    after = kit.dump_tables(keyring_vault)
    assert {t: after[t] for t in ("meta", "slots", "credentials", "versions")} == {
        t: before[t] for t in ("meta", "slots", "credentials", "versions")}
    assert len(after["audit"]) == len(before["audit"]) + 1
    vault = Vault.open(keyring_vault)
    try:
        entry = list(vault.audit.entries())[-1]
        assert (entry.operation, entry.outcome, entry.detail) == ("unlock", "failed", {"slot": "keyring"})
        assert vault.audit.verify().ok
    finally:
        vault.close()


@pytest.mark.keyring
def test_missing_keyring_entry_says_so_and_names_the_other_slots(keyring_vault: Path, keyring_env) -> None:
    assert run_keyring("forget-key", keyring_vault, keyring_env)["ok"]
    result = run_keyring("unlock", keyring_vault, keyring_env)
    assert result["ok"] is False and result["error"] == "KeyringUnavailableError"
    assert "has no key for this vault" in str(result["message"])
    assert "other unlock slots: passphrase, recovery" in str(result["message"])
    vault = Vault.open(keyring_vault)
    try:
        entry = list(vault.audit.entries())[-1]
        assert (entry.operation, entry.outcome) == ("unlock", "failed")
        assert entry.detail == {"slot": "keyring", "reason": "keyring unavailable"}
    finally:
        vault.close()


@pytest.mark.keyring
def test_removing_the_keyring_slot_deletes_its_keyring_entry(keyring_vault: Path, keyring_env) -> None:
    assert run_keyring("key-present", keyring_vault, keyring_env) == {"ok": True, "present": True}
    assert run_keyring("remove-slot", keyring_vault, keyring_env) == {"ok": True, "present": False}
    vault = Vault.open(keyring_vault)
    try:
        assert kinds(vault) == ["passphrase", "recovery"]
    finally:
        vault.close()


def test_keyring_slot_without_a_secret_service_is_refused_and_leaves_no_vault(tmp_path: Path, vault_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON_KEYRING", "AEGIS_"))}
    env.update(DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path}/no-such-bus", HOME=str(tmp_path),
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_RUNTIME_DIR=str(tmp_path))
    result = run_keyring("create", vault_path, env)
    assert result["ok"] is False and result["error"] == "KeyringUnavailableError"
    assert list(vault_path.parent.iterdir()) == []


def test_unlock_refuses_a_vault_whose_audit_public_key_was_replaced(tmp_path) -> None:
    """An attacker who swaps the clear public key (to re-sign a rewritten log) is caught on unlock."""
    import sqlite3

    from aegis_tui.core.crypto import new_kdf_params, new_signing_key
    from aegis_tui.core.errors import IntegrityError
    from aegis_tui.core.secret import Secret
    from aegis_tui.core.vault import Vault

    path = tmp_path / "v" / "vault.db"
    vault, _ = Vault.create(path, passphrase=Secret("pw"), kdf=new_kdf_params(8, 1, 1))
    vault.close()
    _, attacker_public = new_signing_key()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'audit_public_key'", (attacker_public.hex(),))
    reopened = Vault.open(path)
    with pytest.raises(IntegrityError, match="public key"):
        reopened.unlock_with_passphrase(Secret("pw"))
    assert not reopened.is_unlocked
    reopened.close()
