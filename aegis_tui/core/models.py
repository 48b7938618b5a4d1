"""The credential model and the validation of everything a user can type into it.

Validation lives here so that the CLI, the app and the broker refuse the same inputs
with the same one-line messages.
"""

from __future__ import annotations

import re
import unicodedata
from types import MappingProxyType
from typing import NamedTuple
from datetime import date
from enum import StrEnum

from aegis_tui.core.errors import UsageError


class Kind(StrEnum):
    API_KEY = "api_key"
    ACCESS_TOKEN = "access_token"
    PASSWORD = "password"
    CONNECTION_STRING = "connection_string"
    SSH_KEY = "ssh_key"
    CERTIFICATE = "certificate"
    TOTP = "totp"
    SECRET = "secret"


class Status(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPOSED = "exposed"


class VersionState(StrEnum):
    CURRENT = "current"
    PREVIOUS = "previous"  # superseded, still valid until its overlap window ends
    RETIRED = "retired"


class RotationState(StrEnum):
    NONE = "none"  # no rotation period set
    OK = "ok"
    DUE = "due"  # within the reminder window before the deadline
    OVERDUE = "overdue"


class Health(StrEnum):
    """One word for "how is this credential doing", most urgent first.

    Shown as glyph + word + colour everywhere (colour-blind safe).
    """

    REVOKED = "revoked"
    EXPOSED = "exposed"
    FAILING = "failing"  # a service rejected it (git asked to erase it)
    EXPIRED = "expired"
    EXPIRING = "expiring"
    OVERDUE = "overdue"
    DUE = "due"
    OK = "ok"

    @property
    def glyph(self) -> str:
        return _HEALTH_GLYPHS[self]


_HEALTH_GLYPHS = {
    Health.REVOKED: "⊘", Health.EXPOSED: "✖", Health.FAILING: "⚡", Health.EXPIRED: "⌛", Health.EXPIRING: "⌛",
    Health.OVERDUE: "⚠", Health.DUE: "◷", Health.OK: "✓",
}
EXPIRY_WARNING_DAYS = 14
MAX_NAME_LENGTH = 128
MAX_VALUE_BYTES = 16 * 1024 * 1024
DEFAULT_OVERLAP_SECONDS = 24 * 3600
ROTATION_DUE_WINDOW_DAYS = 14
_CONTEXT_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def _has_control(text: str) -> bool:
    if text.isprintable():  # the usual case, in C: no Cc, Cf, Zl or Zp in a printable string
        return False
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def validate_name(raw: str) -> str:
    """Names may hold any printable text: ``evil[/]`` is a fine name, shown literally."""
    name = unicodedata.normalize("NFC", raw)
    if not name or name != name.strip():
        raise UsageError("a credential name must not be empty or start or end with spaces")
    if len(name) > MAX_NAME_LENGTH:
        raise UsageError(f"a credential name is at most {MAX_NAME_LENGTH} characters")
    if _has_control(name):
        raise UsageError("a credential name must not contain control characters")
    return name


def name_key(name: str) -> str:
    """What uniqueness is decided on: 'GitHub' and 'github' are the same credential."""
    return validate_name(name).casefold()


def validate_context(raw: str) -> str:
    """A context is a path of simple segments, such as ``acme/prod`` or ``personal``."""
    if raw == "":
        return ""
    parts = raw.split("/")
    if len(raw) > 128 or not all(_CONTEXT_PART.match(part) for part in parts):
        raise UsageError(
            "a context is one or more segments of letters, digits, '.', '_' or '-' "
            "separated by '/', such as acme/prod"
        )
    return raw


def validate_tags(raw: list[str]) -> tuple[str, ...]:
    tags = tuple(sorted({tag.strip() for tag in raw if tag.strip()}))
    for tag in tags:
        if not _TAG.match(tag):
            raise UsageError(f"tag {tag!r} must be letters, digits, '.', '_', ':' or '-' (64 at most)")
    return tags


def validate_free_text(raw: str, what: str, limit: int = 10_000) -> str:
    """Notes, services, URLs: printable text; newlines and tabs only in notes."""
    allowed = "\n\t" if what == "notes" else ""
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in raw):
        raise UsageError(f"{what} must not contain control characters")
    if len(raw) > limit:
        raise UsageError(f"{what} is at most {limit} characters")
    return raw


def validate_value(value: bytes) -> bytes:
    if not value:
        raise UsageError("the secret value is empty; nothing was stored")
    if len(value) > MAX_VALUE_BYTES:
        raise UsageError(f"the secret value is larger than {MAX_VALUE_BYTES // (1024 * 1024)} MiB")
    return value


def parse_kind(raw: str) -> Kind:
    try:
        return Kind(raw)
    except ValueError:
        raise UsageError(f"unknown kind {raw!r}; choose one of: {', '.join(k.value for k in Kind)}") from None


def parse_status(raw: str) -> Status:
    try:
        return Status(raw)
    except ValueError:
        raise UsageError(f"unknown status {raw!r}; choose one of: {', '.join(s.value for s in Status)}") from None


def parse_expiry(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise UsageError(f"expiry {raw!r} is not a date like 2027-03-31") from None


class Credential(NamedTuple):
    """Everything about a credential except its value. Sealed as one blob in the store."""

    id: str
    name: str
    kind: Kind = Kind.SECRET
    service: str = ""
    context: str = ""
    tags: tuple[str, ...] = ()
    notes: str = ""
    url: str = ""
    expires: str | None = None  # ISO date
    rotation_days: int | None = None
    overlap_seconds: int = DEFAULT_OVERLAP_SECONDS
    status: Status = Status.ACTIVE
    fields: MappingProxyType[str, str] = MappingProxyType({})  # custom, sealed like the rest
    created_at: float = 0.0
    updated_at: float = 0.0
    rotated_at: float = 0.0
    current_version: int = 1
    failing_since: float | None = None  # set when a service rejected the value; cleared by rotate
    # How a new value is made when rotation is due: {"method": "manual"} (the default:
    # a human types it), "generate" (with "length", "charset", "prefix") or "command"
    # (with "hook", a provider hook of the policy file). See core/lifecycle/policy.py.
    rotation_policy: MappingProxyType[str, object] = MappingProxyType({})

    def to_record(self) -> list[object]:
        """The sealed encoding: ``[format, *fields]`` in declaration order (JSON-ready).

        Positional rather than keyed: decoding 100k of them is about twice as fast,
        which is most of what ``list`` costs at scale. Format 1; a later version may
        only append fields (with defaults), so older records still decode.
        """
        return [RECORD_FORMAT, *self[:5], list(self.tags), *self[6:12], dict(self.fields), *self[13:18],
                dict(self.rotation_policy)]

    @classmethod
    def from_record(cls, values: list[object]) -> Credential:
        if not values or values[0] != RECORD_FORMAT or len(values) > len(cls._fields) + 1:
            raise ValueError("unknown credential record format")
        fields = values[1:]
        fields[2] = _KINDS[fields[2]]  # type: ignore[index]  # a dict: Kind(...) is 3x slower
        fields[5] = tuple(fields[5])  # type: ignore[arg-type]
        fields[11] = _STATUSES[fields[11]]  # type: ignore[index]
        fields[12] = MappingProxyType(fields[12])  # type: ignore[arg-type]
        if len(fields) > 18:
            fields[18] = MappingProxyType(fields[18])  # type: ignore[arg-type]
        if len(fields) < len(cls._fields):  # written before later fields existed
            fields += [cls._field_defaults[name] for name in cls._fields[len(fields):]]
        return cls._make(fields)

    def evolve(self, **changes: object) -> Credential:
        return self._replace(**changes)

    @property
    def reference(self) -> str:
        """How an agent or an env template names it: ``aegis://context/name``."""
        return f"aegis://{self.context}/{self.name}" if self.context else f"aegis://{self.name}"

    def rotation(self, now: float) -> tuple[RotationState, int | None]:
        """Where this credential stands against its rotation period, and days left."""
        if not self.rotation_days:
            return RotationState.NONE, None
        deadline = (self.rotated_at or self.created_at) + self.rotation_days * 86400
        days_left = -int((now - deadline) // 86400)  # whole days, rounded up: 90 right after a rotation
        if now >= deadline:
            return RotationState.OVERDUE, days_left
        if days_left < ROTATION_DUE_WINDOW_DAYS:
            return RotationState.DUE, days_left
        return RotationState.OK, days_left

    def days_to_expiry(self, now: float) -> int | None:
        if not self.expires:
            return None
        from datetime import date, datetime, timezone

        today = datetime.fromtimestamp(now, timezone.utc).date()
        return (date.fromisoformat(self.expires) - today).days

    def health(self, now: float) -> Health:
        if self.status is Status.REVOKED:
            return Health.REVOKED
        if self.status is Status.EXPOSED:
            return Health.EXPOSED
        if self.failing_since is not None:
            return Health.FAILING
        expiry = self.days_to_expiry(now)
        if expiry is not None and expiry < 0:
            return Health.EXPIRED
        if expiry is not None and expiry <= EXPIRY_WARNING_DAYS:
            return Health.EXPIRING
        state, _ = self.rotation(now)
        if state is RotationState.OVERDUE:
            return Health.OVERDUE
        if state is RotationState.DUE:
            return Health.DUE
        return Health.OK


RECORD_FORMAT = 1
_KINDS = {kind.value: kind for kind in Kind}
_STATUSES = {status.value: status for status in Status}


class VersionInfo(NamedTuple):
    """A version's bookkeeping, never its value."""

    version: int
    created_at: float
    retires_at: float | None
    state: VersionState


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(raw: str) -> int:
    """``30m``, ``24h``, ``7d``, ``0`` -> seconds."""
    text = raw.strip().lower()
    if text == "0":
        return 0
    unit = _DURATION_UNITS.get(text[-1:]) if text else None
    if unit is None or not text[:-1].isdigit():
        raise UsageError(f"duration {raw!r} is not like 30m, 24h, 7d or 0")
    return int(text[:-1]) * unit


def reference_candidates(raw: str) -> list[tuple[str | None, str]]:
    """The readings of ``NAME``, ``CONTEXT/NAME`` or ``aegis://CONTEXT/NAME``, in the order
    they are tried: the whole text as a name, then each context/name split, the
    shortest name first. Names may contain '/', so only a lookup can tell which one is
    meant; readings with an invalid context or name are skipped.
    """
    text = raw.removeprefix("aegis://")
    readings: list[tuple[str | None, str]] = []
    for context, name in [(None, text)] + [(text[:i], text[i + 1 :]) for i in range(len(text) - 1, 0, -1)
                                           if text[i] == "/"]:
        try:
            readings.append((None if context is None else validate_context(context), validate_name(name)))
        except UsageError:
            continue
    if not readings:
        validate_name(text)  # raises the message for the plain reading
    return readings
