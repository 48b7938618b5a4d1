"""``aegis-vault scan`` and ``aegis-vault redact``: find secrets where they should not be,
and mask them in a stream.

Exit codes follow the scanners people already wire into CI (gitleaks, detect-secrets):
0 nothing found, 1 findings, 2 an error. Output never shows a secret, only where it is
and what it is. A vault value found marks its credential exposed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aegis_tui.cli.terminal import err

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    import argparse

    from aegis_tui.core.scan.known import KnownValues
    from aegis_tui.core.scan.rules import RuleSet
    from aegis_tui.core.vault import Vault

FOUND = 1


def _rules(args: argparse.Namespace) -> RuleSet:
    from aegis_tui.core.scan.rules import default_rules, load_rules

    rules = default_rules()
    for extra in args.rules or []:
        rules = rules.merge(load_rules(Path(extra)))
    return rules


def _vault(args: argparse.Namespace) -> Vault | None:
    """The unlocked vault, to look for its own values; ``None`` with ``--no-vault``."""
    if args.no_vault:
        return None
    from aegis_tui.cli.unlock import open_unlocked

    return open_unlocked(args)


def scan(args: argparse.Namespace) -> int:
    from aegis_tui.core.scan.engine import Scanner

    if args.staged and args.git_log is not None:
        from aegis_tui.core.errors import UsageError

        raise UsageError("--staged and --git-log scan different things; choose one")
    rules = _rules(args)
    vault = _vault(args)
    try:
        known: KnownValues | None = None
        if vault is not None:
            from aegis_tui.core.scan.exposure import vault_known_values

            known = vault_known_values(vault)
        scanner = Scanner(rules, known)
        if args.staged:
            findings = list(scanner.scan_staged("."))
        elif args.git_log is not None:
            findings = list(scanner.scan_git_log(".", args.git_log or None))
        elif args.paths == ["-"]:
            findings = list(scanner.scan_stream(sys.stdin.buffer, "-"))
        else:
            findings = list(scanner.scan_paths(args.paths or ["."]))
        if args.baseline:
            from aegis_tui.core.scan.baseline import load_baseline, new_findings

            findings = new_findings(findings, load_baseline(args.baseline))
        if args.write_baseline:
            from aegis_tui.core.scan.baseline import write_baseline

            write_baseline(args.write_baseline, findings)
            err(f"aegis-vault: wrote a baseline of {len(findings)} finding(s) to {args.write_baseline}")
            return 0
        if vault is not None:
            from aegis_tui.cli.render import printable
            from aegis_tui.core.scan.exposure import record_exposures

            exposed = record_exposures(vault, findings, via="aegis-vault scan")
            if exposed:
                err(f"aegis-vault: marked exposed: {printable(', '.join(exposed))}; "
                    "rotate with: aegis-vault rotate NAME")
            if exposed and not args.staged:  # a staged leak is stopped before it leaves: the commit is refused
                _recover(vault, findings)
    finally:
        if vault is not None:
            vault.close()
    _emit(args, findings, rules)
    return FOUND if findings else 0


def _recover(vault: Vault, findings: list) -> None:  # type: ignore[type-arg]
    """Compromise recovery for each leaked value still valid (the policy file can turn it off)."""
    from aegis_tui.core.errors import AegisError
    from aegis_tui.core.lifecycle.compromise import recover_leaks

    try:
        incidents = recover_leaks(vault, findings, via="scan")
    except AegisError as error:
        err(f"aegis-vault: automatic recovery did not run: {error}")
        return
    for incident in incidents:
        failed = [step.step for step in incident.timeline if step.outcome != "ok"]
        left = f"; left for you: {', '.join(failed)}" if failed else ""
        err(f"aegis-vault: {incident.credential!r} leaked: recovered (incident {incident.short_id}){left}")


def _emit(args: argparse.Namespace, findings: list, rules: RuleSet) -> None:  # type: ignore[type-arg]
    from aegis_tui.core.scan import report

    if args.sarif:
        import json

        sys.stdout.write(json.dumps(report.to_sarif(findings, rules), indent=2) + "\n")
    elif args.json:
        sys.stdout.write(report.to_json(findings) + "\n")
    elif findings:
        sys.stdout.write(report.to_text(findings) + "\n")
    if not args.json and not args.sarif:
        err(f"aegis-vault: {len(findings)} finding(s)" if findings else "aegis-vault: no secrets found")


def redact(args: argparse.Namespace) -> int:
    """stdin to stdout with every vault value (any encoding) masked as ``[aegis:NAME]``."""
    import os

    from aegis_tui.core.credentials import Credentials
    from aegis_tui.core.redaction import Masker

    from aegis_tui.cli.unlock import open_unlocked
    from aegis_tui.core.audit import Risk

    with open_unlocked(args) as vault:
        values = Credentials(vault).values(active_only=False)
        stream = Masker.for_versions(values).stream()
        vault.audit.append("redact.load", vault.actor, risk=Risk.LOW, target="vault",
                           detail={"credentials": len(values)})
    del values
    out = sys.stdout.buffer
    while chunk := os.read(0, 65536):
        out.write(stream.feed(chunk))
    out.write(stream.flush())
    out.flush()
    return 0
