"""A vault: one store, its unlock slots, its keys while unlocked, and its audit log.

Envelope encryption: a random 256-bit data key never touches the disk in clear. Each
unlock slot wraps it. From the data key, HKDF derives the sealing key (AES-256-GCM for
every sealed field) and the blind-index key (HMAC of names for lookups). The audit
signing key is sealed in ``meta``; its public half is in clear so anyone holding the
file can verify the log offline.

Every unlock attempt is audited, also a failed one (chained, unsigned, naming only the
slot kind). Locking drops every key reference this object holds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
import os

from aegis_tui.core import slots as slot_kinds
from aegis_tui.core.actor import Actor, current_actor
from aegis_tui.core.audit import PUBLIC_KEY_META_KEY, AuditLog, Outcome, Risk
from aegis_tui.core.crypto import (
    KdfParams,
    SealingKey,
    Signer,
    associated_data,
    derive_subkey,
    new_key,
    new_signing_key,
    random_hex,
)
from aegis_tui.core.errors import (
    AegisError,
    IntegrityError,
    NotFoundError,
    RefusedError,
    UnlockError,
    UsageError,
    VaultFileError,
)
from aegis_tui.core.secret import Secret
from aegis_tui.core.slots import KeyringUnavailableError, SlotInfo, SlotKind
from aegis_tui.core.store.base import SlotRecord, StoreBackend
from aegis_tui.core.store.sqlite import SqliteStore

_SIGNING_KEY_META = "audit_private_key"


class VaultKeys:
    """The keys of an unlocked vault. Held by reference only; dropped on lock."""

    __slots__ = ("data_key", "sealer", "index_key")

    def __init__(self, data_key: bytes) -> None:
        self.data_key = data_key
        self.sealer = SealingKey(derive_subkey(data_key, "seal"))
        self.index_key = derive_subkey(data_key, "index")

    def __repr__(self) -> str:
        return "VaultKeys(<hidden>)"


class Vault:
    """An open vault file. Locked until an ``unlock_*`` call succeeds."""

    def __init__(self, store: StoreBackend, *, clock: Callable[[], float] = time.time, actor: Actor | None = None) -> None:
        self.store = store
        self.clock = clock
        self.actor = actor or current_actor()
        vault_id = store.get_meta("vault_id")
        if vault_id is None:
            raise VaultFileError("the vault file has no vault id: it is damaged")
        self.vault_id = vault_id
        self.audit = AuditLog(store, vault_id, clock)
        self._keys: VaultKeys | None = None

    # -- lifecycle ------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time, actor: Actor | None = None) -> Vault:
        return cls(SqliteStore.open(path), clock=clock, actor=actor)

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        passphrase: Secret | None,
        kdf: KdfParams | None,
        env_key: str | None = None,
        use_keyring: bool = False,
        clock: Callable[[], float] = time.time,
        actor: Actor | None = None,
    ) -> tuple[Vault, str]:
        """A new vault with the asked-for slots plus a recovery slot; returns its code.

        Nothing is left behind if any step fails (a keyring refusal, say).
        """
        if passphrase is None and env_key is None and not use_keyring:
            raise UnlockError("a vault needs at least one unlock method: a passphrase, AEGIS_VAULT_KEY or the keyring")
        if passphrase is not None and kdf is None:  # else the passphrase slot would silently be missing
            raise UsageError("a passphrase slot needs key-derivation parameters (kdf)")
        store = SqliteStore.create(path)
        try:
            now = clock()
            with store.transaction():
                store.set_meta("vault_id", random_hex(16))
                store.set_meta("created_at", repr(now))
            vault = cls(store, clock=clock, actor=actor)
            data_key = new_key()
            vault._keys = VaultKeys(data_key)
            private_raw, public_raw = new_signing_key()
            with store.transaction():
                store.set_meta(PUBLIC_KEY_META_KEY, public_raw.hex())
                sealed = vault._keys.sealer.seal(private_raw, vault._signing_aad())
                store.set_meta(_SIGNING_KEY_META, sealed.hex())
                vault.audit.attach_keys(vault._keys.sealer, Signer(private_raw))
                if passphrase is not None and kdf is not None:
                    vault._put_slot(SlotKind.PASSPHRASE, "passphrase", passphrase=passphrase, kdf=kdf)
                if env_key is not None:
                    vault._put_slot(SlotKind.ENV, "environment key", env_key=env_key)
                if use_keyring:
                    vault._put_slot(SlotKind.KEYRING, "OS keyring")
                code = slot_kinds.new_recovery_code()
                vault._put_slot(SlotKind.RECOVERY, "recovery key", recovery=Secret(code))
                vault.audit.append(
                    "init", vault.actor, risk=Risk.MEDIUM, target="vault",
                    detail={"slots": [slot.kind for slot in store.list_slots()]},
                )
        except BaseException:
            store.close()
            SqliteStore.remove_files(path)
            raise
        return vault, code

    def close(self) -> None:
        self.lock()
        self.store.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def is_unlocked(self) -> bool:
        return self._keys is not None

    @property
    def keys(self) -> VaultKeys:
        if self._keys is None:
            raise UnlockError("the vault is locked")
        return self._keys

    def lock(self) -> None:
        self._keys = None
        self.audit.attach_keys(None, None)

    def _signing_aad(self) -> bytes:
        return associated_data(self.vault_id, "meta", _SIGNING_KEY_META, 1)

    # -- unlocking -----------------------------------------------------------------------
    def slots(self) -> list[SlotInfo]:
        return [slot_kinds.describe(slot) for slot in self.store.list_slots()]

    def has_slot(self, kind: SlotKind) -> bool:
        return any(slot.kind == kind for slot in self.store.list_slots())

    def unlock_with_passphrase(self, passphrase: Secret) -> None:
        self._unlock(SlotKind.PASSPHRASE, lambda slot: slot_kinds.passphrase_slot_key(
            passphrase, KdfParams.from_dict(json.loads(slot.params))), "wrong passphrase")

    def unlock_with_env_key(self, raw_hex: str) -> None:
        key = slot_kinds.env_slot_key(raw_hex)
        self._unlock(SlotKind.ENV, lambda slot: key, f"{slot_kinds.ENV_KEY_VARIABLE} does not open this vault")

    def unlock_with_recovery(self, code: Secret) -> None:
        key = slot_kinds.recovery_slot_key(code)
        self._unlock(SlotKind.RECOVERY, lambda slot: key, "wrong recovery key")

    def unlock_with_keyring(self) -> None:
        def key_for(slot: SlotRecord) -> bytes:
            return slot_kinds.load_keyring_key(self.vault_id, slot.id)

        self._unlock(SlotKind.KEYRING, key_for, "the OS keyring key does not open this vault")

    def _unlock(self, kind: SlotKind, key_for: Callable[[SlotRecord], bytes], failure: str) -> None:
        candidates = [slot for slot in self.store.list_slots() if slot.kind == kind]
        if not candidates:
            raise UnlockError(f"this vault has no {kind} unlock slot; it has: {self._slot_summary()}")
        data_key = None
        try:
            for slot in candidates:
                data_key = slot_kinds.unwrap(slot, self.vault_id, key_for(slot))
                if data_key is not None:
                    break
        except KeyringUnavailableError as err:
            self.audit.append("unlock", self.actor, outcome=Outcome.FAILED, risk=Risk.MEDIUM,
                              target="vault", detail={"slot": kind, "reason": "keyring unavailable"})
            raise KeyringUnavailableError(f"{err}; other unlock slots: {self._slot_summary(exclude=kind)}") from None
        if data_key is None:
            self.audit.append("unlock", self.actor, outcome=Outcome.FAILED, risk=Risk.HIGH,
                              target="vault", detail={"slot": kind})
            raise UnlockError(f"{failure}; nothing was changed")
        self._adopt(data_key)
        # Signed with the freshly opened key: also covers entries written while locked.
        self.audit.append("unlock", self.actor, target="vault", detail={"slot": kind})

    def _adopt(self, data_key: bytes) -> None:
        keys = VaultKeys(data_key)
        sealed = self.store.get_meta(_SIGNING_KEY_META)
        if sealed is None:
            raise VaultFileError("the vault has no audit key: it is damaged")
        signer = Signer(keys.sealer.open(bytes.fromhex(sealed), self._signing_aad(), "the audit signing key"))
        # The public key is stored in clear for offline checks; an attacker who swaps it
        # (and re-signs a rewritten log) is caught here, the first time anyone unlocks.
        if self.store.get_meta(PUBLIC_KEY_META_KEY) != signer.public_raw().hex():
            raise IntegrityError("the audit public key in the vault file was replaced: the audit log cannot be trusted")
        self._keys = keys
        self.audit.attach_keys(keys.sealer, signer)

    def _slot_summary(self, exclude: SlotKind | None = None) -> str:
        kinds = sorted({str(slot.kind) for slot in self.store.list_slots() if slot.kind != exclude})
        return ", ".join(kinds) or "none"

    # -- slot management (unlocked) -------------------------------------------------------
    def _put_slot(
        self,
        kind: SlotKind,
        label: str,
        *,
        slot_id: str | None = None,
        passphrase: Secret | None = None,
        kdf: KdfParams | None = None,
        env_key: str | None = None,
        recovery: Secret | None = None,
    ) -> str:
        slot_id = slot_id or slot_kinds.new_slot_id()
        if kind is SlotKind.PASSPHRASE:
            if passphrase is None or kdf is None:
                raise UsageError("a passphrase slot needs a passphrase and key-derivation parameters")
            slot_key = slot_kinds.passphrase_slot_key(passphrase, kdf)
        elif kind is SlotKind.ENV:
            if env_key is None:
                raise UsageError(f"an environment slot needs {slot_kinds.ENV_KEY_VARIABLE}")
            slot_key = slot_kinds.env_slot_key(env_key)
        elif kind is SlotKind.RECOVERY:
            if recovery is None:
                raise UsageError("a recovery slot needs its recovery code")
            slot_key = slot_kinds.recovery_slot_key(recovery)
        else:
            slot_key = slot_kinds.store_keyring_key(self.vault_id, slot_id)
        wrapped = slot_kinds.wrap(slot_id, kind, self.vault_id, slot_key, self.keys.data_key)
        params = slot_kinds.slot_params(kind, kdf if kind is SlotKind.PASSPHRASE else None)
        self.store.put_slot(SlotRecord(slot_id, kind, label, params, wrapped, self.clock()))
        return slot_id

    def add_slot(
        self,
        kind: SlotKind,
        *,
        passphrase: Secret | None = None,
        kdf: KdfParams | None = None,
        env_key: str | None = None,
    ) -> tuple[str, str | None]:
        """Add a slot; returns (slot id, recovery code if one was made)."""
        code = slot_kinds.new_recovery_code() if kind is SlotKind.RECOVERY else None
        labels = {SlotKind.PASSPHRASE: "passphrase", SlotKind.KEYRING: "OS keyring",
                  SlotKind.ENV: "environment key", SlotKind.RECOVERY: "recovery key"}
        with self.store.transaction():
            slot_id = self._put_slot(kind, labels[kind], passphrase=passphrase, kdf=kdf, env_key=env_key,
                                     recovery=Secret(code) if code else None)
            self.audit.append("slot.add", self.actor, risk=Risk.HIGH, target="vault",
                              detail={"slot": kind, "slot_id": slot_id})
        return slot_id, code

    def remove_slot(self, slot_id: str) -> None:
        records = self.store.list_slots()
        match = [slot for slot in records if slot.id == slot_id]
        if not match:
            raise NotFoundError(f"no unlock slot with id {slot_id!r}; see: aegis-vault slots list")
        if len(records) == 1:
            raise RefusedError("that is the vault's last unlock slot; add another before removing it")
        _ = self.keys  # removing a slot is a change: only an unlocked vault may do it
        with self.store.transaction():
            self.store.delete_slot(slot_id)
            self.audit.append("slot.remove", self.actor, risk=Risk.HIGH, target="vault",
                              detail={"slot": match[0].kind, "slot_id": slot_id})
        if match[0].kind == SlotKind.KEYRING:
            try:
                slot_kinds.delete_keyring_key(self.vault_id, slot_id)
            except AegisError:
                pass  # the slot is gone from the vault; a stale keyring entry opens nothing

    def change_passphrase(self, passphrase: Secret, kdf: KdfParams) -> None:
        """Rewrap the data key under a new passphrase; replaces every passphrase slot."""
        old = [slot for slot in self.store.list_slots() if slot.kind == SlotKind.PASSPHRASE]
        with self.store.transaction():
            self._put_slot(SlotKind.PASSPHRASE, "passphrase", slot_id=old[0].id if old else None,
                           passphrase=passphrase, kdf=kdf)
            for extra in old[1:]:
                self.store.delete_slot(extra.id)
            self.audit.append("passwd", self.actor, risk=Risk.HIGH, target="vault", detail={"slot": "passphrase"})
