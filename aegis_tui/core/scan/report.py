"""Findings as text for people, JSON for scripts and SARIF for code-scanning services.

None of them can leak a secret: a ``Finding`` never holds one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aegis_tui.core.redaction.masker import printable_label
from aegis_tui.core.scan.findings import Finding
from aegis_tui.core.scan.known import RULE_ID as KNOWN_RULE_ID
from aegis_tui.core.scan.rules import RuleSet

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL = "aegis-vault"
_KNOWN_DESCRIPTION = "A value of a vault credential"


def to_text(findings: Iterable[Finding]) -> str:
    """One line per finding: ``path:line:col  rule-id  description``. Paths and names
    come from files and users: an escape sequence in one never reaches the terminal."""
    return "".join(printable_label(f"{finding.location()}  {finding.rule_id}  {finding.description}") + "\n"
                   for finding in findings)


def to_json(findings: Iterable[Finding]) -> str:
    return json.dumps([finding._asdict() for finding in findings], indent=2) + "\n"


def from_json(text: str) -> list[Finding]:
    """Findings written by ``to_json``."""
    return [Finding(**entry) for entry in json.loads(text)]


def to_sarif(findings: Iterable[Finding], rules: RuleSet) -> dict[str, Any]:
    """A SARIF 2.1.0 log of one run, describing every rule (plus the known-value detector)."""
    findings = list(findings)
    descriptors = [{"id": KNOWN_RULE_ID, "shortDescription": {"text": _KNOWN_DESCRIPTION}}]
    descriptors += [{"id": rule.id, "shortDescription": {"text": rule.description or rule.id}}
                    for rule in rules.rules]
    index = {descriptor["id"]: number for number, descriptor in enumerate(descriptors)}
    for finding in findings:  # a rule that is not in ``rules`` (found by an earlier rule set)
        if finding.rule_id not in index:
            index[finding.rule_id] = len(descriptors)
            descriptors.append({"id": finding.rule_id, "shortDescription": {"text": finding.description}})
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL, "informationUri": "https://pypi.org/project/aegis-vault/",
                                "rules": descriptors}},
            "results": [_result(finding, index[finding.rule_id]) for finding in findings],
        }],
    }


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    return {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": "error",
        "message": {"text": finding.description},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": finding.path},
            "region": {"startLine": finding.line, "startColumn": finding.column},
        }}],
        "partialFingerprints": {"aegisFingerprint/v1": finding.fingerprint},
    }
