"""Incident records: what happened to a compromised credential, and what was done about it.

An incident follows the security team's template (the seed's "Incident Template"):
when, how severe, which kind of credential, the impact, the response as a timeline of
steps, the root cause and the prevention. It is opened when a credential is found
exposed (by a scan, by ``run``'s masking, in a review, or by hand), gathers one step
per response action (marking it exposed, revoking grants, rotating, running a revoke
hook), and closes only once a root cause and a prevention are written down: an
incident closed without them teaches nothing, which is what the template exists for.

Incidents live as sealed records (kind ``incident``): a copy of the vault file shows
neither the credential's name nor any of the texts. No incident holds a secret value;
the audit log records who opened, edited and closed one, never the texts themselves.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any, NamedTuple

from aegis_tui.core.actor import Actor
from aegis_tui.core.store.records import SealedRecords
from aegis_tui.core.audit import Risk
from aegis_tui.core.crypto import random_hex
from aegis_tui.core.errors import NotFoundError, UsageError
from aegis_tui.core.models import Credential, validate_free_text
from aegis_tui.core.paths import write_private_file
from aegis_tui.core.vault import Vault

INCIDENT_KIND = "incident"
SEVERITIES = ("critical", "high", "medium", "low")
OUTCOMES = ("ok", "failed", "pending")
EDITABLE = ("severity", "impact", "root_cause", "prevention")
SHORT_ID = 8  # how many hex characters lists show; any unique prefix of 4 or more finds one
_MIN_PREFIX = 4
_HEX = re.compile(r"^[0-9a-f]+$")
_SOURCE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_TEXT_LIMIT = 2000
_STEP_LIMIT = 200
_CONTROL = ("Cc", "Cf", "Zl", "Zp")


class Step(NamedTuple):
    """One response action on the incident's timeline."""

    at: float
    step: str  # what was done: "marked exposed", "revoked 3 grants", "rotated to version 4"
    outcome: str = "ok"  # ok | failed | pending
    detail: str = ""


class Incident(NamedTuple):
    id: str
    credential: str  # the credential's name when the incident was opened (it may be renamed later)
    credential_id: str
    context: str
    credential_type: str  # the credential's kind: api_key, access_token, ...
    opened_at: float
    closed_at: float | None = None
    status: str = "open"  # open | closed
    severity: str = "high"
    source: str = "manual"  # what opened it: manual, scan, run, review, ...
    impact: str = ""
    root_cause: str = ""
    prevention: str = ""
    timeline: tuple[Step, ...] = ()

    @property
    def short_id(self) -> str:
        return self.id[:SHORT_ID]

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    def to_dict(self) -> dict[str, Any]:
        data = self._asdict()
        data["timeline"] = [list(step) for step in self.timeline]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incident:
        return cls(**{**data, "timeline": tuple(Step(*step) for step in data.get("timeline", ()))})


# -- validation ---------------------------------------------------------------------------------------
def validate_severity(raw: str) -> str:
    if raw not in SEVERITIES:
        raise UsageError(f"a severity is one of: {', '.join(SEVERITIES)}")  # never echoed: it may be a stray secret
    return raw


def validate_outcome(raw: str) -> str:
    if raw not in OUTCOMES:
        raise UsageError(f"a step's outcome is one of: {', '.join(OUTCOMES)}")
    return raw


def validate_source(raw: str) -> str:
    if not _SOURCE.match(raw):
        raise UsageError("an incident's source is one short lowercase word, like manual, scan, run or review")
    return raw


def one_line(raw: str, limit: int) -> str:
    """``raw`` with control characters and line breaks as spaces, cut to ``limit`` with an ellipsis."""
    text = " ".join("".join(" " if unicodedata.category(ch) in _CONTROL else ch for ch in raw).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _validate_field(name: str, raw: str) -> str:
    """An editable field's new value: a severity, or one line of free text."""
    if name == "severity":
        return validate_severity(raw)
    return validate_free_text(raw, name.replace("_", " "), _TEXT_LIMIT).strip()


# -- the collection -----------------------------------------------------------------------------------
class Incidents:
    """The incidents of one unlocked vault. Every change is one transaction: the record
    and its audit entry commit together or not at all."""

    def __init__(self, vault: Vault, actor: Actor | None = None) -> None:
        self._vault = vault
        self._actor = actor or vault.actor
        self._records = SealedRecords(vault, INCIDENT_KIND)

    # -- reading ------------------------------------------------------------------------------
    def list(self, *, include_closed: bool = True) -> list[Incident]:
        """Newest first."""
        incidents = [Incident.from_dict(data) for _, data in self._records.all()]
        shown = [i for i in incidents if include_closed or i.is_open]
        return sorted(shown, key=lambda i: (i.opened_at, i.id), reverse=True)

    def for_credential(self, credential_id: str) -> list[Incident]:
        """Every incident of one credential (found by id: a rename does not lose them), newest first."""
        return [incident for incident in self.list() if incident.credential_id == credential_id]

    def get(self, id_or_prefix: str) -> Incident:
        found = self._records.get(self._resolve(id_or_prefix))
        assert found is not None  # _resolve read the id from the store
        return Incident.from_dict(found[1])

    def _resolve(self, id_or_prefix: str) -> str:
        """The full id an id or a unique prefix of one names."""
        wanted = id_or_prefix.strip().lower()
        if len(wanted) < _MIN_PREFIX or not _HEX.match(wanted):
            raise UsageError(f"an incident id is hex, {_MIN_PREFIX} characters or more; "
                             "see: aegis-vault incidents list --all")
        matches = [record.id for record in self._vault.store.list_records(INCIDENT_KIND)
                   if record.id.startswith(wanted)]
        if not matches:
            raise NotFoundError(f"no incident {wanted}; see: aegis-vault incidents list --all")
        if len(matches) > 1:
            raise UsageError(f"{wanted} names {len(matches)} incidents; give more of the id")
        return matches[0]

    # -- changing -----------------------------------------------------------------------------
    def open(self, credential: Credential, *, severity: str, source: str, impact: str = "") -> Incident:
        incident = Incident(
            id=random_hex(8),
            credential=credential.name,
            credential_id=credential.id,
            context=credential.context,
            credential_type=str(credential.kind),
            opened_at=self._vault.clock(),
            severity=validate_severity(severity),
            source=validate_source(source),
            impact=_validate_field("impact", impact),
        )
        with self._vault.store.transaction():
            self._records.insert(incident.to_dict())
            self._audit("incident.open", incident, Risk.HIGH, severity=severity, source=source)
        return incident

    def add_step(self, incident_id: str, step: str, outcome: str = "ok", detail: str = "") -> Incident:
        """Append a response action, stamped with the vault's clock. Closed incidents take
        steps too: a revoke hook may report back after the incident was closed. The detail
        is often a program's output (a hook's stderr), so it is made one line and cut to
        length rather than refused: a recovery must not lose its record to a stray byte."""
        text = validate_free_text(step, "a step", _STEP_LIMIT).strip()
        if not text:
            raise UsageError("a step says what was done, like: rotated to version 4")
        entry = Step(self._vault.clock(), text, validate_outcome(outcome), one_line(detail, _TEXT_LIMIT))
        return self._change(incident_id, lambda i: i._replace(timeline=(*i.timeline, entry)),
                            "incident.step", outcome=outcome)

    def edit(self, incident_id: str, **fields: str) -> Incident:
        """Change severity, impact, root cause or prevention. The audit entry names the
        fields, never their texts: an impact statement may describe internals."""
        unknown = sorted(set(fields) - set(EDITABLE))
        if unknown:
            raise UsageError(f"an incident has no editable field {unknown[0]!r}; edit one of: {', '.join(EDITABLE)}")
        if not fields:
            raise UsageError("nothing to change: give a severity, impact, root cause or prevention")
        changes = {name: _validate_field(name, value) for name, value in fields.items()}

        def apply(incident: Incident) -> Incident:
            if not incident.is_open:
                raise UsageError(f"incident {incident.short_id} is closed; reopen it to edit it")
            return incident._replace(**changes)

        return self._change(incident_id, apply, "incident.edit", fields=sorted(changes))

    def close(self, incident_id: str) -> Incident:
        """Refused until the root cause and the prevention are written down."""
        def apply(incident: Incident) -> Incident:
            if not incident.is_open:
                return incident
            missing = [name for name in ("root_cause", "prevention") if not getattr(incident, name).strip()]
            if missing:
                words = " and ".join(name.replace("_", " ") for name in missing)
                options = " ".join(f"--{name.replace('_', '-')} TEXT" for name in missing)
                raise UsageError(f"incident {incident.short_id} needs a {words} before it closes; "
                                 f"see: aegis-vault incidents edit {incident.short_id} {options}")
            return incident._replace(status="closed", closed_at=self._vault.clock())

        return self._change(incident_id, apply, "incident.close")

    def reopen(self, incident_id: str) -> Incident:
        return self._change(incident_id, lambda i: i if i.is_open else i._replace(status="open", closed_at=None),
                            "incident.reopen")

    def _change(self, incident_id: str, apply: Callable[[Incident], Incident], operation: str,
                **detail: object) -> Incident:
        """Read, change, write and audit one incident in one transaction. A change that
        changes nothing (closing a closed incident) writes no record and no entry."""
        with self._vault.store.transaction():
            found = self._records.get(self._resolve(incident_id))
            assert found is not None  # _resolve read the id from the store, in this transaction
            rev, data = found
            incident = Incident.from_dict(data)
            changed = apply(incident)
            if changed == incident:
                return incident
            self._records.update(changed.to_dict(), rev)
            self._audit(operation, changed, Risk.MEDIUM, **detail)
        return changed

    def _audit(self, operation: str, incident: Incident, risk: Risk, **detail: object) -> None:
        self._vault.audit.append(operation, self._actor, risk=risk, target=incident.credential,
                                 context=incident.context, detail={"incident": incident.id, **detail})


# -- export -------------------------------------------------------------------------------------------
def iso_time(moment: float) -> str:
    """``2026-11-22T12:05:00Z``: the template's timestamps, UTC to the second."""
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def incident_document(incident: Incident) -> dict[str, Any]:
    """One incident in the security team's template, plus the fields that identify it and
    the structured timeline (the template's ``response`` is the timeline as sentences)."""
    return {
        "id": incident.id,
        "timestamp": iso_time(incident.opened_at),
        "severity": incident.severity,
        "credential": incident.credential,
        "credential_type": incident.credential_type,
        "context": incident.context,
        "status": incident.status,
        "closed_at": None if incident.closed_at is None else iso_time(incident.closed_at),
        "source": incident.source,
        "impact": incident.impact,
        "response": [f"{iso_time(s.at)} {s.step} ({s.outcome})" for s in incident.timeline],
        "root_cause": incident.root_cause,
        "prevention": incident.prevention,
        "timeline": [{"at": iso_time(s.at), "step": s.step, "outcome": s.outcome, "detail": s.detail}
                     for s in incident.timeline],
    }


def export_incidents(incidents: Iterable[Incident]) -> str:
    """A JSON list (indent 2), the format the team keeps its incident log in."""
    return json.dumps([incident_document(incident) for incident in incidents], indent=2, ensure_ascii=False)


def write_export(path: str, text: str) -> str:
    """Write an export readable by its owner only (0600, even where a file of looser mode
    was before: it is replaced, not rewritten); returns the path written, ``~`` expanded."""
    target = os.path.expanduser(path)
    write_private_file(target, (text + "\n").encode("utf-8"))
    return target
