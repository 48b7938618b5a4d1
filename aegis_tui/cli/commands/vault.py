"""``init``, ``passwd``, ``slots``, ``status``, ``keygen``: the vault itself."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

from aegis_tui.cli.render import emit, emit_json, table, timestamp
from aegis_tui.cli.terminal import err, prompt_new_secret, read_stdin_secret
from aegis_tui.cli.unlock import open_unlocked, open_vault, unlock
from aegis_tui.core.paths import take_env_key
from aegis_tui.core.crypto import KdfParams, calibrate_kdf, new_kdf_params
from aegis_tui.core.errors import UsageError
from aegis_tui.core.paths import vault_path
from aegis_tui.core.secret import Secret
from aegis_tui.core.slots import ENV_KEY_VARIABLE, SlotKind, env_slot_key, new_env_key
from aegis_tui.core.summary import iso

# Tests and throwaway demo vaults only: a KDF this cheap offers no protection against
# guessing. It is announced on stderr each time and shows in `slots list`.
_INSECURE_KDF_VARIABLE = "AEGIS_VAULT_INSECURE_FAST_KDF"


def _kdf() -> KdfParams:
    if os.environ.get(_INSECURE_KDF_VARIABLE) == "1":
        err(f"aegis-vault: warning: {_INSECURE_KDF_VARIABLE}=1: the passphrase is protected by a "
            "deliberately weak key derivation (tests and demos only)")
        return new_kdf_params(memory_kib=8, iterations=1, lanes=1)
    return calibrate_kdf()


def _new_passphrase(from_stdin: bool) -> Secret:
    if from_stdin:
        return read_stdin_secret("passphrase")
    passphrase = prompt_new_secret("New vault passphrase")
    if passphrase is None:
        raise UsageError("no terminal to ask for a passphrase; use --passphrase-stdin (or --no-passphrase with "
                         f"{ENV_KEY_VARIABLE} or --keyring)")
    return passphrase


def init(args: argparse.Namespace) -> int:
    from aegis_tui.core.vault import Vault

    path = vault_path()
    env_key = take_env_key() or None
    if env_key is not None:
        env_slot_key(env_key)  # validate before anything is created
    if args.no_passphrase and args.passphrase_stdin:
        raise UsageError("--no-passphrase and --passphrase-stdin contradict each other")
    if args.no_passphrase and env_key is None and not args.keyring:
        raise UsageError(f"--no-passphrase needs {ENV_KEY_VARIABLE} set or --keyring, or the vault could not be opened")
    if os.path.exists(path):
        raise UsageError(f"a vault already exists at {path}; nothing was changed")
    passphrase = None if args.no_passphrase else _new_passphrase(args.passphrase_stdin)
    kdf = _kdf() if passphrase is not None else None
    vault, code = Vault.create(path, passphrase=passphrase, kdf=kdf, env_key=env_key, use_keyring=args.keyring)
    with vault:
        slots = ", ".join(str(slot.kind) for slot in vault.slots())
    err(f"created vault {path} with unlock slots: {slots}")
    sys.stdout.write(
        "Recovery key (shown once; store it offline, it opens the vault if every other way is lost):\n"
        f"  {code}\n"
    )
    return 0


def passwd(args: argparse.Namespace) -> int:
    with open_unlocked(args) as vault:
        vault.change_passphrase(_new_passphrase(args.new_passphrase_stdin), _kdf())
    err("passphrase changed; the data key was rewrapped, no credential was re-encrypted")
    return 0


def slots_list(args: argparse.Namespace) -> int:
    with open_vault() as vault:
        slots = vault.slots()
    emit(table(["ID", "KIND", "CREATED", "DETAIL"],
               [[s.id, str(s.kind), timestamp(s.created_at), s.detail] for s in slots]))
    return 0


def slots_add(args: argparse.Namespace) -> int:
    kind = SlotKind(args.kind)
    with open_unlocked(args) as vault:
        if kind is SlotKind.PASSPHRASE:
            slot_id, code = vault.add_slot(kind, passphrase=_new_passphrase(args.new_passphrase_stdin), kdf=_kdf())
        elif kind is SlotKind.ENV:
            given = take_env_key()  # unlocking took it out of os.environ
            key = given or new_env_key()
            slot_id, code = vault.add_slot(kind, env_key=key)
            if not given:
                sys.stdout.write(f"{ENV_KEY_VARIABLE}={key}\n")
                err(f"aegis-vault: store this {ENV_KEY_VARIABLE} like a password; it is shown once")
        else:
            slot_id, code = vault.add_slot(kind)
    if code:
        sys.stdout.write(f"Recovery key (shown once; store it offline):\n  {code}\n")
    err(f"added {kind} slot {slot_id}")
    return 0


def slots_remove(args: argparse.Namespace) -> int:
    with open_unlocked(args) as vault:
        vault.remove_slot(args.slot_id)
    err(f"removed slot {args.slot_id}")
    return 0


def status(args: argparse.Namespace) -> int:
    """Works locked; adds counts when it can unlock without asking anyone."""
    from aegis_tui.core.credentials import Credentials

    with open_vault() as vault:
        last = vault.store.last_audit()
        info: dict[str, object] = {
            "vault": str(vault_path()),
            "vault_id": vault.vault_id,
            "schema": getattr(vault.store, "schema_version", None),
            "slots": [str(s.kind) for s in vault.slots()],
            "audit_entries": 0 if last is None else last.seq,
            "unlocked": False,
        }
        if unlock(vault, args, prompt=False):
            found = Credentials(vault).list()
            info["unlocked"] = True
            info["credentials"] = len(found)
            info["by_status"] = dict(Counter(str(c.status) for c in found))
            now = vault.clock()
            info["rotation"] = dict(Counter(str(c.rotation(now)[0]) for c in found))
            info["checked_at"] = iso(now)
    info["broker"] = broker_status()
    if args.json:
        emit_json(info)
        return 0
    for key, value in info.items():
        text = ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else (
            ", ".join(value) if isinstance(value, list) else str(value))
        emit(f"{key:<14} {text}")
    return 0


def broker_status() -> str:
    """Whether a broker serves this vault, asked of the broker itself."""
    from aegis_tui.core.broker.client import BrokerClient

    try:
        client = BrokerClient.connect(str(vault_path()))
        if client is None:
            return "not running"
        with client:
            hello = client.call("hello", timeout=5)
    except Exception as error:  # noqa: BLE001 - status reports, it does not fail
        return f"unreachable ({type(error).__name__})"
    pending = f", {hello['pending']} pending" if hello.get("pending") else ""
    return f"running ({hello.get('mode')}{pending})"


def keygen(args: argparse.Namespace) -> int:
    sys.stdout.write(new_env_key() + "\n")
    return 0
