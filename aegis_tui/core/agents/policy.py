"""What an agent session may see, and whether a credential may be handed out at all.

Used by the broker and by the command line alike, so an agent gets the same answers
whether or not a broker runs. Invisible credentials are "not found" with exactly the
message a missing one gets: a session cannot probe for names outside its context.
"""

from __future__ import annotations

from aegis_tui.core.agents.sessions import AgentSession
from aegis_tui.core.credentials import CredentialFilter, Credentials
from aegis_tui.core.errors import NotFoundError, RefusedError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from aegis_tui.core.gitcred import GitRequest
from aegis_tui.core.models import Credential


def visible(credential: Credential, session: AgentSession | None) -> bool:
    return session is None or session.sees(credential.context)


def list_visible(credentials: Credentials, session: AgentSession | None,
                 where: CredentialFilter | None = None) -> list[Credential]:
    return [credential for credential in credentials.list(where) if visible(credential, session)]


def parse_filter(args: dict[str, str | None]) -> CredentialFilter:
    """A listing filter from user input (the command line's options, a broker request)."""
    from aegis_tui.core.models import parse_kind, parse_status, validate_context

    return CredentialFilter(
        context=validate_context(args["context"]) if args.get("context") else None,
        service=args.get("service") or None,
        status=parse_status(args["status"]) if args.get("status") else None,
        kind=parse_kind(args["kind"]) if args.get("kind") else None,
    )


def resolve_visible(credentials: Credentials, reference: str, session: AgentSession | None) -> Credential:
    try:
        credential = credentials.resolve(reference)
    except NotFoundError:
        raise NotFoundError(f"no credential matches {reference!r}; see: aegis-vault list") from None
    if not visible(credential, session):
        raise NotFoundError(f"no credential matches {reference!r}; see: aegis-vault list")
    return credential


def resolve_git(credentials: Credentials, session: AgentSession | None, request: GitRequest) -> Credential:
    """The credential whose URL field best matches what git asks for, among those the
    session can see."""
    from aegis_tui.core.gitcred import best_match

    candidates = [(c, c.url) for c in credentials.list() if c.url and visible(c, session)]
    credential = best_match(candidates, request)
    if credential is None:
        raise NotFoundError(f"no credential for {git_location(request)}; add one with: aegis-vault add NAME --url URL")
    return credential


def git_location(request: GitRequest) -> str:
    return f"{request.protocol}://{request.host}/{request.path}".rstrip("/")


def check_usable(credential: Credential, now: float) -> None:
    """Refuse a credential no one should use any more, before anyone is asked to approve it."""
    if credential.status.value == "revoked":
        raise RefusedError(f"credential {credential.name!r} is revoked; its values are no longer handed out")
    days = credential.days_to_expiry(now)
    if days is not None and days < 0:
        raise RefusedError(f"credential {credential.name!r} expired on {credential.expires}; rotate it or ask the owner")
