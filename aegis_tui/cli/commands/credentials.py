"""``add``, ``get``, ``list``, ``show``, ``rotate``, ``revoke``, ``destroy``, ``history``."""

from __future__ import annotations

import argparse
import json
import sys
import time

from aegis_tui.cli.render import emit, emit_json, relative, table, timestamp
from aegis_tui.cli.terminal import confirm, err, has_terminal, read_value
from aegis_tui.cli.unlock import open_agent_access, open_unlocked
from aegis_tui.core.credentials import Credentials, gc_paused
from aegis_tui.core.errors import UsageError
from aegis_tui.core.models import (
    Credential,
    RotationState,
    VersionInfo,
    Status,
    parse_duration,
    parse_expiry,
    parse_kind,
)
from aegis_tui.core.secret import Secret
from aegis_tui.core.summary import credential_summary, iso


def _value(args: argparse.Namespace) -> Secret:
    if args.generate:
        from aegis_tui.core.generate import generate_value

        return generate_value(args.length, args.charset, args.prefix)
    return read_value()


def _fields(pairs: list[str]) -> dict[str, str]:
    fields = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError("--field takes KEY=TEXT")
        fields[key] = text
    return fields


def add(args: argparse.Namespace) -> int:
    kind = parse_kind(args.kind)
    expires = parse_expiry(args.expires)
    fields = _fields(args.field)
    value = _value(args)
    with open_unlocked(args) as vault:
        credential = Credentials(vault).add(
            args.name, value, kind=kind, service=args.service, context=args.context, tags=args.tags,
            notes=args.notes, url=args.url, expires=expires, rotation_days=args.rotation_days, fields=fields,
        )
    err(f"added {credential.name!r} ({credential.kind}) as {credential.reference}")
    return 0


def _rotation_text(summary: dict[str, object]) -> str:
    state, days = summary["rotation"], summary["rotation_days_left"]
    if state == RotationState.NONE:
        return "-"
    if state == RotationState.OVERDUE:
        return f"overdue {-days}d" if isinstance(days, int) else "overdue"
    return f"{state} {days}d"


def list_credentials(args: argparse.Namespace) -> int:
    where = {"context": args.context, "service": args.service, "status": args.status, "kind": args.kind}
    access = open_agent_access(args)
    try:
        found = access.list(where)
    finally:
        access.close()
    with gc_paused():  # 100k summaries stay alive: encoding them would rescan them all, again and again
        if args.json:
            sys.stdout.write(json.dumps(found) + "\n")
            return 0
        rows = [[c["name"], c["service"] or "-", c["kind"], c["context"] or "-", c["status"], _rotation_text(c),
                 f"v{c['version']}"] for c in found]
        emit(table(["NAME", "SERVICE", "KIND", "CONTEXT", "STATUS", "ROTATION", "VERSION"], rows))
    return 0


def _with_versions(args: argparse.Namespace) -> tuple[Credential, list[VersionInfo]]:
    from aegis_tui.core.agents.policy import resolve_visible
    from aegis_tui.core.operations.caller import session_of_this_process

    with open_unlocked(args) as vault:
        credentials = Credentials(vault)
        credential = resolve_visible(credentials, args.name, session_of_this_process(vault))
        return credential, credentials.versions(credential.name)


def show(args: argparse.Namespace) -> int:
    credential, versions = _with_versions(args)
    now = time.time()
    summary = credential_summary(credential, now) | {"notes": credential.notes, "fields": dict(credential.fields),
                                           "versions": len(versions)}
    if args.json:
        emit_json(summary)
        return 0
    rows = [[key, _cell(value)] for key, value in summary.items() if key != "notes"]
    for line in table(["FIELD", "VALUE"], rows).splitlines()[1:]:
        emit(line)
    if credential.notes:
        emit("notes:")
        for line in credential.notes.splitlines():
            emit(f"  {line}")
    emit("value                 (hidden; use: aegis-vault get)")
    return 0


def _cell(value: object) -> str:
    if value in (None, "", [], {}):
        return "-"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{key}={text}" for key, text in value.items())
    return str(value)


def rotate(args: argparse.Namespace) -> int:
    if args.due:
        if args.name is not None:
            raise UsageError("--due rotates every due credential by its policy; leave out the name")
        from aegis_tui.cli.commands.lifecycle import rotate_due

        return rotate_due(args)
    if args.name is None:
        raise UsageError("name the credential to rotate, or use --due for every due one")
    overlap = parse_duration(args.overlap) if args.overlap is not None else None
    value = _value(args)
    with open_unlocked(args) as vault:
        credentials = Credentials(vault)
        credential = credentials.rotate(credentials.resolve(args.name).name, value, overlap)
        versions = credentials.versions(credential.name)
    previous = [v for v in versions if v.version == credential.current_version - 1]
    until = f"; v{previous[0].version} stays valid until {timestamp(previous[0].retires_at)}" if previous else ""
    err(f"rotated {credential.name!r} to v{credential.current_version}{until}")
    return 0


def revoke(args: argparse.Namespace) -> int:
    with open_unlocked(args) as vault:
        credentials = Credentials(vault)
        credential = credentials.set_status(credentials.resolve(args.name).name, Status.REVOKED, args.reason)
    err(f"revoked {credential.name!r}: every version is retired and no value is handed out")
    return 0


def destroy(args: argparse.Namespace) -> int:
    with open_unlocked(args) as vault:
        credentials = Credentials(vault)
        credential = credentials.resolve(args.name)
        if not args.yes:
            if not has_terminal():
                raise UsageError("destroy deletes every version for good; confirm with --yes when not in a terminal")
            if not confirm(f"Destroy {credential.name!r} and all its versions? Type its name to confirm: ",
                           credential.name):
                err("not destroyed")
                return 1
        credentials.destroy(credential.name)
    err(f"destroyed {credential.name!r} and its history")
    return 0


def history(args: argparse.Namespace) -> int:
    _, versions = _with_versions(args)
    now = time.time()
    if args.json:
        emit_json([{"version": v.version, "state": str(v.state), "created": iso(v.created_at),
                    "retires": iso(v.retires_at)} for v in versions])
        return 0
    rows = [[f"v{v.version}", str(v.state), timestamp(v.created_at),
             "-" if v.retires_at is None else f"{timestamp(v.retires_at)} ({relative(v.retires_at, now)})"]
            for v in reversed(versions)]
    emit(table(["VERSION", "STATE", "CREATED", "RETIRES"], rows))
    return 0
