"""``audit tail``, ``audit verify``, ``audit export --jsonl``, ``audit note``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from aegis_tui.cli.render import emit, printable, timestamp
from aegis_tui.cli.terminal import err
from aegis_tui.cli.unlock import open_unlocked, open_vault
from aegis_tui.core.audit import AuditEntry


def _line(entry: AuditEntry) -> str:
    actor = entry.actor
    who = f"{actor.get('user', '?')}:{actor.get('program', '?')}[{actor.get('pid', '?')}]"
    if entry.session_id:
        who += f" session={entry.session_id}"
    target = entry.target or ("(sealed)" if entry.sealed else "-")
    where = f" @{entry.context}" if entry.context else ""
    flag = " !" if entry.flagged else ""
    return printable(f"#{entry.seq:<6} {timestamp(entry.timestamp)}  {entry.operation:<12} {entry.outcome:<7} "
                     f"{entry.risk:<6} {target}{where}  {who}{flag}")


def tail(args: argparse.Namespace) -> int:
    with open_unlocked(args) as vault:
        entries = vault.audit.tail(max(args.lines, 0))
        for entry in entries:
            emit(_line(entry))
        sys.stdout.flush()
        last = entries[-1].seq if entries else 0
        while args.follow:
            time.sleep(0.5)
            for entry in vault.audit.entries(after_seq=last):
                emit(_line(entry))
                last = entry.seq
            sys.stdout.flush()
    return 0


def verify(args: argparse.Namespace) -> int:
    """Needs no unlock: the chain and the head signature check with public data only."""
    with open_vault() as vault:
        report = vault.audit.verify()
    if report.ok:
        tail_note = f"; {report.unsigned_tail} later entries written while locked" if report.unsigned_tail else ""
        emit(f"audit log intact: {report.entries} entries, signed head at #{report.signed_seq}{tail_note}")
        return 0
    for problem in report.problems:
        err(f"aegis-vault: audit: {problem}")
    return 6


def export(args: argparse.Namespace) -> int:
    with open_unlocked(args) as vault:
        if args.output:
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            stream = os.fdopen(fd, "w", encoding="utf-8")
        else:
            stream = sys.stdout
        count = 0
        try:
            for entry in vault.audit.entries():
                stream.write(json.dumps(entry.to_export(), ensure_ascii=False) + "\n")
                count += 1
        finally:
            if stream is not sys.stdout:
                stream.close()
    if args.output:
        err(f"exported {count} audit entries to {args.output}")
    return 0


def note(args: argparse.Namespace) -> int:
    """The owner's own entry (a change made outside aegis-vault, a reason): an operation
    only someone who unlocked the vault may perform, so agents cannot write the log."""
    from aegis_tui.core.access import LocalAccess

    access = LocalAccess(open_unlocked(args))
    try:
        access.note(args.text)
    finally:
        access.close()
    err("aegis-vault: note written to the audit log")
    return 0
