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

Each needle carries a label naming its encoding (``LABELS``): the masker only needs
the needles, the leak scanner also reports how a value was written.

Pure functions, shared by the output masker and the leak scanner.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
import shlex
from urllib.parse import quote, quote_plus

MIN_VALUE = 4
MIN_NEEDLE = 6

# Every encoding label, in order of preference when one needle is several encodings at
# once (an alphanumeric value is its own URL and JSON form: it is reported as "raw").
LABELS = ("raw", "hex", "HEX", "base64", "base64url", "url", "json", "shell")

_B64_ALPHABETS: tuple[Callable[[bytes], bytes], ...] = (base64.b64encode, base64.urlsafe_b64encode)


def needles_for(value: bytes) -> set[bytes]:
    """The needles that reveal ``value``; empty when the value is too short to mask."""
    return set(labelled_needles(value))


def labelled_needles(value: bytes) -> dict[bytes, str]:
    """Each needle of ``value`` with the label of its encoding (the first in ``LABELS`` order).

    Empty when the value is too short to mask.
    """
    if len(value) < MIN_VALUE:
        return {}
    forms: list[tuple[str, set[bytes]]] = [
        ("raw", {value}),
        *zip(("hex", "HEX"), ({form} for form in _hex_forms(value))),
        *zip(("base64", "base64url"), (_base64_forms(value, encode) for encode in _B64_ALPHABETS)),
        ("url", _url_forms(value)),
        ("json", _json_forms(value)),
        ("shell", _shell_forms(value)),
    ]
    labelled: dict[bytes, str] = {}
    for label, needles in forms:
        for needle in sorted(needles):
            if len(needle) >= MIN_NEEDLE:
                labelled.setdefault(needle, label)
    return labelled


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


def _hex_forms(value: bytes) -> tuple[bytes, bytes]:
    """Lower case first, then upper case (equal for an all-digit encoding)."""
    lower = binascii.hexlify(value)
    return lower, lower.upper()


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


# Characters bash's ``printf %q`` puts a backslash before; ``#`` and ``~`` only lead a word.
_SHELL_SPECIAL = frozenset(b" \t'\"\\$`!&;|<>(){}[]*?^,")
_SHELL_LEADING = frozenset(b"#~")


def _shell_forms(value: bytes) -> set[bytes]:
    """The value as a shell command line quotes it, in the forms that differ from the raw value.

    Three spellings: inside single quotes as ``shlex.quote`` writes it (each ``'``
    becomes ``'"'"'``), inside double quotes (``"``, ``\\``, ``$`` and backticks
    backslash-escaped), and unquoted with every special character backslash-escaped,
    as ``printf %q`` does. The surrounding quotes are left out, so the value is also
    found inside a longer quoted word.
    """
    single = shlex.quote(value.decode("latin-1"))[1:-1].encode("latin-1") if b"'" in value else value
    double = b"".join(b"\\" + bytes([byte]) if byte in b'"\\$`' else bytes([byte]) for byte in value)
    backslashed = b"".join(
        b"\\" + bytes([byte]) if byte in _SHELL_SPECIAL or (at == 0 and byte in _SHELL_LEADING) else bytes([byte])
        for at, byte in enumerate(value))
    return {single, double, backslashed} - {value}
