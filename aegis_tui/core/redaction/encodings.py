"""Every byte string that would reveal a secret value in a program's output.

Programs rarely print a secret only as-is: an HTTP client logs it URL-encoded, a config
dump shows it JSON-escaped, a ``curl -u`` trace carries it inside a base64 blob that
also holds other bytes. Hiding only the raw form would leave those copies readable, so
a value is turned into a set of *needles*, each of which gives the value away.

Short values and short needles are not masked: a 3-byte secret (or a 5-character
encoding of one) occurs by chance in ordinary output so often that masking it would
shred the output while protecting almost nothing. So a value shorter than
``MIN_VALUE`` bytes gives no needles at all, and any needle shorter than ``MIN_NEEDLE``
bytes is dropped: for a 4- or 5-byte value that means its raw form is not masked,
while its (longer) encodings still are.

Pure functions, shared by the output masker and the leak scanner.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from urllib.parse import quote, quote_plus

MIN_VALUE = 4
MIN_NEEDLE = 6

_B64_ALPHABETS: tuple[Callable[[bytes], bytes], ...] = (base64.b64encode, base64.urlsafe_b64encode)


def needles_for(value: bytes) -> set[bytes]:
    """The needles that reveal ``value``; empty when the value is too short to mask."""
    if len(value) < MIN_VALUE:
        return set()
    found = {value, *_hex_forms(value), *_url_forms(value), *_json_forms(value)}
    for encode in _B64_ALPHABETS:
        found.update(_base64_forms(value, encode))
    return {needle for needle in found if len(needle) >= MIN_NEEDLE}


def _base64_forms(value: bytes, encode: Callable[[bytes], bytes]) -> set[bytes]:
    """The standalone encoding, plus the value as seen inside a larger base64 blob.

    Inside a blob the value may start at any of the three byte positions of a 3-byte
    group. For each offset, keep only the characters whose 6 bits all come from the
    value: the first character(s) also carry bits of the unknown bytes before it, the
    last ones bits of the unknown bytes after it, so they differ from blob to blob.
    """
    forms = {encode(value)}
    end_bit = 8 * len(value)
    for offset in range(3):
        first_bit, last_bit = 8 * offset, end_bit + 8 * offset
        encoded = encode(bytes(offset) + value)
        forms.add(encoded[-(-first_bit // 6): last_bit // 6])
    return forms


def _hex_forms(value: bytes) -> set[bytes]:
    lower = binascii.hexlify(value)
    return {lower, lower.upper()}


def _url_forms(value: bytes) -> set[bytes]:
    return {quote(value, safe="").encode("ascii"), quote_plus(value, safe="").encode("ascii")}


def _json_forms(value: bytes) -> set[bytes]:
    """The value inside a JSON string, as Python (``\\uXXXX``) and JavaScript (UTF-8) write it.

    Only text values can appear in JSON; a non-UTF-8 value is skipped.
    """
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return set()
    return {json.dumps(text, ensure_ascii=ascii_only)[1:-1].encode("utf-8") for ascii_only in (True, False)}
