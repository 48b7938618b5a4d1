"""What may be said about a credential without its value, in the shape ``list --json``,
``show --json`` and the broker's ``list`` all share (agents parse it)."""

from __future__ import annotations

import time

from aegis_tui.core.models import Credential


def iso(seconds: float | None) -> str | None:
    """ISO 8601 in UTC, to the second. ``strftime`` over ``gmtime`` is twice as fast as
    ``datetime`` here, and ``list --json`` calls this 300k times at 100k credentials."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(seconds)) if seconds else None


def credential_summary(credential: Credential, now: float) -> dict[str, object]:
    state, days = credential.rotation(now)
    return {
        "name": credential.name,
        "reference": credential.reference,
        "kind": str(credential.kind),
        "service": credential.service,
        "context": credential.context,
        "tags": list(credential.tags),
        "status": str(credential.status),
        "health": str(credential.health(now)),
        "rotation": str(state),
        "rotation_days_left": days,
        "rotation_period_days": credential.rotation_days,
        "version": credential.current_version,
        "expires": credential.expires,
        "url": credential.url,
        **_timestamps(credential),
    }


def _timestamps(credential: Credential) -> dict[str, str | None]:
    """Formatted once per distinct moment: a credential never changed since it was added
    has one moment three times (this runs 100k times in ``list --json``)."""
    created = iso(credential.created_at)
    updated = created if credential.updated_at == credential.created_at else iso(credential.updated_at)
    rotated = created if credential.rotated_at == credential.created_at else iso(credential.rotated_at)
    return {"created": created, "updated": updated, "rotated": rotated}
