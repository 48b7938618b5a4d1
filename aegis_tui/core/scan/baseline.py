"""Accepted findings, so a scan in CI fails only on new ones.

A baseline file lists each accepted finding's fingerprint with its location and rule,
for a person reviewing it; it never holds a secret (a fingerprint of a rule finding
carries a truncated hash of the secret, not the secret). Only fingerprints decide.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from aegis_tui.core.errors import UsageError
from aegis_tui.core.scan.findings import Finding

FORMAT = "aegis-vault-baseline/1"


def write_baseline(path: str | Path, findings: Iterable[Finding]) -> None:
    entries = sorted(
        ({"fingerprint": finding.fingerprint, "location": finding.location(), "rule": finding.rule_id}
         for finding in findings),
        key=lambda entry: (entry["fingerprint"], entry["location"]),
    )
    Path(path).write_text(json.dumps({"format": FORMAT, "findings": entries}, indent=2) + "\n", encoding="utf-8")


def load_baseline(path: str | Path) -> set[str]:
    """The accepted fingerprints; a missing or malformed file is a ``UsageError``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"baseline file {path} does not exist (write one with --write-baseline)") from None
    except OSError as err:
        raise UsageError(f"cannot read baseline file {path}: {err.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError(f"baseline file {path} is not valid JSON") from None
    entries = data.get("findings") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(entries, list) or not all(
            isinstance(entry, dict) and isinstance(entry.get("fingerprint"), str) for entry in entries):
        raise UsageError(f"baseline file {path} is not an aegis-vault baseline")
    return {entry["fingerprint"] for entry in entries}


def new_findings(findings: Iterable[Finding], baseline: set[str]) -> list[Finding]:
    return [finding for finding in findings if finding.fingerprint not in baseline]
