"""Every cryptographic choice aegis-vault makes, in one place.

The rest of the code base sees only ``seal``/``open`` (AES-256-GCM with associated
data), ``derive_*`` and ``hkdf_sha256`` (HKDF-SHA256 for sub-keys, Argon2id for
passphrases), a keyed blind index and message tags (HMAC-SHA256), the audit chain hash
(SHA-256) and Ed25519 signatures. All of it comes from ``cryptography``. Changing an
algorithm or a parameter happens here and nowhere else.

Randomness: every key, nonce and id comes from ``random_bytes`` below, which reads the
operating system's CSPRNG through ``os.urandom`` — exactly what ``secrets.token_bytes``
does. We call it directly because importing ``secrets`` (and the stdlib ``hashlib`` /
``hmac``) loads a second copy of OpenSSL, which costs ~4 ms on every CLI call that
agents make in loops. Hashing and HMAC likewise come from ``cryptography``. The
``random`` module is never used for anything secret.

Blob format: ``0x01 || nonce (12 bytes) || ciphertext || tag (16 bytes)``. Nonces are
random; one data key seals far fewer than the 2^32 messages where that would matter.
"""

from __future__ import annotations

import os
import struct
import time
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aegis_tui.core.errors import IntegrityError

KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_BLOB_VERSION = b"\x01"
_MIN_BLOB = 1 + _NONCE_BYTES + _TAG_BYTES
_LENGTH = struct.Struct(">I").pack


def random_bytes(count: int) -> bytes:
    """Bytes from the OS CSPRNG (the source ``secrets`` uses; see the module docstring)."""
    return os.urandom(count)


def random_hex(count: int) -> str:
    """``count`` random bytes as hex: ids, salts."""
    return os.urandom(count).hex()


def random_token(count: int) -> str:
    """``count`` random bytes as url-safe base64 without padding: bearer tokens."""
    import base64

    return base64.urlsafe_b64encode(os.urandom(count)).rstrip(b"=").decode()


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return random_bytes(KEY_BYTES)


def associated_data(*parts: str | int) -> bytes:
    """Bind a blob to where it lives: vault id, table, row id, field, version.

    Parts are length-prefixed so that no two different part lists encode the same.
    """
    return extend_associated_data(b"aegis/v1", *parts)


def extend_associated_data(prefix: bytes, *parts: str | int) -> bytes:
    """``associated_data(a, b, c) == extend_associated_data(associated_data(a, b), c)``:
    callers sealing many rows of one table compute the constant prefix once."""
    out = [prefix]
    for part in parts:
        raw = str(part).encode("utf-8")
        out += (_LENGTH(len(raw)), raw)
    return b"".join(out)


class SealingKey:
    """AES-256-GCM under one key. ``open`` raises ``IntegrityError``, never returns junk."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("sealing keys are 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SealingKey(<hidden>)"

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = random_bytes(_NONCE_BYTES)
        return _BLOB_VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes, what: str = "sealed field") -> bytes:
        if len(blob) < _MIN_BLOB or blob[:1] != _BLOB_VERSION:
            raise IntegrityError(f"{what} is malformed: the vault file is damaged or was tampered with")
        view = memoryview(blob)  # slices of a view do not copy the ciphertext
        try:
            return self._aead.decrypt(view[1 : 1 + _NONCE_BYTES], view[1 + _NONCE_BYTES :], aad)
        except InvalidTag:
            raise IntegrityError(
                f"{what} failed authentication: the vault file is damaged or was tampered with"
            ) from None


def derive_subkey(master: bytes, purpose: str) -> bytes:
    """Independent keys for independent jobs (sealing, blind index, slot wrapping)."""
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=f"aegis/v1/{purpose}".encode()
    ).derive(master)


def blind_index(index_key: bytes, text: str) -> bytes:
    """A keyed, deterministic tag for equality lookups without storing the text."""
    mac = crypto_hmac.HMAC(index_key, hashes.SHA256())
    mac.update(text.encode("utf-8"))
    return mac.finalize()


def hkdf_sha256(key: bytes, info: bytes, salt: bytes | None = None, length: int = KEY_BYTES) -> bytes:
    """HKDF-SHA256 with caller-chosen context: keys bound to more than a purpose name
    (the owner channel binds its keys to one broker, one socket and both nonces)."""
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 of raw bytes: proofs and per-message tags."""
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def hmac_sha256_matches(key: bytes, data: bytes, tag: bytes) -> bool:
    """Whether ``tag`` is the HMAC-SHA256 of ``data`` (compared in constant time)."""
    return isinstance(tag, bytes) and constant_time_equal(hmac_sha256(key, data), tag)


class KdfParams(NamedTuple):
    """Argon2id parameters, stored beside each passphrase slot."""

    salt: str  # hex
    memory_kib: int
    iterations: int
    lanes: int

    def to_dict(self) -> dict[str, object]:
        return {"algorithm": "argon2id", **self._asdict()}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> KdfParams:
        if data.get("algorithm") != "argon2id":
            raise IntegrityError("unlock slot names an unknown key-derivation algorithm")
        return cls(
            salt=str(data["salt"]),
            memory_kib=int(data["memory_kib"]),  # type: ignore[arg-type]
            iterations=int(data["iterations"]),  # type: ignore[arg-type]
            lanes=int(data["lanes"]),  # type: ignore[arg-type]
        )


# The floor the product promises for real vaults (64 MiB); tests may go below it only
# through ``KdfParams`` built explicitly, never through calibration.
MIN_MEMORY_KIB = 64 * 1024
_MAX_MEMORY_KIB = 1024 * 1024
_ITERATIONS = 3
_LANES = 4


def derive_passphrase_key(passphrase: bytes, params: KdfParams) -> bytes:
    """Argon2id: the only slow step of an unlock, by design."""
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    return Argon2id(
        salt=bytes.fromhex(params.salt),
        length=KEY_BYTES,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    ).derive(passphrase)


def new_kdf_params(memory_kib: int, iterations: int = _ITERATIONS, lanes: int = _LANES) -> KdfParams:
    return KdfParams(salt=random_hex(16), memory_kib=memory_kib, iterations=iterations, lanes=lanes)


def calibrate_kdf(target_seconds: float = 0.5, min_memory_kib: int = MIN_MEMORY_KIB) -> KdfParams:
    """Pick the Argon2id memory cost that takes about ``target_seconds`` on this machine.

    One trial at the floor, then scale memory linearly (Argon2id time is linear in
    memory for fixed iterations). Never below the floor, never above 1 GiB.
    """
    trial = new_kdf_params(min_memory_kib)
    started = time.perf_counter()
    derive_passphrase_key(b"calibration", trial)
    elapsed = max(time.perf_counter() - started, 1e-3)
    scaled = int(min_memory_kib * target_seconds / elapsed)
    memory = min(max(scaled, min_memory_kib), _MAX_MEMORY_KIB)
    return new_kdf_params(-(-memory // 1024) * 1024)  # whole MiB, rounded up: never below the floor


def audit_genesis(vault_id: str) -> bytes:
    """The ``prev`` hash of the first audit entry, unique per vault."""
    return sha256(b"aegis-audit-genesis/v1\0" + vault_id.encode())


def audit_entry_hash(prev: bytes, record: bytes, sealed: bytes | None) -> bytes:
    """Hash of one audit entry, chained to the one before it."""
    return sha256(b"".join((b"aegis-audit/v1\0", prev, struct.pack(">I", len(record)), record, sealed or b"")))


def sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def constant_time_equal(left: bytes, right: bytes) -> bool:
    """Constant-time comparison of two byte strings.

    ``_operator._compare_digest`` is CPython's constant-time compare (the one behind
    ``hmac.compare_digest`` when OpenSSL is absent). ``cryptography``'s ``bytes_eq``
    imports ``hmac``, which loads ``_hashlib`` (a second OpenSSL, ~3 ms on every ``get``).
    """
    from _operator import _compare_digest

    if not isinstance(left, bytes) or not isinstance(right, bytes):
        raise TypeError("constant_time_equal compares bytes")
    return _compare_digest(left, right)


def audit_head_message(vault_id: str, seq: int, entry_hash: bytes) -> bytes:
    """What the audit key signs: this vault's chain reached ``seq`` with ``entry_hash``."""
    return b"aegis-audit-head/v1\0" + vault_id.encode() + struct.pack(">Q", seq) + entry_hash


def new_signing_key() -> tuple[bytes, bytes]:
    """A fresh Ed25519 key pair as (private raw 32 bytes, public raw 32 bytes)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    return private.private_bytes_raw(), private.public_key().public_bytes_raw()


class Signer:
    """An Ed25519 private key held for the life of an unlocked vault."""

    __slots__ = ("_key",)

    def __init__(self, private_raw: bytes) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self._key = Ed25519PrivateKey.from_private_bytes(private_raw)

    def __repr__(self) -> str:
        return "Signer(<hidden>)"

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def public_raw(self) -> bytes:
        return self._key.public_key().public_bytes_raw()


def verify_signature(public_raw: bytes, message: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
