"""Access grants: who may use which credential, for what, for how long, how often.

A grant names one credential, or a selector (``service:github``, ``tag:ci``) covering
every credential that matches it at the time of use; a context it applies in; an
agent session (or none: a standing grant, for daemons); scope labels (free text such
as ``repo:push``: a request must name only scopes the grant lists; a grant without
scopes covers any); a number of uses (once, N, unlimited); and an expiry. Nothing is
ever deleted: revoked, expired and used-up grants stay on record for access reviews.

A grant gives rights, and using a secret is not reading it: ``inject`` lets a command
that ``run`` starts (or git's own transport) receive the value; ``reveal`` hands the raw
value to the caller (``get``, ``git credential fill``). Agent sessions get ``inject``
only unless a human explicitly approved a reveal. An inject grant may be bound to one
exact command line, to one program (its resolved executable) with any arguments, and
to a working-folder subtree; the broker checks these against what the kernel says about
the requesting process, never against what the client claims.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from aegis_tui.core.actor import Actor
from aegis_tui.core.store.records import SealedRecords
from aegis_tui.core.agents.sessions import context_contains
from aegis_tui.core.audit import Risk
from aegis_tui.core.crypto import random_hex
from aegis_tui.core.errors import AegisError, NotFoundError, RefusedError, UsageError
from aegis_tui.core.models import Credential, validate_context, validate_free_text
from aegis_tui.core.vault import Vault

GRANT_KIND = "grant"
_SCOPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/*-]{0,63}$")
_SELECTOR = re.compile(r"^(service|tag):(.{1,128})$")
INJECT, REVEAL = "inject", "reveal"
RIGHTS = (INJECT, REVEAL)


class Use(NamedTuple):
    """What a request would do with a value, as the broker verified it."""

    right: str  # INJECT or REVEAL
    command: tuple[str, ...] = ()  # the argv that will receive the value (inject)
    program: str = ""  # its resolved executable
    cwd: str = ""


def validate_scopes(raw: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    scopes = tuple(sorted({scope.strip() for scope in raw if scope.strip()}))
    for scope in scopes:
        if not _SCOPE.match(scope):
            raise UsageError(f"scope {scope!r} must be letters, digits and . _ : / * - (64 at most), like repo:push")
    return scopes


def validate_selector(raw: str) -> str:
    if raw and not _SELECTOR.match(raw):
        raise UsageError("a selector is service:NAME or tag:NAME")
    return raw


def validate_grant_id(raw: str) -> str:
    if not (raw.startswith("gr_") and len(raw) == 19 and all(ch in "0123456789abcdef" for ch in raw[3:])):
        raise UsageError("a grant id looks like gr_0123456789abcdef; see: aegis-vault grants list")
    return raw


class GrantSpentError(AegisError):
    """The grant stopped covering the request between finding and using it (another
    request took its last use, or it was revoked or expired meanwhile)."""


class Grant(NamedTuple):
    id: str
    label: str  # what a human reads: the credential's name, or the selector
    credential_id: str | None = None
    selector: str = ""
    context: str = ""
    session_id: str | None = None
    scopes: tuple[str, ...] = ()
    uses_left: int | None = None  # None: unlimited
    expires_at: float | None = None
    created_at: float = 0.0
    created_by: str = ""
    reason: str = ""
    revoked_at: float | None = None
    revoked_reason: str = ""
    # Approved for a request made outside any session: it covers only such requests, not
    # every session's agents (a standing grant, made with ``grants add``, covers all).
    outside_sessions: bool = False
    rights: tuple[str, ...] = (INJECT,)
    command: tuple[str, ...] = ()  # bound to this exact argv (empty: not bound to one)
    program: str = ""  # bound to this executable, any arguments (empty: any program)
    cwd: str = ""  # bound to this folder and below (empty: anywhere)

    @property
    def audience(self) -> str:
        """Who may use it, in words: a session id, "no session" or "standing"."""
        return self.session_id or ("no session" if self.outside_sessions else "standing")

    def state(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        if self.uses_left is not None and self.uses_left <= 0:
            return "used"
        return "active"

    def covers(self, credential: Credential, session_id: str | None, scopes: tuple[str, ...], now: float,
               use: Use) -> bool:
        if self.state(now) != "active" or self.session_id not in (None, session_id):
            return False
        if self.outside_sessions and session_id is not None:
            return False
        if self.scopes and not set(scopes) <= set(self.scopes):
            return False
        return self.allows(use) and self.selects(credential)

    def allows(self, use: Use) -> bool:
        """The right, and the command and folder the grant is bound to, if any."""
        if use.right not in self.rights:
            return False
        if self.command and tuple(use.command) != self.command:
            return False
        if self.program and use.program != self.program:
            return False
        return not self.cwd or use.cwd == self.cwd or use.cwd.startswith(self.cwd.rstrip("/") + "/")

    @property
    def binding(self) -> str:
        """The command a grant is bound to, in words."""
        if self.command:
            return " ".join(self.command)
        return f"{self.program} (any arguments)" if self.program else "any command"

    def selects(self, credential: Credential) -> bool:
        """Whether ``credential`` is one this grant is for (by id, service or tag, inside
        its context), whoever asks and whatever its state: what compromise recovery and
        the access review need to find every grant to a credential."""
        if not context_contains(self.context, credential.context):
            return False
        if self.credential_id is not None:
            return self.credential_id == credential.id
        what, _, value = self.selector.partition(":")
        return (what == "service" and credential.service.casefold() == value.casefold()) or (
            what == "tag" and value in credential.tags)

    def to_dict(self) -> dict[str, Any]:
        data = self._asdict()
        data["scopes"] = list(self.scopes)
        data["rights"] = list(self.rights)
        data["command"] = list(self.command)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grant:
        # Grants recorded before rights existed handed out raw values: a standing or
        # outside-session one keeps doing so; a session's grant becomes inject-only.
        rights = data.get("rights") or ((INJECT, REVEAL) if data.get("session_id") is None else (INJECT,))
        return cls(**{**data, "scopes": tuple(data.get("scopes", ())), "rights": tuple(rights),
                      "command": tuple(data.get("command", ()))})


class Grants:
    """The grants of one unlocked vault, with a cache a long-running broker can rely on:
    decoding every grant on every request would cost more than the request itself."""

    def __init__(self, vault: Vault, actor: Actor | None = None) -> None:
        self._vault = vault
        self._actor = actor or vault.actor
        self._records = SealedRecords(vault, GRANT_KIND)
        self._cache: tuple[int, dict[str, tuple[int, Grant]]] | None = None

    def _all(self) -> dict[str, tuple[int, Grant]]:
        version = self._vault.store.change_version()
        if self._cache is None or version == 0 or self._cache[0] != version:
            decoded = {data["id"]: (rev, Grant.from_dict(data)) for rev, data in self._records.all()}
            self._cache = (version, decoded)
        return self._cache[1]

    def list(self, *, include_inactive: bool = False) -> list[Grant]:
        now = self._vault.clock()
        grants = [grant for _, grant in self._all().values() if include_inactive or grant.state(now) == "active"]
        return sorted(grants, key=lambda g: g.created_at)

    def create(
        self,
        *,
        credential: Credential | None = None,
        selector: str = "",
        context: str = "",
        session_id: str | None = None,
        scopes: tuple[str, ...] | list[str] = (),
        uses: int | None = None,
        ttl_seconds: float | None = None,
        reason: str = "",
        created_by: str | None = None,
        outside_sessions: bool = False,
        rights: tuple[str, ...] = (INJECT,),
        command: tuple[str, ...] = (),
        program: str = "",
        cwd: str = "",
    ) -> Grant:
        if (credential is None) == (not selector):
            raise UsageError("a grant names either one credential or a selector (service:NAME or tag:NAME)")
        if uses is not None and uses <= 0:
            raise UsageError("a grant's number of uses is a positive number (or unlimited)")
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise UsageError("a grant's duration must be positive")
        if not rights or set(rights) - set(RIGHTS):
            raise UsageError("a grant's rights are inject and/or reveal")
        if (command or program) and INJECT not in rights:
            raise UsageError("only an inject grant can be bound to a command")
        now = self._vault.clock()
        grant = Grant(
            id="gr_" + random_hex(8),
            label=credential.name if credential is not None else validate_selector(selector),
            credential_id=credential.id if credential is not None else None,
            selector=validate_selector(selector),
            context=validate_context(context if credential is None or context else credential.context),
            session_id=session_id,
            scopes=validate_scopes(list(scopes)),
            uses_left=uses,
            expires_at=None if ttl_seconds is None else now + ttl_seconds,
            created_at=now,
            created_by=created_by or self._actor.describe(),
            reason=validate_free_text(reason, "reason", 500),
            outside_sessions=outside_sessions and session_id is None,
            rights=tuple(r for r in RIGHTS if r in rights),
            command=tuple(command),
            program=program,
            cwd=cwd,
        )
        with self._vault.store.transaction():
            self._records.insert(grant.to_dict())
            self._audit("grant.create", grant, Risk.HIGH if REVEAL in grant.rights and session_id else Risk.MEDIUM,
                        uses=uses, ttl_seconds=ttl_seconds, scopes=list(grant.scopes), session=session_id,
                        rights=list(grant.rights), bound_to=grant.program or ("one command line" if grant.command
                                                                               else "any command"), cwd=cwd or None)
        return grant

    def get(self, grant_id: str) -> Grant:
        found = self._all().get(validate_grant_id(grant_id))
        if found is None:
            raise NotFoundError(f"no grant {grant_id}; see: aegis-vault grants list")
        return found[1]

    def _load(self, grant_id: str) -> tuple[int, Grant]:
        """The stored grant and its revision, read fresh (inside the caller's transaction)."""
        found = self._records.get(validate_grant_id(grant_id))
        if found is None:
            raise NotFoundError(f"no grant {grant_id}; see: aegis-vault grants list")
        return found[0], Grant.from_dict(found[1])

    def shorten(self, grant_id: str, expires_at: float) -> Grant:
        """End an active grant earlier (an access review narrowing it). Never later: a
        longer grant is a new approval, not something a review may hand out."""
        with self._vault.store.transaction():
            rev, grant = self._load(grant_id)
            now = self._vault.clock()
            if grant.state(now) != "active":
                raise RefusedError(f"grant {grant.id} is {grant.state(now)}; there is nothing to shorten")
            if expires_at <= now:
                raise UsageError("that end time has passed; to end a grant now, revoke it")
            if grant.expires_at is not None and expires_at >= grant.expires_at:
                raise RefusedError(f"grant {grant.id} already ends sooner; a review only shortens grants")
            shortened = grant._replace(expires_at=expires_at)
            self._records.update(shortened.to_dict(), rev)
            self._audit("grant.shorten", shortened, Risk.MEDIUM, previous_expires_at=grant.expires_at,
                        expires_at=expires_at)
        return shortened

    def revoke(self, grant_id: str, *, reason: str = "") -> Grant:
        with self._vault.store.transaction():
            rev, grant = self._load(grant_id)
            if grant.revoked_at is not None:
                return grant
            revoked = grant._replace(revoked_at=self._vault.clock(), revoked_reason=validate_free_text(reason, "reason", 500))
            self._records.update(revoked.to_dict(), rev)
            self._audit("grant.revoke", revoked, Risk.MEDIUM, reason=reason)
        return revoked

    def revoke_for_session(self, session_id: str, *, reason: str) -> int:
        """Revoke every still-active grant of a session (inside the caller's transaction)."""
        now = self._vault.clock()
        count = 0
        for rev, data in self._records.all():
            grant = Grant.from_dict(data)
            if grant.session_id == session_id and grant.revoked_at is None:
                self._records.update(grant._replace(revoked_at=now, revoked_reason=reason).to_dict(), rev)
                count += grant.state(now) == "active"
        return count

    def find(self, credential: Credential, session_id: str | None, scopes: tuple[str, ...], use: Use) -> Grant | None:
        """The grant that lets this session use this credential this way, for these
        scopes, if any. A session's own grants win over standing ones; the narrowest
        (one credential, one command) and oldest first."""
        now = self._vault.clock()
        matches = [grant for _, grant in self._all().values()
                   if grant.covers(credential, session_id, scopes, now, use)]
        if not matches:
            return None
        matches.sort(key=lambda g: (g.session_id is None, g.credential_id is None, not (g.command or g.program),
                                    g.created_at))
        return matches[0]

    def consume(self, grant: Grant) -> Grant:
        """Count one use of a limited grant (inside the caller's transaction). Unlimited
        grants are not rewritten on every use: the audit log records each use anyway."""
        if grant.uses_left is None:
            return grant
        found = self._records.get(grant.id)
        if found is None:
            raise GrantSpentError(f"grant {grant.id} vanished")
        rev, data = found
        current = Grant.from_dict(data)
        if current.state(self._vault.clock()) != "active":
            raise GrantSpentError(f"grant {grant.id} is no longer active")
        used = current._replace(uses_left=(current.uses_left or 0) - 1)
        self._records.update(used.to_dict(), rev)
        return used

    def _audit(self, operation: str, grant: Grant, risk: Risk, **detail: object) -> None:
        self._vault.audit.append(operation, self._actor, risk=risk, target=grant.label, context=grant.context,
                                 detail={"grant": grant.id, **detail})
