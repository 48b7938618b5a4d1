"""Credential operations on an unlocked vault: add, read, list, rotate, revoke, destroy.

Each change and its audit entry commit in one transaction: there is no change without
its evidence, and no evidence of a change that did not happen. Metadata (name, service,
context, tags, notes, fields...) is sealed as one blob bound to (vault, row, revision);
each value is sealed bound to (vault, row, version). Lookups go through the blind index.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from types import MappingProxyType
from typing import NamedTuple

from aegis_tui.core.actor import Actor
from aegis_tui.core.audit import Outcome, Risk
from aegis_tui.core.crypto import (
    associated_data,
    blind_index,
    constant_time_equal,
    extend_associated_data,
    random_hex,
)
from aegis_tui.core.errors import ConflictError, IntegrityError, NotFoundError, RefusedError, UsageError
from aegis_tui.core.models import (
    Credential,
    Kind,
    Status,
    VersionInfo,
    VersionState,
    name_key,
    reference_candidates,
    validate_context,
    validate_free_text,
    validate_name,
    validate_tags,
    validate_value,
)
from aegis_tui.core.secret import Secret
from aegis_tui.core.store.base import CredentialRecord, VersionRecord
from aegis_tui.core.vault import Vault


class CredentialFilter(NamedTuple):
    context: str | None = None
    service: str | None = None
    status: Status | None = None
    kind: Kind | None = None

    def matches(self, credential: Credential) -> bool:
        if self.context is not None and not (
            credential.context == self.context or credential.context.startswith(self.context + "/")
        ):
            return False
        if self.service is not None and credential.service.casefold() != self.service.casefold():
            return False
        if self.status is not None and credential.status is not self.status:
            return False
        return self.kind is None or credential.kind is self.kind


_decode_json = json.JSONDecoder().decode  # skips json.loads' per-call encoding sniffing


@contextmanager
def gc_paused() -> Iterator[None]:
    """Decoding 100k records allocates millions of small objects that all survive; the
    cyclic garbage collector would rescan them again and again (~30% of a large list)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Credentials:
    """The credential operations of one unlocked vault."""

    def __init__(self, vault: Vault, actor: Actor | None = None) -> None:
        """``actor``: who the audit log names (the broker passes the requesting agent)."""
        self._vault = vault
        self._actor = actor or vault.actor
        self._store = vault.store
        self._meta_prefix = associated_data(vault.vault_id, "credentials")
        self._value_prefix = associated_data(vault.vault_id, "versions")

    # -- sealing helpers ----------------------------------------------------------------
    def _index(self, name: str) -> bytes:
        return blind_index(self._vault.keys.index_key, name_key(name))

    def _meta_aad(self, credential_id: str, rev: int) -> bytes:
        return extend_associated_data(self._meta_prefix, credential_id, "meta", rev)

    def _value_aad(self, credential_id: str, version: int) -> bytes:
        return extend_associated_data(self._value_prefix, credential_id, "value", version)

    def _seal_meta(self, credential: Credential, rev: int) -> CredentialRecord:
        blob = json.dumps(credential.to_record(), separators=(",", ":")).encode()
        sealed = self._vault.keys.sealer.seal(blob, self._meta_aad(credential.id, rev))
        return CredentialRecord(credential.id, self._index(credential.name), rev, sealed)

    def _open_meta(self, record: CredentialRecord, *, by_name: bool = True) -> Credential:
        plain = self._vault.keys.sealer.open(record.sealed, self._meta_aad(record.id, record.rev), "a credential")
        try:
            credential = Credential.from_record(_decode_json(plain.decode("utf-8")))
        except (ValueError, TypeError, IndexError, KeyError):
            raise IntegrityError("a credential record is in a format this aegis-vault does not know") from None
        # The name index is not sealed: when a record was found *by name*, check the index
        # still belongs to that name, or a swapped index would make one name silently
        # resolve to another credential's value. A listing shows the sealed name itself.
        if credential.id != record.id or (
            by_name and not constant_time_equal(record.name_index, self._index(credential.name))
        ):
            raise IntegrityError("a credential record does not belong to its row: the vault was tampered with")
        return credential

    def _locate(self, name: str) -> tuple[CredentialRecord, Credential]:
        record = self._store.find_credential(self._index(name))
        if record is None:
            raise NotFoundError(f"no credential named {validate_name(name)!r}; see: aegis-vault list")
        return record, self._open_meta(record)

    def _audit(self, operation: str, credential: Credential, risk: Risk = Risk.MEDIUM,
               outcome: Outcome = Outcome.OK, **detail: object) -> None:
        self._vault.audit.append(operation, self._actor, outcome=outcome, risk=risk,
                                 target=credential.name, context=credential.context, detail=detail)

    # -- reading --------------------------------------------------------------------------
    def find(self, name: str) -> Credential:
        return self._locate(name)[1]

    def resolve(self, reference: str) -> Credential:
        """A credential by ``NAME``, ``CONTEXT/NAME`` or ``aegis://CONTEXT/NAME``.

        A credential outside the named context is "not found", never "forbidden".
        """
        for context, name in reference_candidates(reference):
            record = self._store.find_credential(self._index(name))
            if record is None:
                continue
            credential = self._open_meta(record)
            if context is None or credential.context == context:
                return credential
        raise NotFoundError(f"no credential matches {reference!r}; see: aegis-vault list")

    def list(self, where: CredentialFilter | None = None) -> list[Credential]:
        with gc_paused():
            found = [self._open_meta(record, by_name=False) for record in self._store.list_credentials()]
            if where is not None and where != CredentialFilter():
                found = [c for c in found if where.matches(c)]
            found.sort(key=lambda c: (c.context, c.name.casefold()))
        return found

    def versions(self, name: str) -> list[VersionInfo]:
        record, credential = self._locate(name)
        return [self._version_info(credential, v) for v in self._store.list_versions(record.id)]

    def _version_info(self, credential: Credential, version: VersionRecord) -> VersionInfo:
        now = self._vault.clock()
        if version.version == credential.current_version and credential.status is not Status.REVOKED:
            state = VersionState.CURRENT
        elif version.retires_at is not None and version.retires_at > now and credential.status is not Status.REVOKED:
            state = VersionState.PREVIOUS
        else:
            state = VersionState.RETIRED
        return VersionInfo(version.version, version.created_at, version.retires_at, state)

    def reveal(self, name: str, version: int | None = None, purpose: str = "get", grant: str | None = None, *,
               allow_retired: bool = False, allow_expired: bool = False) -> Secret:
        """The value of the current (or a given) version. Audited, success or refusal;
        ``grant`` names the access grant a broker handed it out under.

        A retired version and an expired credential are refused: a retired value's
        overlap window has ended, so nothing should still use it. ``allow_retired`` is the
        owner reading history on purpose (audited as high risk); ``allow_expired`` is the
        rotation manager handing an expired value to the provider hook that replaces it."""
        record, credential = self._locate(name)
        evidence: dict[str, object] = {"grant": grant} if grant else {}
        return self._reveal(record, credential, version, purpose, evidence,
                            allow_retired=allow_retired, allow_expired=allow_expired)

    def reveal_id(self, credential_id: str, purpose: str, evidence: dict[str, object]) -> Secret:
        """``reveal`` by row id, for a broker that resolved the name moments ago (it re-reads
        the row here, inside its transaction, to see a revocation since). ``evidence``
        (the grant, the requesting process) goes into the audit entry."""
        record = self._store.get_credential(credential_id)
        if record is None:
            raise NotFoundError("the credential was destroyed meanwhile")
        return self._reveal(record, self._open_meta(record, by_name=False), None, purpose, evidence)

    def _reveal(self, record: CredentialRecord, credential: Credential, version: int | None, purpose: str,
                evidence: dict[str, object], *, allow_retired: bool = False, allow_expired: bool = False) -> Secret:
        wanted = credential.current_version if version is None else version
        if credential.status is Status.REVOKED:
            self._audit("read", credential, Risk.HIGH, Outcome.DENIED, version=wanted, reason="revoked", via=purpose)
            raise RefusedError(f"credential {credential.name!r} is revoked; its values are no longer handed out")
        days_left = credential.days_to_expiry(self._vault.clock())
        if days_left is not None and days_left < 0 and not allow_expired:
            self._audit("read", credential, Risk.HIGH, Outcome.DENIED, version=wanted, reason="expired", via=purpose)
            raise RefusedError(f"credential {credential.name!r} expired on {credential.expires}; rotate it and set "
                               "a new expiry (aegis-vault edit NAME --expires DATE)")
        stored = {v.version: v for v in self._store.list_versions(record.id)}
        if wanted not in stored:
            raise NotFoundError(f"credential {credential.name!r} has no version {wanted}")
        info = self._version_info(credential, stored[wanted])
        if info.state is VersionState.RETIRED and not allow_retired:
            self._audit("read", credential, Risk.HIGH, Outcome.DENIED, version=wanted, reason="retired", via=purpose)
            raise RefusedError(f"version {wanted} of {credential.name!r} is retired: its overlap window has ended "
                               "(the owner can still read it with --retired)")
        value = self._vault.keys.sealer.open(stored[wanted].sealed, self._value_aad(record.id, wanted), "a secret value")
        risk = Risk.HIGH if credential.status is Status.EXPOSED or info.state is VersionState.RETIRED else Risk.MEDIUM
        self._audit("read", credential, risk, version=wanted, state=info.state, via=purpose, **evidence)
        return Secret(value)

    def values(self, *, active_only: bool) -> dict[str, list[tuple[int, Secret]]]:
        """(version, value) pairs by credential name, for detection, never for handing out.

        ``active_only``: the values still valid (current, or previous inside the overlap
        window) of credentials not revoked: what output masking must hide. Otherwise every
        value the vault still holds, retired and revoked ones too: a leaked old key still
        matters to a scan. Not audited per value; the caller records one entry."""
        now = self._vault.clock()
        found: dict[str, list[tuple[int, Secret]]] = {}
        sealer = self._vault.keys.sealer
        for record in self._store.list_credentials():
            credential = self._open_meta(record, by_name=False)
            if active_only and credential.status is Status.REVOKED:
                continue
            found[credential.name] = [
                (v.version, Secret(sealer.open(v.sealed, self._value_aad(record.id, v.version), "a secret value")))
                for v in self._store.list_versions(record.id)
                if not active_only or v.version == credential.current_version
                or (v.retires_at is not None and v.retires_at > now)
            ]
        return found

    # -- changing --------------------------------------------------------------------------
    def add(
        self,
        name: str,
        value: Secret,
        *,
        kind: Kind = Kind.SECRET,
        service: str = "",
        context: str = "",
        tags: list[str] | None = None,
        notes: str = "",
        url: str = "",
        expires: str | None = None,
        rotation_days: int | None = None,
        fields: dict[str, str] | None = None,
    ) -> Credential:
        if rotation_days is not None and rotation_days <= 0:
            raise UsageError("a rotation period is a positive number of days")
        now = self._vault.clock()
        credential = Credential(
            id=random_hex(16),
            name=validate_name(name),
            kind=kind,
            service=validate_free_text(service, "service", 128),
            context=validate_context(context),
            tags=validate_tags(tags or []),
            notes=validate_free_text(notes, "notes"),
            url=validate_free_text(url, "url", 2048),
            expires=expires,
            rotation_days=rotation_days,
            fields=MappingProxyType({validate_free_text(k, "field name", 64): validate_free_text(v, "field value")
                                     for k, v in (fields or {}).items()}),
            created_at=now,
            updated_at=now,
            rotated_at=now,
            current_version=1,
        )
        _check_value(kind, value)
        with self._store.transaction():
            if self._store.find_credential(self._index(credential.name)) is not None:
                raise ConflictError(f"a credential named {credential.name!r} already exists; use rotate to change its value")
            self._store.insert_credential(self._seal_meta(credential, rev=1))
            self._put_value(credential.id, 1, value, now)
            self._audit("add", credential, kind=str(kind), version=1)
        return credential

    def _put_value(self, credential_id: str, version: int, value: Secret, now: float) -> None:
        sealed = self._vault.keys.sealer.seal(value.reveal(), self._value_aad(credential_id, version))
        self._store.put_version(VersionRecord(credential_id, version, sealed, now, None))

    def _save(self, record: CredentialRecord, credential: Credential) -> None:
        self._store.update_credential(self._seal_meta(credential, record.rev + 1), expected_rev=record.rev)

    def rotate(self, name: str, value: Secret, overlap_seconds: int | None = None) -> Credential:
        """A new current version; the old one stays valid for the overlap window."""
        if overlap_seconds is not None and overlap_seconds < 0:
            raise UsageError("the overlap window cannot be negative")
        with self._store.transaction():
            record, credential = self._locate(name)
            if credential.status is Status.REVOKED:
                raise RefusedError(f"credential {credential.name!r} is revoked; add a new credential instead")
            _check_value(credential.kind, value)
            now = self._vault.clock()
            overlap = credential.overlap_seconds if overlap_seconds is None else overlap_seconds
            for old in self._store.list_versions(record.id):
                if old.version == credential.current_version:
                    self._store.put_version(VersionRecord(old.credential_id, old.version, old.sealed,
                                                          old.created_at, now + overlap))
                elif old.retires_at is None or old.retires_at > now:
                    self._store.put_version(VersionRecord(old.credential_id, old.version, old.sealed,
                                                          old.created_at, now))
            new_version = credential.current_version + 1
            self._put_value(record.id, new_version, value, now)
            rotated = credential.evolve(current_version=new_version, rotated_at=now, updated_at=now, failing_since=None,
                                        status=Status.ACTIVE if credential.status is Status.EXPOSED else credential.status)
            self._save(record, rotated)
            self._audit("rotate", rotated, version=new_version, overlap_seconds=overlap)
        return rotated

    def edit(self, name: str, /, **changes: object) -> Credential:  # changes may hold a new "name"
        """Change metadata (never the value: that is ``rotate``). Renames keep history."""
        allowed = {"name", "kind", "service", "context", "tags", "notes", "url", "expires", "rotation_days",
                   "overlap_seconds", "fields", "rotation_policy"}
        unknown = set(changes) - allowed
        if unknown:
            raise UsageError(f"cannot edit {', '.join(sorted(unknown))}")
        clean: dict[str, object] = {}
        for key, value in changes.items():
            if key == "name":
                clean[key] = validate_name(str(value))
            elif key in ("service", "url"):
                clean[key] = validate_free_text(str(value), key, 128 if key == "service" else 2048)
            elif key == "notes":
                clean[key] = validate_free_text(str(value), "notes")
            elif key == "context":
                clean[key] = validate_context(str(value))
            elif key == "tags":
                clean[key] = validate_tags(list(value))  # type: ignore[call-overload]
            elif key == "fields":
                clean[key] = MappingProxyType({validate_free_text(k, "field name", 64): validate_free_text(v, "field value")
                                               for k, v in dict(value).items()})  # type: ignore[call-overload]
            elif key == "rotation_days" and value is not None and int(value) <= 0:  # type: ignore[call-overload]
                raise UsageError("a rotation period is a positive number of days")
            elif key == "rotation_policy":
                from aegis_tui.core.lifecycle.policy import RotationPolicy

                clean[key] = MappingProxyType(RotationPolicy.from_mapping(dict(value)).to_dict())  # type: ignore[call-overload]
            else:
                clean[key] = value
        with self._store.transaction():
            record, credential = self._locate(name)
            if "kind" in clean and clean["kind"] is Kind.TOTP and credential.kind is not Kind.TOTP:
                raise UsageError("a credential cannot become a TOTP entry; add a new one with its seed")
            changed = credential.evolve(**clean, updated_at=self._vault.clock())
            if changed.name.casefold() != credential.name.casefold():
                if self._store.find_credential(self._index(changed.name)) is not None:
                    raise ConflictError(f"a credential named {changed.name!r} already exists")
            self._save(record, changed)
            self._audit("edit", changed, fields=sorted(clean), previous_name=credential.name)
        return changed

    def set_status(self, name: str, status: Status, reason: str = "") -> Credential:
        """Revoke (retires every version at once) or mark exposed."""
        with self._store.transaction():
            record, credential = self._locate(name)
            now = self._vault.clock()
            if status is Status.REVOKED:
                for old in self._store.list_versions(record.id):
                    if old.retires_at is None or old.retires_at > now:
                        self._store.put_version(VersionRecord(old.credential_id, old.version, old.sealed,
                                                              old.created_at, now))
            changed = credential.evolve(status=status, updated_at=now)
            self._save(record, changed)
            operation = "revoke" if status is Status.REVOKED else f"status.{status}"
            self._audit(operation, changed, Risk.HIGH if status is not Status.ACTIVE else Risk.MEDIUM,
                        previous=str(credential.status), reason=reason)
        return changed

    def mark_failing(self, name: str, *, via: str) -> Credential:
        """A service rejected the value (git's ``erase``): flag it until the next rotation."""
        with self._store.transaction():
            record, credential = self._locate(name)
            changed = credential.evolve(failing_since=credential.failing_since or self._vault.clock())
            self._save(record, changed)
            self._audit("failing", changed, Risk.HIGH, Outcome.FAILED, via=via)
        return changed

    def destroy(self, name: str) -> Credential:
        """Delete the credential and its whole history, overwriting the freed pages."""
        with self._store.transaction():
            record, credential = self._locate(name)
            versions = len(self._store.list_versions(record.id))
            self._store.delete_credential(record.id)
            self._audit("destroy", credential, Risk.HIGH, versions=versions)
        self._store.compact_deleted()
        return credential


def _check_value(kind: Kind, value: Secret) -> None:
    """Refuse a value that cannot work, at the moment it is entered."""
    validate_value(value.reveal())
    if kind is Kind.TOTP:
        from aegis_tui.core.totp import validate_totp

        validate_totp(value)
