"""The quarterly access review: every credential, who can use it, and what to do about it.

A review is a snapshot (``review_rows``) and one decision per row (keep, rotate,
revoke, narrow its grants). ``Review.finish`` applies the decisions, audits each one,
and stores the finished report sealed in the vault, signed with the vault's Ed25519
audit key. The report is evidence for someone else (an auditor, the next reviewer):
exported as JSON or Markdown it verifies offline with only its embedded public key,
and against a given vault's key when one is at hand. The Markdown export verifies as
a whole: it is re-rendered from its signed block and must match, so neither the table
nor the block can be edited alone.

No report, export or audit entry holds a secret value. The audit entries of decisions
hold the action and the result, not the reviewer's note (only its length): the note
is in the signed report.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any, NamedTuple

from aegis_tui.core.agents.grants import Grant, Grants
from aegis_tui.core.store.records import SealedRecords
from aegis_tui.core.agents.sessions import context_contains
from aegis_tui.core.audit import PUBLIC_KEY_META_KEY, Outcome, Risk
from aegis_tui.core.credentials import Credentials, gc_paused
from aegis_tui.core.crypto import random_hex, verify_signature
from aegis_tui.core.errors import AegisError, IntegrityError, NotFoundError, UsageError
from aegis_tui.core.lifecycle.usage import Usage, UsageIndex
from aegis_tui.core.models import EXPIRY_WARNING_DAYS, Credential, Status, validate_free_text
from aegis_tui.core.vault import Vault

UNUSED_DAYS = 90
REVIEW_INTERVAL_DAYS = 90
REVIEW_KIND = "review"
LATEST_KIND = "review-latest"  # one small record: when the last review finished, for the reminder
REPORT_FORMAT = "aegis-review/1"
ACTIONS = ("keep", "rotate", "revoke", "narrow")
FLAGS = ("unused", "no-owner-context", "overdue", "exposed", "expiring", "expired", "standing-grants")
SIGNATURE_DOMAIN = b"aegis-vault review v1\n"
MARKDOWN_FENCE = "```aegis-review"
NOTE_LIMIT = 500
_DAY = 86400.0


class ReviewRow(NamedTuple):
    """One credential as the reviewer sees it. Never its value."""

    name: str
    context: str
    kind: str
    status: str
    age_days: int
    rotated_days_ago: int
    rotation_state: str  # none | ok | due | overdue
    rotation_days_left: int | None
    last_used: float | None
    uses: int
    sessions: tuple[str, ...]
    grants: tuple[Grant, ...]  # active grants covering it: by name, service: or tag:
    exposures: int
    incidents: int  # open ones
    expires: str | None
    flags: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The plain form stored in a report: grants reduced to what a reviewer judges."""
        data = self._asdict()
        data["sessions"] = list(self.sessions)
        data["flags"] = list(self.flags)
        data["grants"] = [_grant_summary(grant) for grant in self.grants]
        return data


class Decision(NamedTuple):
    """What the reviewer decided for one row.

    ``narrow``: ``grant_ids`` are the grants to change (empty: every standing grant that
    names this credential itself; a ``service:``/``tag:`` grant covers others too, so it
    is narrowed only when named). With ``expires_at`` they are shortened to end then,
    otherwise revoked.
    """

    action: str
    note: str = ""
    grant_ids: tuple[str, ...] = ()
    expires_at: float | None = None


# -- the rows -----------------------------------------------------------------------------
def review_rows(vault: Vault, *, now: float | None = None) -> list[ReviewRow]:
    """Every credential with its age, rotation, use, grants, exposures and incidents."""
    now = vault.clock() if now is None else now
    with gc_paused():  # ~100k long-lived objects: the cyclic collector would double the time
        index = UsageIndex(vault)
        index.refresh()
        coverage = _GrantCoverage([g for g in Grants(vault).list(include_inactive=True) if g.state(now) == "active"])
        incidents = _open_incidents(vault)
        return [_row(credential, index.get(credential.name), coverage.covering(credential),
                     incidents[credential.id], now)
                for credential in Credentials(vault).list()]


class _GrantCoverage:
    """Grants bucketed by what they name, so 10k credentials × 50k grants is a lookup,
    not a product; the context check (``Grant.covers``' rule) runs on the few candidates."""

    def __init__(self, grants: Iterable[Grant]) -> None:
        self._by_id: dict[str, list[Grant]] = defaultdict(list)
        self._by_service: dict[str, list[Grant]] = defaultdict(list)
        self._by_tag: dict[str, list[Grant]] = defaultdict(list)
        for grant in grants:
            what, _, value = grant.selector.partition(":")
            if grant.credential_id is not None:
                self._by_id[grant.credential_id].append(grant)
            elif what == "service":
                self._by_service[value.casefold()].append(grant)
            elif what == "tag":
                self._by_tag[value].append(grant)

    def covering(self, credential: Credential) -> tuple[Grant, ...]:
        candidates = [*self._by_id.get(credential.id, ()), *self._by_service.get(credential.service.casefold(), ())]
        for tag in credential.tags:
            candidates += self._by_tag.get(tag, ())
        context = credential.context
        return tuple(grant for grant in candidates  # most name the credential's own context: no call
                     if grant.context == context or context_contains(grant.context, context))


def _open_incidents(vault: Vault) -> Counter[str]:
    """Open incidents by credential id (imported here: the review needs it only now)."""
    from aegis_tui.core.lifecycle.incidents import Incidents

    return Counter(incident.credential_id for incident in Incidents(vault).list() if incident.status == "open")


def _row(credential: Credential, usage: Usage, grants: tuple[Grant, ...], incidents: int, now: float) -> ReviewRow:
    state, days_left = credential.rotation(now)
    age = int((now - credential.created_at) // _DAY)
    return ReviewRow(
        name=credential.name, context=credential.context, kind=str(credential.kind), status=str(credential.status),
        age_days=age, rotated_days_ago=int((now - (credential.rotated_at or credential.created_at)) // _DAY),
        rotation_state=str(state), rotation_days_left=days_left, last_used=usage.last_used, uses=usage.uses,
        sessions=tuple(sorted(usage.sessions, key=usage.sessions.__getitem__, reverse=True)),
        grants=grants, exposures=usage.leaks, incidents=incidents, expires=credential.expires,
        flags=_flags(credential, usage, grants, age, str(state), now),
    )


def _flags(credential: Credential, usage: Usage, grants: tuple[Grant, ...], age_days: int, rotation_state: str,
           now: float) -> tuple[str, ...]:
    """What a reviewer should look at. "unused" only once the credential is old enough to
    have been used: one added last week is not unused, just new."""
    expiry = credential.days_to_expiry(now)
    unused = age_days >= UNUSED_DAYS and (usage.last_used is None or now - usage.last_used > UNUSED_DAYS * _DAY)
    exposed = credential.status is Status.EXPOSED or (
        usage.last_leak is not None and usage.last_leak >= (credential.rotated_at or credential.created_at))
    raised = {
        "unused": unused,
        "no-owner-context": not credential.context,
        "overdue": rotation_state == "overdue",
        "exposed": exposed,
        "expiring": expiry is not None and 0 <= expiry <= EXPIRY_WARNING_DAYS,
        "expired": expiry is not None and expiry < 0,
        "standing-grants": any(grant.audience == "standing" for grant in grants),
    }
    return tuple(flag for flag in FLAGS if raised[flag])


def _grant_summary(grant: Grant) -> dict[str, Any]:
    return {"id": grant.id, "label": grant.label, "context": grant.context, "audience": grant.audience,
            "scopes": list(grant.scopes), "uses_left": grant.uses_left, "expires_at": grant.expires_at}


# -- deciding and applying ------------------------------------------------------------------
class Review:
    """One review in progress: the rows as they were at the start, and the decisions."""

    def __init__(self, vault: Vault, rows: list[ReviewRow], started_at: float) -> None:
        self._vault = vault
        self.id = "rv_" + random_hex(8)
        self.rows = rows
        self.started_at = started_at
        self.decisions: dict[str, Decision] = {}
        self.report: ReviewReport | None = None
        self._by_name = {row.name: row for row in rows}

    @classmethod
    def start(cls, vault: Vault) -> Review:
        now = vault.clock()
        return cls(vault, review_rows(vault, now=now), now)

    def row(self, name: str) -> ReviewRow:
        found = self._by_name.get(name)
        if found is None:
            raise NotFoundError(f"{name!r} is not in this review")
        return found

    @property
    def undecided(self) -> list[str]:
        return [row.name for row in self.rows if row.name not in self.decisions]

    def decide(self, name: str, decision: Decision) -> None:
        """Record (or replace) the decision for one row; checked now, applied at ``finish``."""
        row = self.row(name)
        if decision.action not in ACTIONS:
            raise UsageError(f"unknown decision {decision.action!r}; choose one of: {', '.join(ACTIONS)}")
        validate_free_text(decision.note, "note", NOTE_LIMIT)
        if decision.action != "narrow" and (decision.grant_ids or decision.expires_at is not None):
            raise UsageError("only a narrow decision names grants or an end time")
        unknown = set(decision.grant_ids) - {grant.id for grant in row.grants}
        if unknown:
            raise UsageError(f"{', '.join(sorted(unknown))} is not an active grant covering {name!r}")
        self.decisions[name] = decision._replace(grant_ids=tuple(decision.grant_ids))

    def finish(self, rotate: Callable[[str], str]) -> ReviewReport:
        """Apply every decision (each with its audit entry), then sign and store the report.

        ``rotate(name)`` makes a new value and returns a one-line outcome, or raises an
        ``AegisError``: the row is then recorded as failed and the review goes on.
        """
        if self.report is not None:
            raise UsageError(f"review {self.id} is finished already; start a new one")
        left = self.undecided
        if left:
            raise UsageError(f"{len(left)} credential(s) still have no decision (first: {left[0]!r}); "
                             "decide every row before finishing")
        keeps = [row for row in self.rows if self.decisions[row.name].action == "keep"]
        with self._vault.store.transaction(), self._vault.audit.signing_deferred():  # they change nothing: one commit
            done = {row.name: self._apply(row, self.decisions[row.name], rotate) for row in keeps}
        for row in self.rows:  # each change durable on its own: a rotation may have reached a provider
            if row.name not in done:
                done[row.name] = self._apply(row, self.decisions[row.name], rotate)
        applied = [done[row.name] for row in self.rows]
        report = self._report(applied)
        with self._vault.store.transaction():
            SealedRecords(self._vault, REVIEW_KIND).insert(report.to_dict())
            _remember_latest(self._vault, report)
            self._vault.audit.append(
                "review.finish", self._vault.actor, risk=Risk.MEDIUM, target="vault",
                detail={"review": self.id, "decisions": len(applied),
                        "failed": sum(entry["result"] == "failed" for entry in applied)})
        self.report = report
        return report

    def _apply(self, row: ReviewRow, decision: Decision, rotate: Callable[[str], str]) -> dict[str, Any]:
        """Apply one decision and audit it; a failure is recorded, not raised."""
        try:
            with self._vault.store.transaction():
                outcome = self._act(row, decision, rotate)
                self._audit(row, decision, Outcome.OK)
            result = "applied"
        except AegisError as err:
            outcome, result = str(err), "failed"
            self._audit(row, decision, Outcome.FAILED)
        return {"name": row.name, "action": decision.action, "note": decision.note,
                "grant_ids": list(decision.grant_ids), "expires_at": decision.expires_at,
                "result": result, "outcome": outcome}

    def _act(self, row: ReviewRow, decision: Decision, rotate: Callable[[str], str]) -> str:
        if decision.action == "keep":
            return "kept"
        if decision.action == "rotate":
            return rotate(row.name)
        grants = Grants(self._vault)
        if decision.action == "revoke":
            Credentials(self._vault).set_status(row.name, Status.REVOKED, reason=f"access review {self.id}")
            direct = [grant for grant in row.grants if grant.credential_id is not None]
            for grant in direct:
                grants.revoke(grant.id, reason=f"access review {self.id}: credential revoked")
            return f"revoked, with {len(direct)} grant(s) naming it"
        chosen = decision.grant_ids or tuple(
            grant.id for grant in row.grants if grant.audience == "standing" and grant.credential_id is not None)
        if not chosen:
            return "no standing grant names it; nothing to narrow"
        for grant_id in chosen:
            if decision.expires_at is None:
                grants.revoke(grant_id, reason=f"access review {self.id}: narrowed")
            else:
                grants.shorten(grant_id, decision.expires_at)
        if decision.expires_at is None:
            return f"revoked {len(chosen)} grant(s)"
        return f"shortened {len(chosen)} grant(s) to end {iso_time(decision.expires_at)}"

    def _audit(self, row: ReviewRow, decision: Decision, outcome: Outcome) -> None:
        self._vault.audit.append(
            "review.decision", self._vault.actor, outcome=outcome, risk=Risk.MEDIUM, target=row.name,
            context=row.context, detail={"review": self.id, "action": decision.action,
                                         "grants": list(decision.grant_ids), "note_length": len(decision.note)})

    def _report(self, applied: list[dict[str, Any]]) -> ReviewReport:
        body = {
            "format": REPORT_FORMAT, "id": self.id, "vault_id": self._vault.vault_id,
            "started_at": self.started_at, "finished_at": self._vault.clock(), "reviewer": self._vault.actor.user,
            "rows": [row.to_dict() for row in self.rows], "decisions": applied,
        }
        # The key is part of what is signed, so it is read first: the public half in the
        # vault file, which unlocking checked against the sealed private half.
        body["public_key"] = self._vault.store.get_meta(PUBLIC_KEY_META_KEY) or ""
        signature, public_key = self._vault.audit.sign_document(_signed_message(body))
        if public_key.hex() != body["public_key"]:
            raise IntegrityError("the vault's audit public key does not match its signing key")
        return ReviewReport.from_dict({**body, "signature": signature.hex()})


def rotate_for_review(vault: Vault, name: str) -> str:
    """Rotate ``name`` if its rotation policy lets a machine make the value (``generate``);
    otherwise say who must. Used by ``review apply`` and the app's review screen."""
    from aegis_tui.core.generate import generate_value
    from aegis_tui.core.lifecycle.rotation import policy_of

    credentials = Credentials(vault)
    policy = policy_of(credentials.find(name))
    if policy.method != "generate":
        return f"rotation needs a human: run aegis-vault rotate {shlex.quote(name)}"
    rotated = credentials.rotate(name, generate_value(policy.length, policy.charset, policy.prefix))
    return f"rotated to version {rotated.current_version} (generated)"


# -- the report ---------------------------------------------------------------------------------
class ReviewReport(NamedTuple):
    """A finished, signed review. ``signature`` covers every other field."""

    id: str
    vault_id: str
    started_at: float
    finished_at: float
    reviewer: str
    rows: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    public_key: str
    signature: str

    def to_dict(self) -> dict[str, Any]:
        return {"format": REPORT_FORMAT, **self._asdict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReviewReport:
        if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT:
            raise IntegrityError("this is not an aegis-vault review report (or one of an unknown format)")
        try:
            report = cls(**{field: data[field] for field in cls._fields})
        except KeyError as err:
            raise IntegrityError(f"the review report has no {err.args[0]!r}: it was altered or truncated") from None
        for field, wanted in _FIELD_TYPES.items():
            if not isinstance(getattr(report, field), wanted) or isinstance(getattr(report, field), bool):
                raise IntegrityError(f"the review report's {field!r} has the wrong type: it was altered")
        return report

    def to_json(self, *, compact: bool = False) -> str:
        """Indented for reading, or on one line (the Markdown's signed block: a review of
        10k credentials is tens of MB indented)."""
        if compact:
            return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False)

    def to_markdown(self) -> str:
        return _markdown(self)

    def counts(self) -> Counter[str]:
        """Decisions by action, plus "failed"."""
        found = Counter(entry["action"] for entry in self.decisions)
        found["failed"] = sum(entry["result"] == "failed" for entry in self.decisions)
        return found


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "id": str, "vault_id": str, "started_at": (int, float), "finished_at": (int, float), "reviewer": str,
    "rows": list, "decisions": list, "public_key": str, "signature": str,
}


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _signed_message(body: dict[str, Any]) -> bytes:
    return SIGNATURE_DOMAIN + _canonical(body)


def _body(report: ReviewReport) -> dict[str, Any]:
    """Everything the signature covers: the report without its signature."""
    body = report.to_dict()
    del body["signature"]
    return body


def iso_time(moment: float) -> str:
    """``2026-11-22 12:05 UTC``: report times, to the minute."""
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# -- verifying -------------------------------------------------------------------------------------
def verify_report(text: str, expected_public_key: bytes | None = None) -> ReviewReport:
    """The report in ``text`` (JSON, or a Markdown export), if its signature holds.

    Raises ``IntegrityError`` with one line when anything was changed: a field, the
    signature, the key (against ``expected_public_key``), or for Markdown, any text
    around the signed block (the Markdown is re-rendered from the block and compared).
    """
    stripped = text.strip()
    is_markdown = not stripped.startswith("{")
    report = ReviewReport.from_dict(_parse(_signed_block(stripped) if is_markdown else stripped))
    _check_signature(report, expected_public_key)
    if is_markdown and _render_checked(report) != stripped:
        raise IntegrityError("the Markdown around the signed block was edited: it no longer matches the signed report")
    return report


def _signed_block(markdown: str) -> str:
    start = markdown.find(MARKDOWN_FENCE + "\n")
    end = markdown.find("\n```", start + len(MARKDOWN_FENCE))
    if start < 0 or end < 0:
        raise IntegrityError("no complete aegis-review block in this Markdown: it was truncated or is not a review")
    return markdown[start + len(MARKDOWN_FENCE) + 1:end]


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise IntegrityError("the review report is not valid JSON: it was truncated or altered") from None


def _check_signature(report: ReviewReport, expected_public_key: bytes | None) -> None:
    try:
        public, signature = bytes.fromhex(report.public_key), bytes.fromhex(report.signature)
    except (TypeError, ValueError):
        raise IntegrityError("the review's key or signature is not hex: the report was altered") from None
    if not verify_signature(public, _signed_message(_body(report)), signature):
        raise IntegrityError("the review's signature does not match its content: the report was altered after signing")
    if expected_public_key is not None and public != expected_public_key:
        raise IntegrityError(f"the review was signed by key {report.public_key[:16]}…, not this vault's audit key")


def _render_checked(report: ReviewReport) -> str:
    """The Markdown of a correctly signed report; a signed report of the wrong shape (made
    with some other key) is refused rather than crashing the renderer."""
    try:
        return report.to_markdown().strip()
    except (TypeError, KeyError, AttributeError, ValueError):
        raise IntegrityError("the signed review has fields of the wrong shape") from None


# -- stored reviews ------------------------------------------------------------------------------------
def list_reviews(vault: Vault) -> list[ReviewReport]:
    """Every finished review stored in the vault, oldest first."""
    reports = [ReviewReport.from_dict(data) for _, data in SealedRecords(vault, REVIEW_KIND).all()]
    return sorted(reports, key=lambda report: report.finished_at)


def find_review(vault: Vault, review_id: str | None = None) -> ReviewReport:
    """The review with this id (or unique id prefix); the latest when ``review_id`` is None."""
    reports = list_reviews(vault)
    if review_id is not None:
        reports = [report for report in reports if report.id.startswith(review_id)]
    if not reports:
        raise NotFoundError("no review " + (f"matches {review_id!r}" if review_id else "was finished yet")
                            + "; see: aegis-vault review list")
    if review_id is not None and len(reports) > 1:
        raise UsageError(f"{review_id!r} matches {len(reports)} reviews; give more of the id")
    return reports[-1]


def _remember_latest(vault: Vault, report: ReviewReport) -> None:
    """Note when this review finished in a record of its own: the app's reminder reads it
    at every start, and opening every stored report (thousands of rows each) for one date
    would cost more than the reminder is worth."""
    records = SealedRecords(vault, LATEST_KIND)
    data = {"id": "latest", "review": report.id, "finished_at": report.finished_at}
    found = records.get("latest")
    if found is None:
        records.insert(data)
    else:
        records.update(data, found[0])


def last_review_age_days(vault: Vault, now: float | None = None) -> int | None:
    """Whole days since the last review finished; None when there never was one."""
    found = SealedRecords(vault, LATEST_KIND).get("latest")
    if found is None:
        return None
    return int(((vault.clock() if now is None else now) - float(found[1]["finished_at"])) // _DAY)


# -- Markdown ------------------------------------------------------------------------------------------
_TABLE_HEAD = ("Credential", "Context", "Status", "Age (d)", "Rotation", "Last used", "Uses", "Grants",
               "Exposures", "Incidents", "Flags", "Decision", "Result")


def _markdown(report: ReviewReport) -> str:
    decisions = {entry["name"]: entry for entry in report.decisions}
    counts = report.counts()
    flagged = sum(bool(row["flags"]) for row in report.rows)
    lines = [
        f"# Access review {report.id}",
        "",
        f"- Vault: `{report.vault_id}`",
        f"- Reviewer: {_cell(report.reviewer)}",
        f"- Started {iso_time(report.started_at)}, finished {iso_time(report.finished_at)}",
        f"- Credentials reviewed: {len(report.rows)}; flagged: {flagged}",
        "- Decisions: " + ", ".join(f"{action} {counts[action]}" for action in ACTIONS) + f"; failed: {counts['failed']}",
        f"- Signed with the vault's audit key `{report.public_key}`",
        "",
        "| " + " | ".join(_TABLE_HEAD) + " |",
        "|" + "---|" * len(_TABLE_HEAD),
        *(_table_line(row, decisions.get(row["name"], {})) for row in report.rows),
    ]
    notes = [f"- **{_cell(entry['name'])}**: {_cell(entry['note'])}" for entry in report.decisions if entry["note"]]
    failures = [f"- **{_cell(entry['name'])}** ({entry['action']}): {_cell(entry['outcome'])}"
                for entry in report.decisions if entry["result"] == "failed"]
    for title, items in (("Notes", notes), ("Failed", failures)):
        if items:
            lines += ["", f"## {title}", "", *items]
    lines += ["", "## Signed report", "",
              "Check it with `aegis-vault review verify FILE`: this whole file is checked against the block below.",
              "", MARKDOWN_FENCE, report.to_json(compact=True), "```"]
    return "\n".join(lines)


def _table_line(row: dict[str, Any], decision: dict[str, Any]) -> str:
    rotation = row["rotation_state"] + (f" ({row['rotation_days_left']} d)" if row["rotation_days_left"] is not None else "")
    cells = (
        row["name"], row["context"] or "—", row["status"], str(row["age_days"]), rotation,
        "never" if row["last_used"] is None else iso_time(row["last_used"]), str(row["uses"]),
        str(len(row["grants"])), str(row["exposures"]), str(row["incidents"]), ", ".join(row["flags"]) or "—",
        decision.get("action", "—"), decision.get("outcome", "—"),
    )
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _cell(text: str) -> str:
    """Untrusted text (names, notes) as literal Markdown: no table breaks, no HTML, no markup."""
    out = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    for special in "`*_[]#":
        out = out.replace(special, "\\" + special)
    return out
