"""``rotation status``, ``rotate --due`` and ``compromised``: rotation by policy and
compromise recovery from the command line (the same core the broker's manager runs)."""

from __future__ import annotations

import argparse

from aegis_tui.cli.render import emit, emit_json, table, timestamp
from aegis_tui.cli.terminal import err
from aegis_tui.cli.unlock import open_unlocked
from aegis_tui.core.lifecycle.rotation import RotationManager, RotationStatus


def rotation_status(args: argparse.Namespace) -> int:
    """Every credential with a rotation period or an expiry: ok / due / overdue, and days."""
    with open_unlocked(args) as vault:
        rows = RotationManager(vault).status()
    if args.attention:
        rows = [row for row in rows if row.attention]
    if args.json:
        emit_json([_status_json(row) for row in rows])
        return 0
    if not rows:
        err("no credential has a rotation period or an expiry date; set one with: aegis-vault policy set NAME --every 90d")
        return 0
    emit(table(["NAME", "CONTEXT", "ROTATION", "DAYS", "HOW", "EXPIRES"],
               [[row.name, row.context or "-", _state_text(row), _days_text(row.days_left), row.policy,
                 _expiry_text(row)] for row in rows]))
    return 0


def rotate_due(args: argparse.Namespace) -> int:
    """Rotate every credential that is due or overdue and has a ``generate`` or ``command``
    policy; list the manual ones. Exit 1 when any rotation failed."""
    with open_unlocked(args) as vault:
        report = RotationManager(vault).tick(include_due=True)
    for outcome in report.rotated:
        err(f"{outcome.name}: {outcome.detail}")
    for version in report.retired:
        err(f"{version}: overlap ended, retired")
    for row in report.reminders:
        err(f"{row.name}: {_state_text(row)}, needs a human: aegis-vault rotate {row.name!r}")
    if not (report.rotated or report.reminders):
        err("nothing is due")
    return 1 if any(not outcome.ok for outcome in report.rotated) else 0


def compromised(args: argparse.Namespace) -> int:
    """Run compromise recovery for one credential and print the incident's timeline."""
    from aegis_tui.core.lifecycle.compromise import recover
    from aegis_tui.core.lifecycle.incidents import validate_severity

    severity = validate_severity(args.severity)
    with open_unlocked(args) as vault:
        from aegis_tui.core.credentials import Credentials

        name = Credentials(vault).resolve(args.name).name
        incident = recover(vault, name, source="manual", severity=severity, impact=args.impact)
    if args.json:
        from aegis_tui.core.lifecycle.incidents import incident_document

        emit_json(incident_document(incident))
    else:
        err(f"incident {incident.short_id} opened for {incident.credential!r} ({incident.severity}):")
        for step in incident.timeline:
            detail = f" - {step.detail}" if step.detail else ""
            err(f"  {timestamp(step.at)}  {step.outcome:<7} {step.step}{detail}")
        err(f"fill in root cause and prevention: aegis-vault incidents edit {incident.short_id} "
            "--root-cause TEXT --prevention TEXT")
    return 1 if any(step.outcome == "failed" for step in incident.timeline) else 0


def _state_text(row: RotationStatus) -> str:
    return {"none": "no period", "ok": "ok", "due": "due", "overdue": "OVERDUE"}[row.state.value]


def _days_text(days: int | None) -> str:
    if days is None:
        return "-"
    return f"{days} left" if days >= 0 else f"{-days} late"


def _expiry_text(row: RotationStatus) -> str:
    if row.expires is None or row.expiry_days is None:
        return "-"
    if row.expiry_days < 0:
        return f"{row.expires} (EXPIRED)"
    return f"{row.expires} ({row.expiry_days} days)"


def _status_json(row: RotationStatus) -> dict[str, object]:
    return {"name": row.name, "context": row.context, "state": row.state.value, "days_left": row.days_left,
            "period_days": row.period_days, "method": row.method, "policy": row.policy, "expires": row.expires,
            "expiry_days": row.expiry_days, "needs_human": row.needs_human, "status": row.status.value}
