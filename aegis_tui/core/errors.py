"""One error tree for the whole core.

Every error carries the process exit code the command line uses for it, and a message
that is safe to print: no secret value ever goes into an error, only names of things
and what to do next.
"""

from __future__ import annotations


class AegisError(Exception):
    """Base of every expected failure. The CLI prints ``str(err)`` as one line."""

    exit_code = 1


class UsageError(AegisError):
    """The request itself is malformed (bad name, bad option combination)."""

    exit_code = 2


class ProtocolError(UsageError):
    """A broker client sent something that is not a valid request."""


class UnlockError(AegisError):
    """No unlock slot accepted what was offered (wrong passphrase, wrong key)."""

    exit_code = 3


class NotFoundError(AegisError):
    """The named credential, version or slot does not exist."""

    exit_code = 4


class VaultFileError(AegisError):
    """The vault file is missing, unreadable, not a vault, too new, or too open."""

    exit_code = 5


class IntegrityError(AegisError):
    """Sealed data or the audit chain failed authentication: tampering or corruption."""

    exit_code = 6


class ConflictError(AegisError):
    """The change collides with existing state (a duplicate name, say)."""

    exit_code = 7


class RefusedError(AegisError):
    """The request is valid but policy forbids it (revoked credential, last slot)."""

    exit_code = 8


class DeniedError(AegisError):
    """A human (or the approval timeout) said no to an access request."""

    exit_code = 9


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "unexpected error",
    2: "usage error: bad arguments or input",
    3: "unlock failed: wrong passphrase or key, or no usable unlock slot",
    4: "not found",
    5: "vault file problem: missing, not a vault, newer schema, or unsafe permissions",
    6: "integrity failure: tampered or corrupted data, or a broken audit chain",
    7: "conflict: the name already exists",
    8: "refused: the credential is revoked or the change is not allowed",
    9: "denied: the access request was not approved (denied, or no answer in time)",
    130: "interrupted",
}
