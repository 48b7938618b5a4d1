"""TOTP codes for credentials of kind ``totp``.

The stored value is either an ``otpauth://totp/...`` URI (keeps digits, period and
algorithm) or a bare base32 seed (defaults: 6 digits, 30 s, SHA-1). pyotp does the
arithmetic; this module only validates and normalises, so that a bad seed is refused
when it is added, not when a code is first needed.
"""

from __future__ import annotations

import base64
import binascii
from typing import NamedTuple

from aegis_tui.core.errors import UsageError
from aegis_tui.core.secret import Secret


class TotpCode(NamedTuple):
    code: str
    seconds_left: int
    period: int


def _generator(value: Secret):  # type: ignore[no-untyped-def]
    import pyotp

    text = value.reveal_text().strip()
    if text.lower().startswith("otpauth://"):
        try:
            otp = pyotp.parse_uri(text)
        except (ValueError, TypeError, binascii.Error):
            raise UsageError("that otpauth:// URI is not valid") from None
        if not isinstance(otp, pyotp.TOTP):
            raise UsageError("only time-based (otpauth://totp/) codes are supported")
        return otp
    seed = text.replace(" ", "").replace("-", "").upper()
    try:
        base64.b32decode(seed + "=" * (-len(seed) % 8))
    except (binascii.Error, ValueError):
        raise UsageError("a TOTP seed is base32 (letters A-Z and digits 2-7) or an otpauth:// URI") from None
    if len(seed) * 5 < 112:  # pyotp refuses shorter seeds when a code is made
        raise UsageError("a TOTP seed has at least 23 base32 characters (112 bits)")
    return pyotp.TOTP(seed)


def validate_totp(value: Secret) -> None:
    """Raise ``UsageError`` unless ``value`` yields codes."""
    try:
        _generator(value).now()
    except ValueError:  # e.g. an otpauth:// URI whose secret is too short for pyotp
        raise UsageError("that TOTP secret is too short (pyotp needs at least 112 bits)") from None


def totp_code(value: Secret, now: float) -> TotpCode:
    """The code valid at ``now`` and how many seconds it has left."""
    otp = _generator(value)
    period = int(otp.interval)
    return TotpCode(otp.at(int(now)), period - int(now) % period, period)
