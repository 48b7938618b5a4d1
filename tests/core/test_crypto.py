"""The cryptographic building blocks: sealing, key derivation, blind index, audit hashes, signatures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aegis_tui.core import crypto
from aegis_tui.core.crypto import (
    KdfParams,
    SealingKey,
    Signer,
    associated_data,
    audit_entry_hash,
    audit_genesis,
    audit_head_message,
    blind_index,
    calibrate_kdf,
    constant_time_equal,
    derive_passphrase_key,
    derive_subkey,
    new_kdf_params,
    new_key,
    new_signing_key,
    verify_signature,
)
from aegis_tui.core.errors import IntegrityError

AAD = associated_data("vault-id", "versions", "cred-id", "value", 1)
PROPERTY = settings(max_examples=40, deadline=None)


def fast() -> KdfParams:
    return new_kdf_params(memory_kib=8, iterations=1, lanes=1)


# -- sealing -------------------------------------------------------------------------------
def test_seal_then_open_returns_the_plaintext() -> None:
    key = SealingKey(new_key())
    assert key.open(key.seal(b"hello", AAD), AAD) == b"hello"


def test_sealed_blob_has_the_documented_layout() -> None:
    blob = SealingKey(new_key()).seal(b"12345", AAD)
    assert blob[:1] == b"\x01"
    assert len(blob) == 1 + 12 + 5 + 16


def test_sealing_twice_gives_different_blobs() -> None:
    key = SealingKey(new_key())
    assert key.seal(b"same", AAD) != key.seal(b"same", AAD)


def test_ciphertext_does_not_contain_the_plaintext() -> None:
    plain = b"PLAINTEXT-CANARY-" * 4
    assert plain[:17] not in SealingKey(new_key()).seal(plain, AAD)


def test_open_with_other_associated_data_raises_integrity_error() -> None:
    key = SealingKey(new_key())
    blob = key.seal(b"v", AAD)
    with pytest.raises(IntegrityError, match="failed authentication"):
        key.open(blob, associated_data("vault-id", "versions", "cred-id", "value", 2))


def test_open_with_other_key_raises_integrity_error() -> None:
    blob = SealingKey(new_key()).seal(b"v", AAD)
    with pytest.raises(IntegrityError):
        SealingKey(new_key()).open(blob, AAD)


@pytest.mark.parametrize("position", [0, 1, 12, 13, -16, -1])
def test_any_flipped_byte_raises_integrity_error(position: int) -> None:
    key = SealingKey(new_key())
    blob = bytearray(key.seal(b"some value", AAD))
    blob[position] ^= 0x01
    with pytest.raises(IntegrityError):
        key.open(bytes(blob), AAD)


@pytest.mark.parametrize("blob", [b"", b"\x01", b"\x01" + bytes(27), b"\x02" + bytes(40)])
def test_short_or_unknown_version_blobs_are_reported_malformed(blob: bytes) -> None:
    with pytest.raises(IntegrityError, match="malformed"):
        SealingKey(new_key()).open(blob, AAD, "the thing")


def test_integrity_error_names_what_failed_but_not_the_value() -> None:
    key = SealingKey(new_key())
    blob = bytearray(key.seal(b"VALUE-CANARY", AAD))
    blob[-1] ^= 0xFF
    with pytest.raises(IntegrityError) as caught:
        key.open(bytes(blob), AAD, "a secret value")
    assert "a secret value" in str(caught.value)
    assert "VALUE-CANARY" not in str(caught.value)


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_sealing_key_must_be_32_bytes(length: int) -> None:
    with pytest.raises(ValueError):
        SealingKey(bytes(length))


def test_sealing_key_repr_hides_the_key() -> None:
    raw = bytes(range(32))
    assert raw.hex() not in repr(SealingKey(raw))
    assert "hidden" in repr(SealingKey(raw))


@PROPERTY
@given(plain=st.binary(max_size=2048), parts=st.lists(st.one_of(st.text(max_size=20), st.integers()), max_size=5))
def test_property_seal_open_round_trip(plain: bytes, parts: list[str | int]) -> None:
    key = SealingKey(new_key())
    aad = associated_data(*parts)
    assert key.open(key.seal(plain, aad), aad) == plain


# -- associated data ------------------------------------------------------------------------
def test_associated_data_is_unambiguous_across_part_boundaries() -> None:
    assert associated_data("ab", "c") != associated_data("a", "bc")
    assert associated_data("a", "") != associated_data("a")
    assert associated_data(1) == associated_data("1")  # ints are written as their text


@PROPERTY
@given(left=st.lists(st.text(max_size=6), max_size=4), right=st.lists(st.text(max_size=6), max_size=4))
def test_property_different_part_lists_never_encode_the_same(left: list[str], right: list[str]) -> None:
    assert (associated_data(*left) == associated_data(*right)) == (left == right)


# -- key derivation ---------------------------------------------------------------------------
def test_subkeys_are_deterministic_and_independent_per_purpose() -> None:
    master = new_key()
    assert derive_subkey(master, "seal") == derive_subkey(master, "seal")
    assert derive_subkey(master, "seal") != derive_subkey(master, "index")
    assert derive_subkey(master, "seal") != derive_subkey(new_key(), "seal")
    assert len(derive_subkey(master, "seal")) == 32


def test_passphrase_key_is_deterministic_for_the_same_params() -> None:
    params = fast()
    assert derive_passphrase_key(b"pw", params) == derive_passphrase_key(b"pw", params)
    assert len(derive_passphrase_key(b"pw", params)) == 32


def test_passphrase_key_depends_on_passphrase_and_salt() -> None:
    params = fast()
    assert derive_passphrase_key(b"pw", params) != derive_passphrase_key(b"pW", params)
    assert derive_passphrase_key(b"pw", params) != derive_passphrase_key(b"pw", fast())


def test_new_kdf_params_have_a_fresh_128_bit_salt() -> None:
    first, second = fast(), fast()
    assert first.salt != second.salt
    assert len(bytes.fromhex(first.salt)) == 16


def test_kdf_params_round_trip_through_their_dict() -> None:
    params = new_kdf_params(memory_kib=65536)
    data = params.to_dict()
    assert data["algorithm"] == "argon2id"
    assert KdfParams.from_dict(data) == params
    assert (params.iterations, params.lanes) == (3, 4)


def test_kdf_params_with_unknown_algorithm_are_refused() -> None:
    data = fast().to_dict()
    data["algorithm"] = "pbkdf2"
    with pytest.raises(IntegrityError, match="unknown key-derivation"):
        KdfParams.from_dict(data)


def test_calibration_never_goes_below_the_floor() -> None:
    assert calibrate_kdf(target_seconds=0.0, min_memory_kib=1024).memory_kib == 1024


def test_calibration_never_goes_above_one_gib() -> None:
    assert calibrate_kdf(target_seconds=1e9, min_memory_kib=1024).memory_kib == 1024 * 1024


def test_product_floor_is_64_mib() -> None:
    assert crypto.MIN_MEMORY_KIB == 64 * 1024


# -- blind index ---------------------------------------------------------------------------------
def test_blind_index_is_deterministic_keyed_and_hides_the_text() -> None:
    key = new_key()
    tag = blind_index(key, "github")
    assert tag == blind_index(key, "github")
    assert tag != blind_index(key, "gitlab")
    assert tag != blind_index(new_key(), "github")
    assert b"github" not in tag and len(tag) == 32


# -- randomness ------------------------------------------------------------------------------------
def test_random_helpers_return_the_asked_length_and_differ() -> None:
    assert len(crypto.random_bytes(7)) == 7
    assert len(crypto.random_hex(16)) == 32
    assert crypto.random_hex(16) != crypto.random_hex(16)
    assert new_key() != new_key()


def test_constant_time_equal_is_true_only_for_identical_bytes() -> None:
    assert constant_time_equal(b"abc", b"abc")
    assert not constant_time_equal(b"abc", b"abd")
    assert not constant_time_equal(b"abc", b"ab")


# -- audit chain primitives ---------------------------------------------------------------------------
def test_audit_genesis_is_unique_per_vault() -> None:
    assert audit_genesis("a") == audit_genesis("a")
    assert audit_genesis("a") != audit_genesis("b")


def test_audit_entry_hash_covers_prev_record_and_sealed_subject() -> None:
    prev = audit_genesis("v")
    base = audit_entry_hash(prev, b'{"seq":1}', b"sealed")
    assert base == audit_entry_hash(prev, b'{"seq":1}', b"sealed")
    assert base != audit_entry_hash(audit_genesis("w"), b'{"seq":1}', b"sealed")
    assert base != audit_entry_hash(prev, b'{"seq":2}', b"sealed")
    assert base != audit_entry_hash(prev, b'{"seq":1}', b"sealeD")
    assert base != audit_entry_hash(prev, b'{"seq":1}', None)
    assert audit_entry_hash(prev, b"r", None) == audit_entry_hash(prev, b"r", b"")


def test_audit_entry_hash_length_prefix_separates_record_from_sealed() -> None:
    prev = audit_genesis("v")
    assert audit_entry_hash(prev, b"ab", b"c") != audit_entry_hash(prev, b"a", b"bc")


def test_signed_head_verifies_and_any_change_breaks_it() -> None:
    private, public = new_signing_key()
    entry_hash = audit_entry_hash(audit_genesis("v"), b"r", None)
    message = audit_head_message("v", 5, entry_hash)
    signature = Signer(private).sign(message)
    assert verify_signature(public, message, signature)
    assert not verify_signature(public, audit_head_message("v", 6, entry_hash), signature)
    assert not verify_signature(public, audit_head_message("w", 5, entry_hash), signature)
    assert not verify_signature(new_signing_key()[1], message, signature)
    bad = bytearray(signature)
    bad[0] ^= 1
    assert not verify_signature(public, message, bytes(bad))


def test_verify_signature_rejects_malformed_keys_without_raising() -> None:
    assert verify_signature(b"short", b"m", bytes(64)) is False


def test_signer_repr_hides_the_private_key() -> None:
    private, _ = new_signing_key()
    assert private.hex() not in repr(Signer(private))
