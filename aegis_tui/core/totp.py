"""TOTP codes for credentials of kind ``totp``.

The stored value is either an ``otpauth://totp/...`` URI (keeps digits, period and
algorithm) or a bare base32 seed (defaults: 6 digits, 30 s, SHA-1). pyotp does the
arithmetic. Validation happens here so that a bad seed is refused when it is added,
not when a code is first needed.

Seed length: pyotp refuses seeds shorter than 112 bits, but GitHub and many other
services still issue 80-bit (16-character) seeds, and a vault that cannot hold them
is no use to their users. So seeds from 80 bits up are accepted, and URIs are parsed
here rather than by ``pyotp.parse_uri``, which applies the same refusal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qs, urlsplit

from aegis_tui.core.errors import UsageError
from aegis_tui.core.secret import Secret

if TYPE_CHECKING:
    import pyotp

MIN_SEED_BYTES = 10  # 80 bits, the shortest seed in common use
_DIGESTS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


class TotpCode(NamedTuple):
    code: str
    seconds_left: int
    period: int


def _decode_seed(text: str) -> str:
    seed = text.replace(" ", "").replace("-", "").upper()
    try:
        raw = base64.b32decode(seed + "=" * (-len(seed) % 8))
    except (binascii.Error, ValueError):
        raise UsageError("a TOTP seed is base32 (letters A-Z and digits 2-7) or an otpauth:// URI") from None
    if len(raw) < MIN_SEED_BYTES:
        raise UsageError("a TOTP seed has at least 16 base32 characters (80 bits)")
    return seed


def _generator(value: Secret) -> pyotp.TOTP:
    import pyotp

    class _Totp(pyotp.TOTP):
        def byte_secret(self) -> bytes:  # the seed was checked by _decode_seed
            return base64.b32decode(self.secret + "=" * (-len(self.secret) % 8))

    text = value.reveal_text().strip()
    if not text.lower().startswith("otpauth://"):
        return _Totp(_decode_seed(text))
    parts = urlsplit(text)
    if parts.netloc.lower() != "totp":
        raise UsageError("only time-based (otpauth://totp/) codes are supported")
    query = {key.lower(): values[-1] for key, values in parse_qs(parts.query).items()}
    try:
        digits = int(query.get("digits", "6"))
        period = int(query.get("period", "30"))
    except ValueError:
        raise UsageError("that otpauth:// URI has a non-numeric digits or period") from None
    digest = _DIGESTS.get(query.get("algorithm", "SHA1").upper())
    if digest is None or not 6 <= digits <= 10 or not 1 <= period <= 600:
        raise UsageError("that otpauth:// URI asks for an unsupported algorithm, digits or period")
    return _Totp(_decode_seed(query.get("secret", "")), digits=digits, digest=digest, interval=period)


def validate_totp(value: Secret) -> None:
    """Raise ``UsageError`` unless ``value`` yields codes."""
    _generator(value).now()


def totp_code(value: Secret, now: float) -> TotpCode:
    """The code valid at ``now`` and how many seconds it has left."""
    otp = _generator(value)
    period = int(otp.interval)
    return TotpCode(otp.at(int(now)), period - int(now) % period, period)
