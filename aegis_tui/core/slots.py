"""Unlock slots, LUKS-style: each one wraps the same data key under its own key.

- ``passphrase``: Argon2id of the passphrase (parameters stored with the slot).
- ``keyring``: a random key kept in the OS keyring (Secret Service, Keychain, ...).
- ``env``: the 256-bit key in ``AEGIS_VAULT_KEY``, for CI and daemons.
- ``recovery``: a random key shown once at creation, for when all else is lost.

Adding or removing a slot, or changing a passphrase, rewraps the data key only; no
credential is re-encrypted. A wrapped key opens only in its own vault and slot
(associated data), so slots cannot be moved between vaults.
"""

from __future__ import annotations

import base64
import json
from typing import NamedTuple
from enum import StrEnum

from aegis_tui.core.paths import ENV_KEY_VARIABLE
from aegis_tui.core.crypto import (
    KdfParams,
    SealingKey,
    associated_data,
    derive_passphrase_key,
    derive_subkey,
    random_bytes,
    random_hex,
)
from aegis_tui.core.errors import UnlockError, UsageError
from aegis_tui.core.secret import Secret
from aegis_tui.core.store.base import SlotRecord

KEYRING_SERVICE = "aegis-vault"
_RECOVERY_BYTES = 25  # 200 bits: 40 base32 characters, 8 groups of 5


class SlotKind(StrEnum):
    PASSPHRASE = "passphrase"
    KEYRING = "keyring"
    ENV = "env"
    RECOVERY = "recovery"


class KeyringUnavailableError(UnlockError):
    """The OS keyring could not hand over the slot key (locked, absent, refused)."""


class SlotInfo(NamedTuple):
    """What ``slots list`` shows: never a key, never a salt."""

    id: str
    kind: SlotKind
    label: str
    created_at: float
    detail: str


def new_slot_id() -> str:
    return random_hex(4)


def wrap(record_id: str, kind: SlotKind, vault_id: str, slot_key: bytes, data_key: bytes) -> bytes:
    return SealingKey(slot_key).seal(data_key, associated_data(vault_id, "slots", record_id, kind))


def unwrap(slot: SlotRecord, vault_id: str, slot_key: bytes) -> bytes | None:
    """The data key, or ``None`` when this slot key is not the right one."""
    from aegis_tui.core.errors import IntegrityError

    try:
        return SealingKey(slot_key).open(slot.wrapped, associated_data(vault_id, "slots", slot.id, slot.kind))
    except IntegrityError:
        return None


def passphrase_slot_key(passphrase: Secret, params: KdfParams) -> bytes:
    return derive_passphrase_key(passphrase.reveal(), params)


def env_slot_key(raw_hex: str) -> bytes:
    """``AEGIS_VAULT_KEY`` is 64 hex characters (256 bits) of real randomness."""
    text = raw_hex.strip()
    if len(text) != 64:
        raise UsageError(f"{ENV_KEY_VARIABLE} must be 64 hex characters (256 bits); generate one with: aegis-vault keygen")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise UsageError(f"{ENV_KEY_VARIABLE} must be 64 hex characters (256 bits)") from None
    return derive_subkey(raw, "slot/env")


def new_env_key() -> str:
    return random_hex(32)


def new_recovery_code() -> str:
    """A code a person can copy from paper: AAAAA-BBBBB-... (base32, no padding)."""
    text = base64.b32encode(random_bytes(_RECOVERY_BYTES)).decode()
    return "-".join(text[i : i + 5] for i in range(0, len(text), 5))


def recovery_slot_key(code: Secret) -> bytes:
    text = code.reveal_text().strip().upper().replace("-", "").replace(" ", "")
    try:
        raw = base64.b32decode(text)
    except ValueError:
        raise UnlockError("that is not a recovery key (expected groups like ABCDE-FGHIJ-...)") from None
    if len(raw) != _RECOVERY_BYTES:
        raise UnlockError("that is not a recovery key (wrong length)")
    return derive_subkey(raw, "slot/recovery")


# -- the OS keyring -----------------------------------------------------------------------
def _keyring_username(vault_id: str, slot_id: str) -> str:
    return f"{vault_id}/{slot_id}"


def _keyring_module():  # type: ignore[no-untyped-def]
    """Imported only when a keyring slot is used: keyring costs ~90 ms to import."""
    import keyring
    import keyring.errors

    return keyring


def _describe_keyring_failure(err: Exception) -> str:
    import keyring.errors

    if isinstance(err, keyring.errors.KeyringLocked):
        return "the OS keyring is locked"
    if isinstance(err, keyring.errors.NoKeyringError):
        return "no OS keyring is available"
    if isinstance(err, keyring.errors.InitError):
        return "the OS keyring refused access"
    return f"the OS keyring failed ({type(err).__name__})"


def _check_secure_backend(keyring_module) -> None:  # type: ignore[no-untyped-def]
    backend = keyring_module.get_keyring()
    module = type(backend).__module__
    if module.startswith("keyrings.alt") or module.startswith("keyring.backends.fail"):
        raise KeyringUnavailableError(
            f"no secure OS keyring is available (found {type(backend).__name__}); "
            "use a passphrase or AEGIS_VAULT_KEY instead"
        )


def store_keyring_key(vault_id: str, slot_id: str) -> bytes:
    """Create a random slot key in the OS keyring; return the derived slot key."""
    keyring = _keyring_module()
    raw = random_bytes(32)
    try:
        _check_secure_backend(keyring)
        keyring.set_password(KEYRING_SERVICE, _keyring_username(vault_id, slot_id), raw.hex())
    except keyring.errors.KeyringError as err:
        raise KeyringUnavailableError(_describe_keyring_failure(err)) from None
    return derive_subkey(raw, "slot/keyring")


def load_keyring_key(vault_id: str, slot_id: str) -> bytes:
    keyring = _keyring_module()
    try:
        _check_secure_backend(keyring)
        stored = keyring.get_password(KEYRING_SERVICE, _keyring_username(vault_id, slot_id))
    except KeyringUnavailableError:
        raise  # already says what is wrong (no secure backend)
    except keyring.errors.KeyringError as err:
        raise KeyringUnavailableError(_describe_keyring_failure(err)) from None
    except Exception as err:  # D-Bus errors surface as their own types
        raise KeyringUnavailableError(f"the OS keyring failed ({type(err).__name__})") from None
    if stored is None:
        raise KeyringUnavailableError("the OS keyring has no key for this vault (it was removed or this is another machine)")
    try:
        return derive_subkey(bytes.fromhex(stored), "slot/keyring")
    except ValueError:
        raise KeyringUnavailableError("the key stored in the OS keyring is malformed") from None


def delete_keyring_key(vault_id: str, slot_id: str) -> None:
    keyring = _keyring_module()
    try:
        keyring.delete_password(KEYRING_SERVICE, _keyring_username(vault_id, slot_id))
    except keyring.errors.PasswordDeleteError:
        pass
    except keyring.errors.KeyringError as err:
        raise KeyringUnavailableError(_describe_keyring_failure(err)) from None


def slot_params(kind: SlotKind, kdf: KdfParams | None = None) -> str:
    return json.dumps(kdf.to_dict() if kdf is not None else {})


def describe(slot: SlotRecord) -> SlotInfo:
    detail = ""
    if slot.kind == SlotKind.PASSPHRASE:
        kdf = KdfParams.from_dict(json.loads(slot.params))
        memory = f"{kdf.memory_kib // 1024} MiB" if kdf.memory_kib >= 1024 else f"{kdf.memory_kib} KiB (weak: tests only)"
        detail = f"argon2id m={memory} t={kdf.iterations} p={kdf.lanes}"
    elif slot.kind == SlotKind.KEYRING:
        detail = f"service {KEYRING_SERVICE}"
    elif slot.kind == SlotKind.ENV:
        detail = f"${ENV_KEY_VARIABLE}"
    return SlotInfo(slot.id, SlotKind(slot.kind), slot.label, slot.created_at, detail)
