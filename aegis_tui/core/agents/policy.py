"""What an agent session may see, and whether a credential may be handed out at all.

Used by the broker and by the command line alike, so an agent gets the same answers
whether or not a broker runs. Invisible credentials are "not found" with exactly the
message a missing one gets: a session cannot probe for names outside its context.
"""

from __future__ import annotations

from aegis_tui.core.agents.sessions import AgentSession
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.errors import NotFoundError, RefusedError
from aegis_tui.core.models import Credential


def visible(credential: Credential, session: AgentSession | None) -> bool:
    return session is None or session.sees(credential.context)


def list_visible(credentials: Credentials, session: AgentSession | None) -> list[Credential]:
    return [credential for credential in credentials.list() if visible(credential, session)]


def resolve_visible(credentials: Credentials, reference: str, session: AgentSession | None) -> Credential:
    try:
        credential = credentials.resolve(reference)
    except NotFoundError:
        raise NotFoundError(f"no credential matches {reference!r}; see: aegis-vault list") from None
    if not visible(credential, session):
        raise NotFoundError(f"no credential matches {reference!r}; see: aegis-vault list")
    return credential


def check_usable(credential: Credential, now: float) -> None:
    """Refuse a credential no one should use any more, before anyone is asked to approve it."""
    if credential.status.value == "revoked":
        raise RefusedError(f"credential {credential.name!r} is revoked; its values are no longer handed out")
    days = credential.days_to_expiry(now)
    if days is not None and days < 0:
        raise RefusedError(f"credential {credential.name!r} expired on {credential.expires}; rotate it or ask the owner")
