"""``review``, ``review apply|list|export|verify``: the quarterly access review.

``review`` prints every credential with its age, rotation, use, grants and flags.
``review apply DECISIONS.json`` decides every row at once, applies and audits the
decisions, and stores the signed report; ``export`` writes it as Markdown or JSON and
``verify`` checks one, against this vault's audit key when the vault opens without a
prompt, else against the key the report carries (and says which).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from aegis_tui.cli.render import emit, emit_json, printable, table, timestamp
from aegis_tui.cli.terminal import err
from aegis_tui.cli.unlock import open_unlocked, open_vault, unlock
from aegis_tui.core.errors import AegisError, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from aegis_tui.core.lifecycle.review import Decision, ReviewReport, ReviewRow


def review_show(args: argparse.Namespace) -> int:
    """Every credential (or the flagged ones) as a table, or as JSON."""
    from aegis_tui.core.lifecycle.review import review_rows

    with open_unlocked(args) as vault:
        rows = review_rows(vault)
        now = vault.clock()
    if args.flagged:
        rows = [row for row in rows if row.flags]
    if args.json:
        emit_json([row.to_dict() for row in rows])
        return 0
    emit(table(["NAME", "CONTEXT", "STATUS", "AGE", "ROTATION", "LAST USED", "USES", "GRANTS", "EXPOSED",
                "INCIDENTS", "FLAGS"], [_cells(row, now) for row in rows]))
    return 0


def _cells(row: ReviewRow, now: float) -> list[str]:
    rotation = row.rotation_state if row.rotation_days_left is None else f"{row.rotation_state} ({row.rotation_days_left}d)"
    last_used = "never" if row.last_used is None else f"{int((now - row.last_used) // 86400)}d ago"
    return [row.name, row.context or "-", row.status, f"{row.age_days}d", rotation, last_used, str(row.uses),
            str(len(row.grants)), str(row.exposures), str(row.incidents), ",".join(row.flags) or "-"]


def review_apply(args: argparse.Namespace) -> int:
    """Decide every row from a JSON file, apply, and store the signed report."""
    from aegis_tui.core.lifecycle.review import Review, rotate_for_review

    wanted = _read_decisions(args.decisions)
    with open_unlocked(args) as vault:
        review = Review.start(vault)
        for name, raw in wanted.items():
            review.decide(name, _decision(name, raw))
        report = review.finish(lambda name: rotate_for_review(vault, name))
    for entry in report.decisions:
        if entry["result"] == "failed" or entry["action"] == "rotate":
            err(printable(f"aegis-vault: {entry['name']}: {entry['action']} {entry['result']}: {entry['outcome']}"))
    counts = report.counts()
    sys.stdout.write(report.id + "\n")
    err(f"aegis-vault: review {report.id} finished: {len(report.decisions)} decision(s), {counts['failed']} failed; "
        f"see: aegis-vault review export {report.id}")
    return 1 if counts["failed"] else 0


def _read_decisions(path: str) -> dict[str, object]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as failure:
        raise UsageError(f"cannot read {path}: {failure.strerror}") from None
    except ValueError:
        raise UsageError(f"{path} is not valid JSON") from None
    if not isinstance(data, dict):
        raise UsageError(f'{path} must hold one JSON object: {{"NAME": "keep" | "rotate" | "revoke" | {{...}}}}')
    return data


def _decision(name: str, raw: object) -> Decision:
    """``"keep"`` or ``{"action": "narrow", "grants": [...], "until": "ISO time", "note": "..."}``."""
    from aegis_tui.core.lifecycle.review import Decision

    spec = {"action": raw} if isinstance(raw, str) else raw
    if not isinstance(spec, dict) or not isinstance(spec.get("action"), str):
        raise UsageError(f"the decision for {printable(name)!r} must be an action or an object with \"action\"")
    unknown = set(spec) - {"action", "note", "grants", "until"}
    if unknown:
        raise UsageError(f"the decision for {printable(name)!r} has unknown keys: {', '.join(sorted(unknown))}")
    grants = spec.get("grants", [])
    if not isinstance(grants, list) or not all(isinstance(grant, str) for grant in grants):
        raise UsageError(f"\"grants\" for {printable(name)!r} must be a list of grant ids")
    return Decision(spec["action"], str(spec.get("note", "")), tuple(grants), _moment(spec.get("until")))


def _moment(raw: object) -> float | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(str(raw))
    except ValueError:
        raise UsageError(f"\"until\" {printable(str(raw))!r} is not an ISO time like 2026-12-31T18:00:00Z") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def review_list(args: argparse.Namespace) -> int:
    from aegis_tui.core.lifecycle.review import ACTIONS, list_reviews

    with open_unlocked(args) as vault:
        reports = list_reviews(vault)
    if args.json:
        emit_json([{"id": r.id, "finished_at": r.finished_at, "reviewer": r.reviewer, "credentials": len(r.rows),
                    "decisions": dict(r.counts())} for r in reports])
        return 0
    emit(table(["REVIEW", "FINISHED", "REVIEWER", "CREDENTIALS", *(a.upper() for a in ACTIONS), "FAILED"],
               [[r.id, timestamp(r.finished_at), r.reviewer, str(len(r.rows)),
                 *(str(r.counts()[a]) for a in (*ACTIONS, "failed"))] for r in reports]))
    return 0


def review_export(args: argparse.Namespace) -> int:
    """The latest review (or the one named) as Markdown or JSON; to a private file or stdout."""
    from aegis_tui.core.lifecycle.incidents import write_export
    from aegis_tui.core.lifecycle.review import find_review

    with open_unlocked(args) as vault:
        report = find_review(vault, args.id)
    text = report.to_markdown() if args.format == "md" else report.to_json()
    if not args.output:
        emit(text)
        return 0
    written = write_export(args.output, text)
    err(f"aegis-vault: review {report.id} exported to {written}")
    return 0


def review_verify(args: argparse.Namespace) -> int:
    """Check a report's signature; one line either way."""
    from aegis_tui.core.lifecycle.review import verify_report

    try:
        with open(args.file, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as failure:
        raise UsageError(f"cannot read {args.file}: {getattr(failure, 'strerror', None) or 'not text'}") from None
    report = verify_report(text)
    key, where = _this_vaults_key(args, report)
    if key is not None:
        verify_report(text, key)
    emit(printable(f"signature good: review {report.id} by {report.reviewer} at {timestamp(report.finished_at)}, "
                   f"{len(report.decisions)} decisions; {where}"))
    return 0


def _this_vaults_key(args: argparse.Namespace, report: ReviewReport) -> tuple[bytes | None, str]:
    """This vault's audit public key, if the vault opens without a prompt and is the one
    the review was made in; otherwise ``None`` and the reason, for the output line."""
    from aegis_tui.core.audit import PUBLIC_KEY_META_KEY

    embedded = "checked with the key the report carries"
    try:
        vault = open_vault()
    except AegisError:
        return None, f"{embedded} (no vault here)"
    with vault:
        if vault.vault_id != report.vault_id:
            return None, f"{embedded} (made in another vault)"
        try:
            unlocked = unlock(vault, args, prompt=False)
        except AegisError:
            unlocked = False
        if not unlocked:
            return None, f"{embedded} (the vault did not open without a prompt)"
        return bytes.fromhex(vault.store.get_meta(PUBLIC_KEY_META_KEY) or ""), "signed with this vault's audit key"
