"""Generated secret values: uniform choices from ``secrets``, never ``random``."""

from __future__ import annotations

import secrets
import string

from aegis_tui.core.errors import UsageError
from aegis_tui.core.secret import Secret

CHARSETS: dict[str, str] = {
    "alnum": string.ascii_letters + string.digits,
    "alpha": string.ascii_letters,
    "digits": string.digits,
    "hex": "0123456789abcdef",
    "symbols": string.ascii_letters + string.digits + "!#$%&*+-=?@^_~",
    "base64url": string.ascii_letters + string.digits + "-_",
}
MIN_LENGTH = 8
MAX_LENGTH = 4096
MAX_PREFIX_LENGTH = 32


def validate_prefix(prefix: object) -> str:
    """A fixed start such as ``sk_``: short, printable, no spaces (it becomes part of a value)."""
    if not isinstance(prefix, str) or len(prefix) > MAX_PREFIX_LENGTH \
            or any(not ch.isprintable() or ch.isspace() for ch in prefix):
        raise UsageError(f"a prefix is at most {MAX_PREFIX_LENGTH} printable characters without spaces")
    return prefix


def generate_value(length: int = 32, charset: str = "alnum", prefix: str = "") -> Secret:
    if charset not in CHARSETS:
        raise UsageError(f"unknown character set {charset!r}; choose one of: {', '.join(CHARSETS)}")
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise UsageError(f"a generated value is {MIN_LENGTH} to {MAX_LENGTH} characters long")
    validate_prefix(prefix)
    alphabet = CHARSETS[charset]
    return Secret(prefix + "".join(secrets.choice(alphabet) for _ in range(length)))
