"""What a detector reports. Never the secret itself: a location, what matched it, and a
fingerprint that lets a baseline recognise the same finding again (path and rule, plus
the credential and version for a known value, or a truncated SHA-256 of the secret for
a rule: stable when other lines of the file change)."""

from __future__ import annotations

from typing import NamedTuple

KNOWN, RULE = "known", "rule"


class Finding(NamedTuple):
    detector: str  # KNOWN (a value of the vault) or RULE (a provider or generic rule)
    rule_id: str  # the rule's id, or "known-value"
    description: str
    path: str  # a file path, "-" for stdin, or "COMMIT:path" for history
    line: int  # 1-based
    column: int  # 1-based, in characters of the line
    start: int  # byte offsets into the scanned input
    end: int
    fingerprint: str  # stable id for baselines (see the module docstring)
    credential: str | None = None  # the vault credential, for known values
    version: int | None = None
    encoding: str | None = None  # "raw", "base64", "hex", ... for known values

    def location(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"
