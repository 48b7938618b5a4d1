"""The needles of a secret value: every form in which program output could reveal it."""

from __future__ import annotations

import base64
import binascii
import json
import random
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aegis_tui.core.redaction.encodings import LABELS, MIN_NEEDLE, MIN_VALUE, labelled_needles, needles_for

VALUE = random.Random(7).randbytes(33)  # arbitrary bytes: base64 of it holds '+' and '/'
ENCODERS = {"standard": base64.b64encode, "urlsafe": base64.urlsafe_b64encode}


def revealed(needles: set[bytes], text: bytes) -> bool:
    return any(needle in text for needle in needles)


def test_values_shorter_than_min_value_give_no_needles() -> None:
    for length in range(MIN_VALUE):
        assert needles_for(b"\xfe" * length) == set()


def test_needles_shorter_than_min_needle_are_dropped_so_a_4_byte_value_keeps_only_longer_forms() -> None:
    needles = needles_for(b"abcd")
    assert b"abcd" not in needles
    assert b"61626364" in needles and base64.b64encode(b"abcd") in needles
    assert all(len(needle) >= MIN_NEEDLE for needle in needles)


def test_the_raw_value_is_a_needle() -> None:
    assert VALUE in needles_for(VALUE)


def test_hex_in_lower_and_upper_case_are_needles() -> None:
    needles = needles_for(VALUE)
    assert binascii.hexlify(VALUE) in needles
    assert binascii.hexlify(VALUE).upper() in needles


def test_url_encoded_forms_are_needles() -> None:
    value = b"pa ss/wo+rd&x=1?"
    needles = needles_for(value)
    assert quote(value, safe="").encode() in needles
    assert quote_plus(value, safe="").encode() in needles


@pytest.mark.parametrize("ascii_only", [True, False], ids=["escaped-unicode", "utf8"])
def test_the_json_escaped_form_is_a_needle(ascii_only: bool) -> None:
    value = 'tok"en\\with\nnewline-and-ünïcode'.encode()
    document = json.dumps({"user": "me", "token": value.decode(), "n": 1}, ensure_ascii=ascii_only).encode()
    assert value not in document
    assert revealed(needles_for(value), document)


def test_a_non_utf8_value_has_no_json_form_but_keeps_the_others() -> None:
    value = b"\xff\xfe-not-text-\x80"
    needles = needles_for(value)
    assert value in needles and binascii.hexlify(value) in needles


@pytest.mark.parametrize("alphabet", sorted(ENCODERS))
def test_the_standalone_base64_encoding_with_padding_is_a_needle(alphabet: str) -> None:
    encoded = ENCODERS[alphabet](VALUE + b"x")
    assert encoded.endswith(b"=")
    assert encoded in needles_for(VALUE + b"x")


@pytest.mark.parametrize("alphabet", sorted(ENCODERS))
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 4, 5])
def test_the_value_inside_a_larger_base64_blob_is_revealed_at_every_alignment(alphabet: str, offset: int) -> None:
    rng = random.Random(offset)
    blob = rng.randbytes(offset) + VALUE + rng.randbytes(17)
    encoded = ENCODERS[alphabet](blob)
    assert revealed(needles_for(VALUE), encoded)


@settings(max_examples=300, deadline=None)
@given(value=st.binary(min_size=8, max_size=64), before=st.binary(max_size=8), after=st.binary(max_size=8),
       alphabet=st.sampled_from(sorted(ENCODERS)))
def test_any_base64_blob_holding_the_value_contains_one_of_its_needles(
        value: bytes, before: bytes, after: bytes, alphabet: str) -> None:
    # the needles hold only characters fixed by the value, whatever surrounds it
    assert revealed(needles_for(value), ENCODERS[alphabet](before + value + after))


def test_needles_for_is_exactly_the_keys_of_labelled_needles() -> None:
    for value in (VALUE, b"abcd", b"pa ss'wo\"rd$x", b"ab"):
        assert needles_for(value) == set(labelled_needles(value))


def test_each_needle_is_labelled_with_its_encoding_preferring_raw_when_forms_coincide() -> None:
    value = b"zz: it's a $ecret"  # "z" is 0x7a: the hex forms differ in case
    labelled = labelled_needles(value)
    assert labelled[value] == "raw"
    assert labelled[binascii.hexlify(value)] == "hex" and labelled[binascii.hexlify(value).upper()] == "HEX"
    assert labelled[base64.b64encode(value)] == "base64"
    assert labelled[quote(value, safe="").encode()] == "url"
    assert set(labelled.values()) <= set(LABELS)
    assert labelled_needles(b"plainalnum123")[b"plainalnum123"] == "raw"  # also its URL and JSON form


def test_a_base64url_form_that_differs_from_standard_base64_is_labelled_base64url() -> None:
    assert labelled_needles(VALUE)[base64.urlsafe_b64encode(VALUE)] == "base64url"


@pytest.mark.parametrize(("value", "written"), [
    (b"it's mine", b"it'\"'\"'s mine"),  # inside shlex.quote's single quotes
    (b'say "$HOME" `x`', b'say \\"\\$HOME\\" \\`x\\`'),  # inside double quotes
    (b"two words & 'q'", b"two\\ words\\ \\&\\ \\'q\\'"),  # printf %q
])
def test_shell_quoted_forms_are_needles(value: bytes, written: bytes) -> None:
    assert labelled_needles(value)[written] == "shell"


def test_a_value_the_shell_needs_no_quoting_for_has_no_shell_needle() -> None:
    assert "shell" not in labelled_needles(b"plain-token_123").values()
