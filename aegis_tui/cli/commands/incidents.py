"""``incidents open|list|show|edit|close|reopen|export``: compromise incident records.

Scans, ``run`` and reviews open incidents as they find exposures; ``open`` is for the
ones a person learns of another way. Closing needs a root cause and a prevention
(the core refuses otherwise, with the ``edit`` command that fills them in).
"""

from __future__ import annotations

import argparse
import sys

from aegis_tui.cli.render import emit, emit_json, printable, table, timestamp
from aegis_tui.cli.terminal import err
from aegis_tui.cli.unlock import open_unlocked
from aegis_tui.core.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from aegis_tui.core.lifecycle.incidents import Incident, Incidents
    from aegis_tui.core.vault import Vault


def _incidents(vault: Vault) -> Incidents:
    from aegis_tui.core.lifecycle.incidents import Incidents

    return Incidents(vault)


def _documents(incidents: list[Incident]) -> list[dict[str, object]]:
    from aegis_tui.core.lifecycle.incidents import incident_document

    return [incident_document(incident) for incident in incidents]


def incidents_open(args: argparse.Namespace) -> int:
    from aegis_tui.core.credentials import Credentials

    with open_unlocked(args) as vault:
        credential = Credentials(vault).resolve(args.reference)
        incident = _incidents(vault).open(credential, severity=args.severity, source="manual", impact=args.impact)
    sys.stdout.write(incident.id + "\n")
    err(f"aegis-vault: incident {incident.short_id} opened for {printable(incident.credential)}")
    return 0


def incidents_list(args: argparse.Namespace) -> int:
    with open_unlocked(args) as vault:
        incidents = _incidents(vault).list(include_closed=args.all)
    if args.json:
        emit_json(_documents(incidents))
        return 0
    rows = [[i.short_id, timestamp(i.opened_at), i.severity, i.credential, i.context or "-", i.status,
             str(len(i.timeline)), i.source] for i in incidents]
    emit(table(["INCIDENT", "OPENED", "SEVERITY", "CREDENTIAL", "CONTEXT", "STATUS", "STEPS", "SOURCE"], rows))
    return 0


def incidents_show(args: argparse.Namespace) -> int:
    with open_unlocked(args) as vault:
        incident = _incidents(vault).get(args.id)
    if args.json:
        emit_json(_documents([incident])[0])
        return 0
    emit(_describe(incident))
    return 0


def _describe(incident: Incident) -> str:
    """Every field, then the timeline: one line each, printable (the texts are free text)."""
    fields = [
        ("incident", incident.id), ("credential", f"{incident.credential} ({incident.credential_type})"),
        ("context", incident.context or "-"), ("severity", incident.severity), ("status", incident.status),
        ("opened", timestamp(incident.opened_at)), ("closed", timestamp(incident.closed_at)),
        ("source", incident.source), ("impact", incident.impact or "-"),
        ("root cause", incident.root_cause or "-"), ("prevention", incident.prevention or "-"),
    ]
    lines = [printable(f"{name:<11} {value}") for name, value in fields]
    lines.append(f"timeline    {len(incident.timeline)} step(s)")
    lines += [printable(f"  {timestamp(s.at)}  {s.outcome:<7}  {s.step}" + (f" · {s.detail}" if s.detail else ""))
              for s in incident.timeline]
    return "\n".join(lines)


def incidents_edit(args: argparse.Namespace) -> int:
    fields = {name: value for name in ("severity", "impact", "root_cause", "prevention")
              if (value := getattr(args, name)) is not None}
    if not fields:
        raise UsageError("nothing to change: give --severity, --impact, --root-cause or --prevention")
    with open_unlocked(args) as vault:
        incident = _incidents(vault).edit(args.id, **fields)
    err(f"aegis-vault: incident {incident.short_id} updated ({', '.join(sorted(fields))})")
    return 0


def incidents_close(args: argparse.Namespace) -> int:
    with open_unlocked(args) as vault:
        incident = _incidents(vault).close(args.id)
    err(f"aegis-vault: incident {incident.short_id} closed")
    return 0


def incidents_reopen(args: argparse.Namespace) -> int:
    with open_unlocked(args) as vault:
        incident = _incidents(vault).reopen(args.id)
    err(f"aegis-vault: incident {incident.short_id} open again")
    return 0


def incidents_export(args: argparse.Namespace) -> int:
    """Every incident, or the named ones; to a private file or stdout."""
    from aegis_tui.core.lifecycle.incidents import export_incidents, write_export

    with open_unlocked(args) as vault:
        incidents = _incidents(vault)
        chosen = [incidents.get(wanted) for wanted in args.ids] if args.ids else incidents.list()
    text = export_incidents(chosen)
    if not args.output:
        emit(text)
        return 0
    written = write_export(args.output, text)
    err(f"aegis-vault: exported {len(chosen)} incident(s) to {written}")
    return 0
